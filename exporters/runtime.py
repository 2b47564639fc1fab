"""One runtime API for every artifact: a run directory, an .onnx file or a TensorRT .engine.

    from genforge.exporters import runtime
    g = runtime.load("model.onnx")            # or a run directory, or model.engine
    images = g.generate(n=16, seed=0)         # float32 NCHW numpy array in [-1, 1]

Noise is drawn as everywhere in genforge (core/inputs.py: standard normal from `seed`) unless
`z` is given; labels default to 0, 1, 2, ... modulo the number of classes for conditional
generators, so a run directory and its export give the same images for the same seed. Loading an .onnx or
.engine needs only its metadata: no model-plugin code is imported.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from genforge.core.errors import UserError
from genforge.core.inputs import GeneratorSignature, call_generator, torch_inputs

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

    @property
    def signature(self) -> GeneratorSignature:
        return GeneratorSignature(tuple(self.latent_shape), self.num_classes)

    def prepare_inputs(self, n=None, z=None, labels=None, seed=None) -> tuple[np.ndarray, np.ndarray | None]:
        """Noise and labels drawn (or checked) as everywhere in genforge (core/inputs.py)."""
        return self.signature.inputs(n=n, z=z, labels=labels, seed=seed)

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
            return call_generator(self.loaded.generator, *torch_inputs(z, labels, self.device)).float().cpu().numpy()


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
