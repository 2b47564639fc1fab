"""The 'template-gan' model: a small fully connected GAN, a starting point to replace with yours.

The model contract (what each method takes and returns) is in genforge's docs/plugins.md.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge import GeneratorModel


@dataclass
class TemplateGanConfig:
    latent_dim: int = 32
    hidden: int = 256
    lr: float = 2e-4

    def __post_init__(self):
        if self.latent_dim < 1 or self.hidden < 1 or not self.lr > 0:
            raise ValueError("latent_dim and hidden must be positive, lr a positive number")


class TemplateGan(GeneratorModel):
    Config = TemplateGanConfig
    conditional = False
    image_sizes = None  # any size

    def __init__(self, info, config):
        super().__init__(info, config)
        shape = (info.channels, info.height, info.width)
        pixels = info.channels * info.height * info.width
        self.latent_shape = (config.latent_dim,)
        self.G = nn.Sequential(nn.Linear(config.latent_dim, config.hidden), nn.ReLU(),
                               nn.Linear(config.hidden, pixels), nn.Tanh(), nn.Unflatten(1, shape))
        self.D = nn.Sequential(nn.Flatten(), nn.Linear(pixels, config.hidden), nn.LeakyReLU(0.2),
                               nn.Linear(config.hidden, 1))

    def optimizers(self):
        betas = (0.5, 0.999)
        return {"d": torch.optim.Adam(self.D.parameters(), lr=self.config.lr, betas=betas),
                "g": torch.optim.Adam(self.G.parameters(), lr=self.config.lr, betas=betas)}

    def training_step(self, images, labels, ctx):
        z = ctx.randn(len(images), *self.latent_shape)
        with ctx.autocast():
            fake = self.G(z)
            d_loss = F.softplus(-self.D(images)).mean() + F.softplus(self.D(fake.detach())).mean()
        ctx.optimize("d", d_loss)
        with ctx.frozen(self.D), ctx.autocast():
            g_loss = F.softplus(-self.D(fake)).mean()
        ctx.optimize("g", g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    def generator(self):
        return self.G
