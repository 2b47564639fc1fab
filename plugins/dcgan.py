"""DCGAN (Radford et al. 2015) for 16 to 128 pixels, trained with the recipe that holds up on real data.

Generator: DCGAN's transposed conv + BatchNorm + ReLU from a 4x4 map, Tanh out; weights N(0, 0.02),
BatchNorm weights N(1, 0.02). Discriminator: DCGAN's conv tower with LeakyReLU(0.2), but with spectral
normalisation on every layer instead of BatchNorm (Miyato et al. 2018, "Spectral Normalization for
GANs"), the hinge loss (Lim & Ye 2017; Miyato et al. 2018) and Adam(2e-4, betas 0.0/0.9) as in
SN-GAN and BigGAN (Brock et al. 2019). `-o loss=bce -o spectral_norm=false -o beta1=0.5 -o
beta2=0.999 --no-ema` gives the classic PyTorch-example DCGAN (non-saturating BCE, BatchNorm in D),
which was genforge 0.1's default. The trainer keeps an EMA of G (Yazici et al. 2019; BigGAN), which
sampling and export use; on digits-distorted after 10 epochs it changed FD little (40.8 against the raw
weights' 39.2 at lr 2e-4; 37.2 against 39.0 at 4e-4; one run each, too close to call), so lr stays at
SN-GAN's 2e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge.core.model import POW2_SIZES, GeneratorModel, check_options, power_of_two_depth


@dataclass
class DCGANConfig:
    latent_dim: int = 100
    g_width: int = 64
    d_width: int = 64
    lr: float = 2e-4
    beta1: float = 0.0  # Adam betas of SN-GAN / BigGAN (Miyato et al. 2018; Brock et al. 2019)
    beta2: float = 0.9
    loss: str = "hinge"  # bce: the non-saturating loss (Goodfellow et al. 2014); hinge (Lim & Ye 2017)
    spectral_norm: bool = True  # spectral normalisation of D instead of its BatchNorm (Miyato et al. 2018)

    def __post_init__(self):
        check_options(self, ("latent_dim", "g_width", "d_width"), ("lr",), ("beta1", "beta2"))
        check_loss(self.loss)


def init_dcgan_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def generator_tower(in_channels: int, out_channels: int, depth: int, width: int) -> nn.Sequential:
    """(N, in, 1, 1) -> (N, out, 4 * 2**depth, ...): the DCGAN generator body, Tanh included."""
    channels = width * 2 ** (depth - 1)
    layers = [nn.ConvTranspose2d(in_channels, channels, 4, 1, 0, bias=False), nn.BatchNorm2d(channels), nn.ReLU(True)]
    for _ in range(depth - 1):
        layers += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(channels // 2), nn.ReLU(True)]
        channels //= 2
    layers += [nn.ConvTranspose2d(channels, out_channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator_tower(in_channels: int, depth: int, width: int, batchnorm: bool = True) -> tuple[nn.Sequential, int]:
    """(N, in, S, S) -> (N, C, 4, 4) features and C: the DCGAN discriminator body."""
    layers = [nn.Conv2d(in_channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    channels = width
    for _ in range(depth - 1):
        layers += [nn.Conv2d(channels, channels * 2, 4, 2, 1, bias=not batchnorm)]
        layers += [nn.BatchNorm2d(channels * 2)] if batchnorm else []
        layers += [nn.LeakyReLU(0.2, True)]
        channels *= 2
    return nn.Sequential(*layers), channels


def add_spectral_norm(module: nn.Module, skip: tuple[nn.Module, ...] = ()) -> None:
    """Spectral normalisation (Miyato et al. 2018) on every conv, linear and embedding layer of `module`."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Conv2d, nn.Linear, nn.Embedding)) and not any(layer is s for s in skip):
            nn.utils.parametrizations.spectral_norm(layer)


LOSSES = ("bce", "hinge")


def check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r} is unknown; use {' or '.join(LOSSES)}")


def discriminator_loss(kind: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    return gan_losses(d_real, d_fake)


def generator_loss(kind: str, d_gen: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -d_gen.mean()
    return F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, depth: int, width: int):
        super().__init__()
        self.net = generator_tower(latent_dim, channels, depth, width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int, depth: int, width: int, batchnorm: bool = True):
        super().__init__()
        self.features, features = discriminator_tower(channels, depth, width, batchnorm)
        self.head = nn.Conv2d(features, 1, 4, 1, 0, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images)).flatten()


def gan_losses(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))


class DCGAN(GeneratorModel):
    Config = DCGANConfig
    image_sizes = POW2_SIZES
    ema_by_default = True  # EMA of G (Yazici et al. 2019; Brock et al. 2019)

    def __init__(self, info, config: DCGANConfig):
        super().__init__(info, config)
        depth = power_of_two_depth(info.height, "dcgan")
        self.latent_shape = (config.latent_dim, 1, 1)
        self.G = DCGANGenerator(config.latent_dim, info.channels, depth, config.g_width)
        self.D = DCGANDiscriminator(info.channels, depth, config.d_width, batchnorm=not config.spectral_norm)
        self.apply(init_dcgan_weights)
        if config.spectral_norm:
            add_spectral_norm(self.D)

    def optimizers(self):
        c = self.config
        return {
            "d": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=(c.beta1, c.beta2)),
            "g": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=(c.beta1, c.beta2)),
        }

    def training_step(self, images, labels, ctx):
        z = ctx.randn(images.shape[0], *self.latent_shape)
        with ctx.autocast():
            fake = self.G(z)
            d_real, d_fake = self.D(images), self.D(fake.detach())
            d_loss = discriminator_loss(self.config.loss, d_real, d_fake)
        ctx.optimize("d", d_loss)
        with ctx.frozen(self.D), ctx.autocast():
            g_loss = generator_loss(self.config.loss, self.D(fake))
        ctx.optimize("g", g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                "d_real": torch.sigmoid(d_real.detach()).float().mean(),
                "d_fake": torch.sigmoid(d_fake.detach()).float().mean()}

    def generator(self) -> nn.Module:
        return self.G
