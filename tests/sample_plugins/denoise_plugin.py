"""A third-party restoration plugin written from docs/plugins.md alone: a denoiser whose input is a noisy image."""
from dataclasses import dataclass

import torch
from torch import nn

from genforge import GeneratorModel, ImageInput, ModelSpec, hookimpl


@dataclass
class DenoiseConfig:
    sigma: float = 0.3
    width: int = 8


class Denoiser(nn.Module):
    def __init__(self, channels, width):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels + 1, width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(width, channels, 3, padding=1))

    def forward(self, z, noisy):
        return torch.clamp(noisy + self.net(torch.cat([noisy, z], 1)), -1, 1)


class Denoise(GeneratorModel):
    Config = DenoiseConfig
    primary_metric = "psnr"

    def __init__(self, info, config):
        super().__init__(info, config)
        shape = (info.channels, info.height, info.width)
        self.latent_shape = (1, info.height, info.width)
        self.inputs = (ImageInput("noisy", shape, "the image with Gaussian noise added"),)
        self.G = Denoiser(info.channels, config.width)

    def degrade(self, clean, seed):
        noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed)).to(clean.device)
        return {"noisy": (clean + self.config.sigma * noise).clamp(-1, 1)}

    def optimizers(self):
        return {"g": torch.optim.Adam(self.G.parameters(), lr=1e-3)}

    def training_step(self, images, labels, ctx):
        noisy = self.degrade(images, int(torch.randint(0, 2**31, ())))["noisy"]
        with ctx.autocast():
            loss = (self.G(ctx.randn(len(images), *self.latent_shape), noisy) - images).abs().mean()
        ctx.optimize("g", loss)
        return {"l1": loss.detach()}

    def generator(self):
        return self.G


@hookimpl
def register_models(register):
    register(ModelSpec("denoise", "denoise_plugin:Denoise", "a third-party denoiser"))
