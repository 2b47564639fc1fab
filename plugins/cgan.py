"""Conditional DCGAN: a label embedding joins the noise in G; a projection discriminator
(Miyato & Koyama 2018) scores image-label pairs. Needs a labelled dataset.

The generator's inputs are noise (N, latent_dim, 1, 1) and int32 labels (N,).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge.core.model import POW2_SIZES, GeneratorModel, check_options, power_of_two_depth
from genforge.plugins.dcgan import discriminator_tower, gan_losses, generator_tower, init_dcgan_weights


@dataclass
class ConditionalGANConfig:
    latent_dim: int = 100
    embed_dim: int = 32
    g_width: int = 64
    d_width: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self):
        check_options(self, ("latent_dim", "embed_dim", "g_width", "d_width"), ("lr",), ("beta1", "beta2"))


class ConditionalGenerator(nn.Module):
    def __init__(self, latent_dim, embed_dim, num_classes, channels, depth, width):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.net = generator_tower(latent_dim + embed_dim, channels, depth, width)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        e = self.embed(labels).to(z.dtype)[:, :, None, None]
        return self.net(torch.cat([z, e], dim=1))


class ProjectionDiscriminator(nn.Module):
    def __init__(self, channels, num_classes, depth, width):
        super().__init__()
        self.features, features = discriminator_tower(channels, depth, width)
        self.head = nn.Conv2d(features, 1, 4, 1, 0, bias=False)
        self.embed = nn.Embedding(num_classes, features)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(images)
        projection = (self.embed(labels).to(h.dtype) * h.sum(dim=(2, 3))).sum(dim=1)
        return self.head(h).flatten() + projection


class ConditionalGAN(GeneratorModel):
    Config = ConditionalGANConfig
    conditional = True
    image_sizes = POW2_SIZES

    def __init__(self, info, config: ConditionalGANConfig):
        super().__init__(info, config)
        depth = power_of_two_depth(info.height, "cgan")
        self.num_classes = info.num_classes
        self.latent_shape = (config.latent_dim, 1, 1)
        self.G = ConditionalGenerator(config.latent_dim, config.embed_dim, info.num_classes, info.channels, depth,
                                      config.g_width)
        self.D = ProjectionDiscriminator(info.channels, info.num_classes, depth, config.d_width)
        self.apply(init_dcgan_weights)

    def optimizers(self):
        c = self.config
        return {
            "d": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=(c.beta1, c.beta2)),
            "g": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=(c.beta1, c.beta2)),
        }

    def training_step(self, images, labels, ctx):
        n = images.shape[0]
        z = ctx.randn(n, *self.latent_shape)
        fake_labels = torch.randint(0, self.num_classes, (n,), device=images.device)
        with ctx.autocast():
            fake = self.G(z, fake_labels)
            d_real, d_fake = self.D(images, labels), self.D(fake.detach(), fake_labels)
            d_loss = gan_losses(d_real, d_fake)
        ctx.optimize("d", d_loss)
        with ctx.frozen(self.D), ctx.autocast():
            d_gen = self.D(fake, fake_labels)
            g_loss = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        ctx.optimize("g", g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                "d_real": torch.sigmoid(d_real.detach()).float().mean(),
                "d_fake": torch.sigmoid(d_fake.detach()).float().mean()}

    def generator(self) -> nn.Module:
        return self.G
