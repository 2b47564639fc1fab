"""One runtime API for every artifact: a run directory, an .onnx file or a TensorRT .engine.

    from genforge.exporters import runtime
    g = runtime.load("model.onnx")            # or a run directory, or model.engine
    images = g.generate(n=16, seed=0)         # float32 NCHW numpy array in [-1, 1]

Noise is drawn here (standard normal, from `seed`) unless `z` is given; labels default to
0, 1, 2, ... modulo the number of classes for conditional generators. Loading an .onnx or
.engine needs only its metadata: no model-plugin code is imported.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from genforge.core.errors import UserError

log = logging.getLogger("genforge.runtime")


class GeneratorRuntime:
    """What every backend shares: input checking and noise/label defaults."""

    latent_shape: tuple[int, ...]
    num_classes: int | None
    image_shape: tuple[int, int, int]
    metadata: dict

    @property
    def conditional(self) -> bool:
        return bool(self.num_classes)

    def prepare_inputs(self, n=None, z=None, labels=None, seed=None) -> tuple[np.ndarray, np.ndarray | None]:
        if z is None:
            if n is None:
                n = len(labels) if labels is not None else 1
            if int(n) < 1:
                raise UserError(f"n must be at least 1, not {n}")
            z = np.random.default_rng(seed).standard_normal((int(n), *self.latent_shape), dtype=np.float32)
        z = np.asarray(z)
        if z.dtype != np.float32:
            if not np.issubdtype(z.dtype, np.floating):
                raise UserError(f"noise must be float32, not {z.dtype}")
            z = z.astype(np.float32)
        if z.shape[1:] != tuple(self.latent_shape):
            raise UserError(f"noise must have shape (N, {', '.join(map(str, self.latent_shape))}), not {z.shape}")
        if n is not None and len(z) != int(n):
            raise UserError(f"n={n} but the noise holds {len(z)} samples")
        if not self.conditional:
            if labels is not None:
                raise UserError("this generator is unconditional; drop the labels")
            return z, None
        if labels is None:
            labels = np.arange(len(z)) % self.num_classes
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full(len(z), int(labels))
        if not np.issubdtype(labels.dtype, np.integer):
            raise UserError(f"labels must be integers, not {labels.dtype}")
        if labels.shape != (len(z),):
            raise UserError(f"labels must have shape ({len(z)},), not {labels.shape}")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise UserError(f"labels must be in 0..{self.num_classes - 1}; got {labels.min()}..{labels.max()}")
        return z, labels.astype(np.int32)

    def generate(self, n=None, z=None, labels=None, seed=None) -> np.ndarray:
        z, labels = self.prepare_inputs(n, z, labels, seed)
        return self.run(z, labels)

    def run(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError


class TorchRuntime(GeneratorRuntime):
    """A run directory's generator in PyTorch."""

    def __init__(self, run_dir, checkpoint=None, ema=False, device="cpu"):
        import torch

        from genforge.core.run import load_run

        self.torch = torch
        self.loaded = load_run(run_dir, checkpoint, ema=ema, device=device)
        self.device = device
        info = self.loaded.info
        self.latent_shape = tuple(self.loaded.model.latent_shape)
        self.num_classes = info.num_classes if self.loaded.model.conditional else None
        self.image_shape = (info.channels, info.height, info.width)
        self.metadata = {"model": self.loaded.model_name, "step": self.loaded.step, "precision": "fp32"}

    def run(self, z, labels):
        torch = self.torch
        with torch.inference_mode():
            zt = torch.from_numpy(z).to(self.device)
            g = self.loaded.generator
            out = g(zt, torch.from_numpy(labels).to(self.device)) if labels is not None else g(zt)
            return out.float().cpu().numpy()


def load(path, provider: str = "cpu", checkpoint=None, ema=False, device="cpu") -> GeneratorRuntime:
    """Open a run directory, .onnx or .engine for generation."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; pass a run directory, an .onnx file or an .engine file")
    if path.is_dir():
        return TorchRuntime(path, checkpoint, ema, device)
    if path.suffix == ".onnx":
        from genforge.exporters.onnx_runtime import OnnxRuntime

        return OnnxRuntime(path, provider)
    if path.suffix in (".engine", ".plan"):
        from genforge.exporters.tensorrt import EngineRuntime

        return EngineRuntime(path)
    raise UserError(f"{path} is neither a run directory, an .onnx file nor an .engine file")
