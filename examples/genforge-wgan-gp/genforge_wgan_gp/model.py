"""WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs"), as a genforge model plugin.

The critic estimates the Wasserstein-1 distance between real and generated images; a gradient
penalty (lambda = 10) keeps its gradient norm near 1 on points between real and fake images,
instead of weight clipping. The critic is updated on every training step and the generator on
every `n_critic`-th one (5 in the paper), each critic step on a fresh batch, as in the paper's
Algorithm 1; Adam(1e-4, betas 0.0/0.9). The critic has no BatchNorm (the penalty is per sample):
LayerNorm-style GroupNorm(1, C) instead. The generator is DCGAN's (Radford et al. 2015).
The critic sees real and generated images through genforge's augmentation (`--augment`), the penalty
included, so small datasets get DiffAugment/ADA like the built-in GANs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genforge import GeneratorModel, power_of_two_depth


@dataclass
class WGANGPConfig:
    latent_dim: int = 128
    g_width: int = 64
    d_width: int = 64
    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9
    n_critic: int = 5
    gp_weight: float = 10.0

    def __post_init__(self):
        if min(self.latent_dim, self.g_width, self.d_width, self.n_critic) < 1:
            raise ValueError("latent_dim, g_width, d_width and n_critic must be at least 1")
        if not (self.lr > 0 and self.gp_weight >= 0):
            raise ValueError("lr must be positive and gp_weight not negative")


class Generator(nn.Module):
    """(N, latent_dim, 1, 1) noise -> (N, C, S, S) images in [-1, 1]."""

    def __init__(self, latent_dim: int, channels: int, depth: int, width: int):
        super().__init__()
        c = width * 2 ** (depth - 1)
        layers = [nn.ConvTranspose2d(latent_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(depth - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Critic(nn.Module):
    """(N, C, S, S) images -> (N,) scores, unbounded (a Wasserstein critic, not a classifier)."""

    def __init__(self, channels: int, depth: int, width: int):
        super().__init__()
        layers, c = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)], width
        for _ in range(depth - 1):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1), nn.GroupNorm(1, c * 2), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers += [nn.Conv2d(c, 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).flatten()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """E[(||grad critic(x_hat)||_2 - 1)^2] on x_hat = mix * real + (1 - mix) * fake, mix ~ U(0, 1) per sample."""
    x_hat = (mix * real + (1 - mix) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


class WGANGP(GeneratorModel):
    Config = WGANGPConfig
    conditional = False
    augments = True
    image_sizes = (16, 32, 64, 128)

    def __init__(self, info, config: WGANGPConfig):
        super().__init__(info, config)
        depth = power_of_two_depth(info.height, "wgan-gp", self.image_sizes)
        self.latent_shape = (config.latent_dim, 1, 1)
        self.G = Generator(config.latent_dim, info.channels, depth, config.g_width)
        self.D = Critic(info.channels, depth, config.d_width)
        # saved with the weights, so a resumed run keeps the critic/generator rhythm
        self.register_buffer("critic_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("last_g_loss", torch.zeros(()))

    def optimizers(self):
        c = self.config
        return {"critic": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=(c.beta1, c.beta2)),
                "g": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))}

    def training_step(self, images, labels, ctx):
        n = len(images)
        with torch.no_grad():
            fake = self.G(ctx.randn(n, *self.latent_shape))
        real, fake = ctx.augment(images), ctx.augment(fake)
        d_real, d_fake = self.D(real), self.D(fake)
        # a critic's scores have no zero; measured from the midpoint of its mean real and fake scores, their
        # sign says real or fake as a logit's does, which adaptive augmentation's overfitting signal reads
        midpoint = (d_real.mean() + d_fake.mean()).detach() / 2
        ctx.report_real_scores(d_real - midpoint, lambda held_out, _labels: self.D(held_out) - midpoint)
        wasserstein = d_real.mean() - d_fake.mean()
        penalty = gradient_penalty(self.D, real, fake, torch.rand(n, 1, 1, 1, device=images.device))
        ctx.optimize("critic", -wasserstein + self.config.gp_weight * penalty)
        self.critic_steps += 1
        if int(self.critic_steps) % self.config.n_critic == 0:
            with ctx.frozen(self.D), ctx.autocast():
                g_loss = -self.D(ctx.augment(self.G(ctx.randn(n, *self.latent_shape)))).float().mean()
            ctx.optimize("g", g_loss)
            self.last_g_loss.copy_(g_loss.detach())
        return {"wasserstein": wasserstein.detach(), "gp": penalty.detach(), "g_loss": self.last_g_loss.clone()}

    def generator(self) -> nn.Module:
        return self.G
