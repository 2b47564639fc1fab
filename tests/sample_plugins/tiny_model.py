"""A tiny third-party model into which tests/core/test_contract.py plants one fault at a time (installed as
acme_impl)."""
import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from genforge import GeneratorModel


@dataclasses.dataclass
class TinyConfig:
    latent_dim: int = 8
    lr: float = 1e-3


class TinyGenerator(nn.Module):
    def __init__(self, latent_dim, channels, size, num_classes):
        super().__init__()
        self.shape = (channels, size, size)
        self.num_classes = num_classes
        self.fc = nn.Linear(latent_dim + (num_classes or 0), channels * size * size)

    def forward(self, z, labels=None):
        if self.num_classes:
            z = torch.cat([z, F.one_hot(labels.long(), self.num_classes).float()], 1)
        return torch.tanh(self.fc(z)).view(-1, *self.shape)


class Tiny(GeneratorModel):
    Config = TinyConfig
    conditional = False

    def __init__(self, info, config):
        super().__init__(info, config)
        self.latent_shape = (config.latent_dim,)
        classes = info.num_classes if self.conditional else None
        self.G = TinyGenerator(config.latent_dim, info.channels, info.height, classes)

    def optimizers(self):
        return {"g": torch.optim.Adam(self.G.parameters(), lr=self.config.lr)}

    def training_step(self, images, labels, ctx):
        z = ctx.randn(images.shape[0], *self.latent_shape)
        fake = self.G(z, labels) if self.conditional else self.G(z)
        loss = (fake.mean() - images.mean()) ** 2
        ctx.optimize("g", loss)
        return {"loss": loss.detach()}

    def generator(self):
        return self.G
