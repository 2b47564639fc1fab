"""Generator inputs, drawn one way everywhere: noise (and labels) for any generator.

Every place that feeds a generator (sample grids during training, evaluation, ONNX export and
its checks, int8 calibration, benchmarks, the runtime API, interpolation) takes its inputs
from `GeneratorSignature.inputs`:

* noise: float32, shape (N, *latent_shape), standard normal from numpy's PCG64 seeded by
  `seed`; numpy rather than torch, so an exported file draws the same noise as its run
  directory without importing torch;
* labels (conditional generators only): int32, shape (N,), 0, 1, 2, ... modulo the number
  of classes unless given.

* images (restoration models only): the model's named image inputs (`ImageInput`: an image to
  restore, a mask, ...), float32 (N, C, H, W) each, made from clean images by the model's
  `degrade` (core/restore.py) or given by the user; never drawn from noise.

One call convention: `call_generator(g, z, labels, images)` is `g(z, *images)` for unconditional
generators and `g(z, labels, *images)` for conditional ones, the images in the model's order.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from genforge.core.errors import UserError


@dataclass(frozen=True)
class ImageInput:
    """A generator input that is an image: its name (the ONNX input's), its shape (C, H, W) and what it means."""

    name: str
    shape: tuple[int, int, int]
    meaning: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "meaning": self.meaning}


RESERVED_INPUT_NAMES = ("z", "labels", "step")


