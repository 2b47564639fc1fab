"""The built-in models' shared blocks: DCGAN's generator and discriminator towers, weight init, spectral
normalisation and the GAN losses (non-saturating BCE, hinge). Used by dcgan.py, cgan.py and vae.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


def gan_losses(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
