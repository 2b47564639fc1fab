"""DCGAN (Radford et al. 2015) for 16 to 128 pixels, trained with the recipe that holds up on real data.

Generator: DCGAN's transposed conv + BatchNorm + ReLU from a 4x4 map, Tanh out. Discriminator: DCGAN's
conv tower with spectral normalisation instead of BatchNorm, the hinge loss and Adam(2e-4, betas 0.0/0.9)
as in SN-GAN and BigGAN. The trainer keeps an EMA of G, which sampling and export use. The recipe, the
classic variant's options and what was measured: docs/models.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genforge import POW2_SIZES, GeneratorModel, check_options, power_of_two_depth
from genforge.plugins.blocks import (
    add_spectral_norm,
    check_loss,
    discriminator_loss,
    discriminator_tower,
    generator_loss,
    generator_tower,
    init_dcgan_weights,
)


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


class DCGAN(GeneratorModel):
    Config = DCGANConfig
    image_sizes = POW2_SIZES
    ema_by_default = True  # EMA of G (Yazici et al. 2019; Brock et al. 2019)
    augments = True

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
            d_real, d_fake = self.D(ctx.augment(images)), self.D(ctx.augment(fake.detach()))
            ctx.report_real_scores(d_real, lambda held_out, _: self.D(held_out))
            d_loss = discriminator_loss(self.config.loss, d_real, d_fake)
        ctx.optimize("d", d_loss)
        with ctx.frozen(self.D), ctx.autocast():
            g_loss = generator_loss(self.config.loss, self.D(ctx.augment(fake)))
        ctx.optimize("g", g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                "d_real": torch.sigmoid(d_real.detach()).float().mean(),
                "d_fake": torch.sigmoid(d_fake.detach()).float().mean()}

    def generator(self) -> nn.Module:
        return self.G
