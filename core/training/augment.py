"""Differentiable augmentation for GANs on small data: the discriminator sees real and generated images
through the same random translation, cutout and colour changes, so it cannot memorise the few real ones.

A GAN applies it through its step context: `self.D(ctx.augment(images))` and `self.D(ctx.augment(fake))`;
with `ctx.report_real_scores(d_real)` (the discriminator's raw scores on the augmented reals) the strength
adapts as in ADA (Karras et al. 2020): each operation is applied to an image with probability p, and p rises
while the discriminator is sure of the reals (the mean sign of its scores above TARGET) and falls otherwise.
Gradients flow through every operation to the generator (DiffAugment, Zhao et al. 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genforge.core.errors import UserError
from genforge.core.training.distributed import gather

AUTO_ADAPTIVE_BELOW = 20_000  # training images: smaller sets get adaptive augmentation by default
FIXED_P = 1.0  # DiffAugment's policy: every operation on every image
TARGET = 0.6  # ADA's overfitting heuristic r_t = E[sign(D(real))] is held near this
INTERVAL = 4  # steps between adjustments
IMAGES_TO_FULL = 20_000  # images seen for p to go from 0 to 1 at the most (ADA's 500k is for longer runs)
SHIFT = 1 / 8  # translation: up to this fraction of the side
HOLE = 1 / 2  # cutout: a square of this fraction of the side


def resolve_mode(asked: str | None, model_class, train_images: int | None) -> str:
    """The run's mode: the one asked for, else adaptive below AUTO_ADAPTIVE_BELOW training images (or an
    unknown count) and none above; always none for a model whose step does not augment."""
    if not model_class.augments:
        if asked not in (None, "none"):
            raise UserError(f"--augment {asked}: the {model_class.__name__} model does not augment what its "
                            "discriminator sees (its class does not set augments = True); leave --augment out")
        return "none"
    if asked is not None:
        return asked
    return "adaptive" if not train_images or train_images < AUTO_ADAPTIVE_BELOW else "none"


def translate(x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    pad = max(1, round(min(h, w) * SHIFT))
    shift_y = torch.randint(-pad, pad + 1, (n, 1, 1), device=x.device)
    shift_x = torch.randint(-pad, pad + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + shift_y + pad).expand(n, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + shift_x + pad).expand(n, h, w)
    padded = F.pad(x, [pad, pad, pad, pad], mode="reflect")
    batch = torch.arange(n, device=x.device).view(n, 1, 1).expand(n, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    size_y, size_x = max(1, round(h * HOLE)), max(1, round(w * HOLE))
    top = torch.randint(0, h - size_y + 1, (n, 1, 1), device=x.device)
    left = torch.randint(0, w - size_x + 1, (n, 1, 1), device=x.device)
    ys, xs = torch.arange(h, device=x.device).view(1, h, 1), torch.arange(w, device=x.device).view(1, 1, w)
    hole = (ys >= top) & (ys < top + size_y) & (xs >= left) & (xs < left + size_x)
    return x * (~hole).unsqueeze(1).to(x.dtype)


def colour(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    rand = lambda: torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype)  # noqa: E731
    x = x + (rand() - 0.5)  # brightness
    if x.shape[1] > 1:
        grey = x.mean(dim=1, keepdim=True)
        x = grey + (x - grey) * (rand() * 2)  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return mean + (x - mean) * (rand() + 0.5)  # contrast


OPERATIONS = (translate, cutout, colour)


@dataclass
class Augmentation:
    """The augmentation of one run: its mode and current strength p (a probability per operation and image)."""

    mode: str = "none"
    p: float = 0.0
    signal: float | None = None  # the overfitting signal at the last adjustment (adaptive mode)
    _signs: float = 0.0
    _count: int = 0
    _steps: int = 0
    _images: int = 0

    def __post_init__(self):
        if self.mode == "fixed":
            self.p = FIXED_P

    @property
    def active(self) -> bool:
        return self.mode != "none"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.p <= 0:
            return images
        for operation in OPERATIONS:
            chosen = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < self.p
            images = torch.where(chosen, operation(images), images)
        return images

    def report_real_scores(self, scores: torch.Tensor) -> None:
        """The discriminator's raw scores on augmented reals: the overfitting signal of adaptive mode."""
        if self.mode != "adaptive":
            return
        scores = scores.detach().float().flatten()
        self._signs += float(torch.sign(scores).sum())
        self._count += scores.numel()

    def end_step(self, batch_size: int) -> None:
        """Once per training step: every INTERVAL steps p moves toward holding the signal at TARGET."""
        self._steps += 1
        self._images += batch_size
        if self.mode != "adaptive" or self._steps % INTERVAL:
            return
        signs, count = _summed_over_processes(self._signs, self._count)
        if count:
            self.signal = signs / count
            direction = 1.0 if self.signal > TARGET else -1.0
            self.p = min(1.0, max(0.0, self.p + direction * self._images / IMAGES_TO_FULL))
        self._signs, self._count, self._images = 0.0, 0, 0

    def state_dict(self) -> dict:
        """Everything adaptive mode carries between steps, so a resumed run continues as an unbroken one."""
        return {"mode": self.mode, "p": self.p, "signs": self._signs, "count": self._count, "steps": self._steps,
                "images": self._images}

    def load_state_dict(self, state: dict) -> None:
        if state.get("mode") == self.mode:
            self.p, self._signs = float(state["p"]), float(state.get("signs", 0.0))
            self._count, self._steps, self._images = (int(state.get(k, 0)) for k in ("count", "steps", "images"))


def _summed_over_processes(signs: float, count: int) -> tuple[float, int]:
    """Every process adjusts p from the same numbers, so p stays one value across a distributed run."""
    both = gather((signs, count))
    return sum(s for s, _ in both), sum(c for _, c in both)
