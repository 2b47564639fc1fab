"""Differentiable augmentation for GANs on small data: the discriminator sees real and generated images
through the same random translation, cutout and colour changes, so it cannot memorise the few real ones.

A GAN applies it through its step context: `self.D(ctx.augment(images))` and `self.D(ctx.augment(fake))`;
with `ctx.report_real_scores(d_real, discriminator)` (the discriminator's raw scores on the augmented reals,
and a function that scores images) the strength adapts as in ADA (Karras et al. 2020): each operation is
applied to an image with probability p, and p rises while the discriminator overfits and falls otherwise.
Its overfitting signal is ADA's r_v where the dataset has a test split: half the gap between the mean sign of
the discriminator's scores on its training reals and on held-out reals (0: it tells them apart no better than
chance; 1: it calls every training image real and every held-out one fake), held at HELD_OUT_TARGET. Without
held-out images (or without the scoring function) it is ADA's r_t, the mean sign on the training reals, held
at TARGET; as a generator reproduces a small training set, r_t sinks while the discriminator memorises, which
only r_v sees. Gradients flow through every operation to the generator (DiffAugment, Zhao et al. 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genforge.core.errors import UserError
from genforge.core.training.distributed import gather

AUTO_ADAPTIVE_BELOW = 20_000  # training images: smaller sets get adaptive augmentation by default
FIXED_P = 1.0  # DiffAugment's policy: every operation on every image
TARGET = 0.6  # ADA's overfitting heuristic r_t = E[sign(D(real))] is held near this
HELD_OUT_TARGET = 0.2  # r_v = (E[sign(D(train real))] - E[sign(D(held-out real))]) / 2 is held near this
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
    held_out: Callable | None = None  # () -> (images, labels) of held-out reals on the run's device: r_v's
    _signs: float = 0.0
    _count: int = 0
    _gap: float = 0.0  # sign means, training minus held-out reals, summed over this interval's r_v measurements
    _gaps: int = 0
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

    def report_real_scores(self, scores: torch.Tensor, discriminator: Callable | None = None) -> None:
        """The discriminator's raw scores on augmented reals, and `discriminator(images, labels) -> scores`: the
        overfitting signal of adaptive mode. Once an interval, on its last step, held-out reals are scored too."""
        if self.mode != "adaptive":
            return
        signs = torch.sign(scores.detach().float().flatten())
        self._signs += float(signs.sum())
        self._count += signs.numel()
        if discriminator is None or self.held_out is None or self._steps % INTERVAL != INTERVAL - 1:
            return
        images, labels = self.held_out()
        with torch.no_grad():
            held = discriminator(self(images), labels)
        self._gap += float(signs.mean()) - float(torch.sign(held.float()).mean())
        self._gaps += 1

    def end_step(self, batch_size: int) -> None:
        """Once per training step: every INTERVAL steps p moves toward holding the signal at its target
        (HELD_OUT_TARGET for r_v, TARGET for r_t)."""
        self._steps += 1
        self._images += batch_size
        if self.mode != "adaptive" or self._steps % INTERVAL:
            return
        signs, count, gap, gaps = _summed_over_processes(self._signs, self._count, self._gap, self._gaps)
        if count:
            self.signal = gap / gaps / 2 if gaps else signs / count
            direction = 1.0 if self.signal > (HELD_OUT_TARGET if gaps else TARGET) else -1.0
            self.p = min(1.0, max(0.0, self.p + direction * self._images / IMAGES_TO_FULL))
        self._signs, self._count, self._images, self._gap, self._gaps = 0.0, 0, 0, 0.0, 0

    def state_dict(self) -> dict:
        """Everything adaptive mode carries between steps, so a resumed run continues as an unbroken one."""
        return {"mode": self.mode, "p": self.p, "signs": self._signs, "count": self._count, "steps": self._steps,
                "images": self._images, "gap": self._gap, "gaps": self._gaps}

    def load_state_dict(self, state: dict) -> None:
        if state.get("mode") == self.mode:
            self.p, self._signs, self._gap = (float(state.get(k, 0.0)) for k in ("p", "signs", "gap"))
            self._count, self._steps, self._images, self._gaps = (int(state.get(k, 0))
                                                                  for k in ("count", "steps", "images", "gaps"))


def _summed_over_processes(*numbers: float) -> list[float]:
    """Every process adjusts p from the same numbers, so p stays one value across a distributed run."""
    return [sum(column) for column in zip(*gather(numbers))]
