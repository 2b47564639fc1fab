"""Generator inputs, drawn one way everywhere: noise (and labels) for any generator.

Every place that feeds a generator (sample grids during training, evaluation, ONNX export and
its checks, int8 calibration, benchmarks, the runtime API, interpolation) takes its inputs
from `GeneratorSignature.inputs`:

* noise: float32, shape (N, *latent_shape), standard normal from numpy's PCG64 seeded by
  `seed`; numpy rather than torch, so an exported file draws the same noise as its run
  directory without importing torch;
* labels (conditional generators only): int32, shape (N,), 0, 1, 2, ... modulo the number
  of classes unless given.

One call convention: `call_generator(g, z, labels)` is `g(z)` for unconditional generators
and `g(z, labels)` for conditional ones.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from genforge.core.errors import UserError


@dataclass(frozen=True)
class GeneratorSignature:
    """What a generator takes: noise of `latent_shape` and, when num_classes is set, labels."""

    latent_shape: tuple[int, ...]
    num_classes: int | None = None

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


def signature_of(model) -> GeneratorSignature:
    """The signature of a model plugin's generator (see core/model.py)."""
    return GeneratorSignature(tuple(int(d) for d in model.latent_shape),
                              model.info.num_classes if model.conditional else None)


def torch_inputs(z: np.ndarray, labels: np.ndarray | None, device="cpu"):
    """The same inputs as torch tensors (float32 noise, int32 labels) on `device`."""
    import torch  # lazy: the runtime of an exported file needs no torch

    zt = torch.from_numpy(z).to(device)
    return zt, (torch.from_numpy(labels).to(device) if labels is not None else None)


def call_generator(generator, z, labels=None):
    """The one call convention: g(z) for unconditional generators, g(z, labels) for conditional ones."""
    return generator(z) if labels is None else generator(z, labels)