@dataclass(frozen=True)
class GeneratorSignature:
    """What a generator takes: noise of `latent_shape`, labels when num_classes is set, and the image inputs of a
    restoration model."""

    latent_shape: tuple[int, ...]
    num_classes: int | None = None
    images: tuple[ImageInput, ...] = ()

    @property
    def restores(self) -> bool:
        return bool(self.images)

    @property
    def input_names(self) -> list[str]:
        """The generator's inputs in call order: z, labels (conditional), then the image inputs."""
        return ["z"] + (["labels"] if self.conditional else []) + [i.name for i in self.images]

    def timing_images(self, n: int) -> tuple[np.ndarray, ...]:
        """Stand-in image inputs for timing an exported file, which carries no data: smooth ramps in [-1, 1], and
        for a mask a centred hole of a quarter of the image. A dense network's speed does not depend on pixel
        values; quality checks never use these (they degrade real images, core/feeds.py)."""
        made = []
        for spec in self.images:
            c, h, w = spec.shape
            if spec.name == "mask":
                image = np.ones((c, h, w), np.float32)
                image[:, h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = 0
            else:
                image = np.broadcast_to(np.linspace(-1, 1, w, dtype=np.float32), (c, h, w))
            made.append(np.ascontiguousarray(np.broadcast_to(image, (n, c, h, w))))
        return tuple(made)

    def image_inputs(self, given: dict | None, n: int | None = None) -> tuple[np.ndarray, ...]:
        """The image inputs `given` by name, checked against their declared shapes, in call order."""
        if not self.images:
            if given:
                raise UserError(f"this generator takes no image inputs; drop {', '.join(sorted(given))}")
            return ()
        given = dict(given or {})
        names = [i.name for i in self.images]
        missing, unknown = [m for m in names if m not in given], sorted(set(given) - set(names))
        if missing or unknown:
            wants = ", ".join(f"{i.name} {shape_text(i.shape)}" for i in self.images)
            raise UserError(f"this generator restores images: give {wants}"
                            + (f"; {', '.join(unknown)} is not one of them" if unknown else ""))
        arrays = []
        for spec in self.images:
            value = np.asarray(given[spec.name])
            if not np.issubdtype(value.dtype, np.floating):
                raise UserError(f"{spec.name} must be float32 in [-1, 1], not {value.dtype}")
            if value.ndim == 3:
                value = value[None]
            count = n if n is not None else len(arrays[0]) if arrays else len(value)
            if value.shape != (count, *spec.shape):
                raise UserError(f"{spec.name} must have shape (N, {', '.join(map(str, spec.shape))}) with the same "
                                f"N as the other inputs, not {value.shape}")
            if not np.isfinite(value).all():
                raise UserError(f"{spec.name} holds NaN or Inf values; pass finite numbers in [-1, 1]")
            arrays.append(value.astype(np.float32, copy=False))
        return tuple(arrays)

    @property
    def conditional(self) -> bool:
        return bool(self.num_classes)

    def inputs(self, n=None, z=None, labels=None, seed=None) -> tuple[np.ndarray, np.ndarray | None]:
        """Noise and labels, drawn from `seed` or checked when given."""
        if n is not None:
            n = _count(n)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise UserError(f"seed must be an integer, not {seed!r}")
        if z is None:
            if n is None:
                n = len(labels) if labels is not None and np.ndim(labels) else 1
            z = np.random.default_rng(seed).standard_normal((n, *self.latent_shape), dtype=np.float32)
        z = np.asarray(z)
        if not np.issubdtype(z.dtype, np.floating):
            raise UserError(f"noise must be float32, not {z.dtype}")
        z = z.astype(np.float32, copy=False)
        if z.shape[1:] != tuple(self.latent_shape) or z.ndim == 0 or len(z) == 0:
            shape = ", ".join(map(str, self.latent_shape))
            raise UserError(f"noise must have shape (N, {shape}) with N >= 1, not {z.shape}")
        if n is not None and len(z) != n:
            raise UserError(f"n={n} but the noise holds {len(z)} samples")
        if not np.isfinite(z).all():
            raise UserError("noise holds NaN or Inf values; pass finite numbers (or leave z out to draw it)")
        if not self.conditional:
            if labels is not None:
                raise UserError("this generator is unconditional; drop the labels")
            return z, None
        return z, self.check_labels(labels, len(z))

    def check_labels(self, labels, n: int) -> np.ndarray:
        if labels is None:
            return (np.arange(n) % self.num_classes).astype(np.int32)
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full(n, labels)
        if not np.issubdtype(labels.dtype, np.integer):
            raise UserError(f"labels must be integers, not {labels.dtype}")
        if labels.shape != (n,):
            raise UserError(f"labels must have shape ({n},), not {labels.shape}")
        problem = label_problem(labels, self.num_classes)
        if problem:
            raise UserError(f"labels {problem}")
        return labels.astype(np.int32)


def label_problem(labels, num_classes: int | None) -> str | None:
    """Why `labels` do not fit `num_classes` classes (0..K-1; -1 everywhere for unlabelled data), or None: the
    one place the label range is checked."""
    values = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)
    if values.size == 0:
        return None
    if not num_classes:
        return None if bool((values == -1).all()) else "must be -1 for unlabelled data (there are no classes)"
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= num_classes:
        return f"span {low}..{high}; labels must be in 0..{num_classes - 1}"
    return None


def _count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise UserError(f"n must be a whole number of samples, not {n!r}")
    if n < 1:
        raise UserError(f"n must be at least 1, not {n}")
    return int(n)


def shape_text(shape) -> str:
    return f"(N, {', '.join(map(str, shape))})"


def signature_of(model) -> GeneratorSignature:
    """The signature of a model plugin's generator (see core/model.py)."""
    images = tuple(getattr(model, "inputs", ()) or ())
    return GeneratorSignature(tuple(int(d) for d in model.latent_shape),
                              model.info.num_classes if model.conditional else None, images)


def torch_inputs(z: np.ndarray, labels: np.ndarray | None, device="cpu"):
    """The same inputs as torch tensors (float32 noise, int32 labels) on `device`."""
    import torch  # lazy: the runtime of an exported file needs no torch

    zt = torch.from_numpy(z).to(device)
    return zt, (torch.from_numpy(labels).to(device) if labels is not None else None)


def call_generator(generator, z, labels=None, images=()):
    """The one call convention: g(z, *images) for unconditional generators, g(z, labels, *images) for conditional
    ones (images: a restoration model's image inputs, in its order)."""
    return generator(z, *images) if labels is None else generator(z, labels, *images)
