"""Inpainting: fill a square hole in an image (a U-Net generator with a reconstruction and an adversarial loss).

The generator takes the damaged image (the hole set to 0, mid-grey), the mask (1 where known, 0 in
the hole) and a noise map, and returns the image with the hole filled and the known pixels kept
exactly. It is a restoration model (core/restore.py): `degrade` makes its inputs from clean images,
so grids, evaluation (PSNR and SSIM in the hole), export checks and int8 calibration use real images.
Recipe and measurements: docs/models.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge import GeneratorModel, ImageInput
from genforge.core.model import check_options
from genforge.plugins.blocks import add_spectral_norm, discriminator_loss, generator_loss


@dataclass
class InpaintConfig:
    width: int = 32  # channels of the U-Net's first level; doubled at each of its two lower levels
    hole: float = 0.5  # the hole's side as a share of the image's side (0.5: a quarter of the area)
    lr: float = 1e-3
    adversarial: float = 0.003  # the adversarial loss's weight beside the L1 reconstruction; 0 turns D off
    hole_weight: float = 6.0  # the L1 loss inside the hole over outside it

    def __post_init__(self):
        check_options(self, positive_ints=("width",), positive_numbers=("lr", "hole_weight"))
        if not 0 < self.hole < 1:
            raise ValueError(f"hole = {self.hole!r} must be a share of the side between 0 and 1")
        if not 0 <= self.adversarial:
            raise ValueError(f"adversarial = {self.adversarial!r} must be 0 or more")


def square_holes(n: int, size: int, side: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Masks (n, 1, size, size): 1 everywhere but one square of `side` pixels per image, placed at random."""
    corners = torch.randint(0, size - side + 1, (n, 2), generator=generator)
    rows = torch.arange(size)
    inside_y = (rows >= corners[:, :1]) & (rows < corners[:, :1] + side)
    inside_x = (rows >= corners[:, 1:]) & (rows < corners[:, 1:] + side)
    return (~(inside_y[:, :, None] & inside_x[:, None, :])).float().unsqueeze(1)


def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(min(8, cout), cout), nn.SiLU())


class InpaintNet(nn.Module):
    """A three-level U-Net: (image, mask, noise) -> the image with its hole filled, known pixels kept."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        w = width
        self.down0 = nn.Sequential(block(channels + 2, w), block(w, w))
        self.down1 = nn.Sequential(block(w, 2 * w, 2), block(2 * w, 2 * w))
        self.down2 = nn.Sequential(block(2 * w, 4 * w, 2), block(4 * w, 4 * w))
        self.middle = nn.Sequential(*[nn.Sequential(nn.Conv2d(4 * w, 4 * w, 3, 1, d, dilation=d),
                                                    nn.GroupNorm(8, 4 * w), nn.SiLU()) for d in (2, 4)])
        self.up1 = nn.Sequential(block(6 * w, 2 * w), block(2 * w, 2 * w))
        self.up0 = nn.Sequential(block(3 * w, w), block(w, w))
        self.out = nn.Conv2d(w, channels, 3, 1, 1)

    def forward(self, z, image, mask):
        h0 = self.down0(torch.cat([image * mask, mask, z], 1))
        h1 = self.down1(h0)
        h2 = self.down2(h1)
        h = self.middle(h2) + h2
        h = self.up1(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), h1], 1))
        h = self.up0(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), h0], 1))
        filled = torch.tanh(self.out(h))
        return mask * image + (1 - mask) * filled


class PatchDiscriminator(nn.Module):
    """Scores overlapping patches of an image as real or filled (spectral norm, no batch norm)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels + 1, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, 1, 1))

    def forward(self, images, mask):
        return self.net(torch.cat([images, mask], 1))


class Inpaint(GeneratorModel):
    Config = InpaintConfig
    ema_by_default = True
    image_sizes = (16, 32, 64, 128)
    primary_metric = "psnr_masked"

    def __init__(self, info, config: InpaintConfig):
        super().__init__(info, config)
        c, h, w = info.channels, info.height, info.width
        self.latent_shape = (1, h, w)
        self.inputs = (ImageInput("image", (c, h, w), "the image to restore, in [-1, 1]; its hole is ignored"),
                       ImageInput("mask", (1, h, w), "1 where the pixel is known, 0 in the hole to fill"))
        self.side = max(1, round(config.hole * h))
        self.G = InpaintNet(c, config.width)
        self.D = PatchDiscriminator(c, config.width)
        add_spectral_norm(self.D)

    def degrade(self, clean: torch.Tensor, seed: int) -> dict:
        """A square hole of `hole` x the side at a place drawn from `seed`, set to 0 (mid-grey)."""
        mask = square_holes(len(clean), clean.shape[-1], self.side, torch.Generator().manual_seed(seed))
        mask = mask.to(clean.device)
        return {"image": clean * mask, "mask": mask}

    def optimizers(self):
        lr = self.config.lr
        return {"g": torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.5, 0.99)),
                "d": torch.optim.Adam(self.D.parameters(), lr=lr, betas=(0.5, 0.99))}

    def training_step(self, images, labels, ctx):
        n, size = images.shape[0], images.shape[-1]
        mask = square_holes(n, size, self.side).to(images.device)
        z = ctx.randn(n, *self.latent_shape)
        c = self.config
        metrics = {}
        with ctx.autocast():
            filled = self.G(z, images * mask, mask)
        if c.adversarial > 0:
            with ctx.autocast():
                d_real, d_fake = self.D(images, mask), self.D(filled.detach(), mask)
                d_loss = discriminator_loss("hinge", d_real, d_fake)
            ctx.optimize("d", d_loss)
            metrics["d_loss"] = d_loss.detach()
        with ctx.frozen(self.D), ctx.autocast():
            error = (filled.float() - images).abs()
            hole = 1 - mask
            l1 = (error * (1 + (c.hole_weight - 1) * hole)).mean()
            g_loss = l1 + (c.adversarial * generator_loss("hinge", self.D(filled, mask)) if c.adversarial > 0 else 0)
        ctx.optimize("g", g_loss)
        metrics.update(l1=l1.detach(), g_loss=g_loss.detach(),
                       hole_l1=((error * hole).sum() / hole.sum().clamp(min=1)).detach())
        return metrics

    def generator(self) -> nn.Module:
        return self.G
