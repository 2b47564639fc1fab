"""The kit's model, into which the tests plant faults by text replacement (tests/app/test_testing_kit.py)."""
import dataclasses

import numpy as np  # noqa: F401  the faults the tests plant use it
import torch
from torch import nn

from genforge import GeneratorModel


@dataclasses.dataclass
class KitConfig:
    latent_dim: int = 8


class KitGenerator(nn.Module):
    def __init__(self, latent_dim, shape):
        super().__init__()
        self.shape = shape
        self.register_buffer("gain", torch.ones(()))
        self.fc = nn.Linear(latent_dim, shape[0] * shape[1] * shape[2])

    def forward(self, z):
        return (self.gain * torch.tanh(self.fc(z))).view(-1, *self.shape)


class Kit(GeneratorModel):
    Config = KitConfig

    def __init__(self, info, config):
        super().__init__(info, config)
        self.latent_shape = (config.latent_dim,)
        self.G = KitGenerator(config.latent_dim, (info.channels, info.height, info.width))

    def optimizers(self):
        return {"g": torch.optim.Adam(self.G.parameters(), lr=1e-2)}

    def training_step(self, images, labels, ctx):
        z = ctx.randn(len(images), *self.latent_shape)
        loss = (self.G(z).mean() - images.mean()) ** 2
        ctx.optimize("g", loss)
        return {"loss": loss.detach()}

    def generator(self):
        return self.G
