"""A model whose generator makes [0, 1] images, which genforge flags at build (tests/properties/test_trust.py)."""
import dataclasses

import torch
from torch import nn

from genforge import GeneratorModel


@dataclasses.dataclass
class Config:
    latent_dim: int = 8


class Unit(GeneratorModel):
    Config = Config

    def __init__(self, info, config):
        super().__init__(info, config)
        self.latent_shape = (config.latent_dim,)
        self.shape = (info.channels, info.height, info.width)
        self.fc = nn.Linear(config.latent_dim, info.channels * info.height * info.width)

    def optimizers(self):
        return {"g": torch.optim.Adam(self.fc.parameters())}

    def training_step(self, images, labels, ctx):
        loss = self.fc(ctx.randn(len(images), *self.latent_shape)).pow(2).mean()
        ctx.optimize("g", loss)
        return {"loss": loss.detach()}

    def generator(self):
        return nn.Sequential(self.fc, nn.Sigmoid(), nn.Unflatten(1, self.shape))
