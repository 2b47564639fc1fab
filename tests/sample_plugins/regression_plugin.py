"""A model with no BatchNorm and no randomness in its step (installed by tests/core/training/test_distributed.py): two
processes of half the global batch each must take the same steps as one process with the whole batch."""

import dataclasses

import torch
from torch import nn

from genforge import GeneratorModel, ModelSpec, hookimpl


@dataclasses.dataclass
class Config:
    latent_dim: int = 8


class Regression(GeneratorModel):
    Config = Config

    def __init__(self, info, config):
        super().__init__(info, config)
        self.latent_shape = (config.latent_dim,)
        shape = (info.channels, info.height, info.width)
        pixels = shape[0] * shape[1] * shape[2]
        self.G = nn.Sequential(nn.Linear(config.latent_dim, 64), nn.ReLU(), nn.Linear(64, pixels), nn.Tanh(),
                               nn.Unflatten(1, shape))

    def optimizers(self):
        return {"g": torch.optim.Adam(self.G.parameters(), lr=1e-2)}

    def training_step(self, images, labels, ctx):
        # each image's noise depends only on its label: no randomness, the same on any share of the batch
        z = torch.linspace(-1, 1, self.latent_shape[0]) + 0.1 * labels.float().view(-1, 1)
        loss = ((self.G(z) - images) ** 2).mean()
        ctx.optimize("g", loss)
        return {"loss": loss.detach()}

    def generator(self):
        return self.G


@hookimpl
def register_models(register):
    register(ModelSpec("regression", "regression_plugin:Regression", "deterministic, no BatchNorm"))
