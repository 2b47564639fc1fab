"""A run directory's generator behind the runtime API, in PyTorch: as trained (fp32), or cast to a precision's
runtime dtype (core/precision.py runtime_dtype: bfloat16) where the hardware computes it natively."""

from __future__ import annotations

import copy
import functools

import torch

from genforge.core.errors import UserError
from genforge.core.feeds import GeneratorFeeds
from genforge.core.hardware import cpu_has_bf16
from genforge.core.inputs import call_generator, signature_of, torch_inputs
from genforge.core.numerics import psnr
from genforge.core.precision import REFERENCE, TABLE, runtime_precisions
from genforge.core.runs.run_dir import load_run
from genforge.core.runtime.base import DEVICES, GeneratorRuntime

TORCH_PRECISIONS = runtime_precisions()
NATIVE_ON_CPU = {"bfloat16": (lambda: cpu_has_bf16(), "AVX-512 BF16 nor AMX")}  # dtype: (the CPU has it, it lacks)


def check_native(precision: str, device: str) -> None:
    """A cast precision pays only where the hardware computes it: a CUDA GPU, or a CPU that has the dtype."""
    has, lacks = NATIVE_ON_CPU.get(TABLE[precision].runtime_dtype, (lambda: True, ""))
    if device == "cpu" and not has():
        raise UserError(f"{precision} on this CPU would be emulated and several times slower than {REFERENCE} (it "
                        f"has neither {lacks}); use {REFERENCE}, or ONNX Runtime int8 for speed")


def to_runtime_dtype(generator: torch.nn.Module, dtype: str) -> torch.nn.Module:
    """The generator's weights in `dtype`, convolutions in channels_last (oneDNN's fast layout for it)."""
    return generator.to(dtype=getattr(torch, dtype), memory_format=torch.channels_last)


class TorchRuntime(GeneratorRuntime):
    """A run directory's generator in PyTorch, as trained or cast to a runtime precision (core/precision.py)."""

    def __init__(self, run_dir, checkpoint=None, ema=None, device="cpu", precision=REFERENCE, sampling=None):
        if device not in DEVICES:
            raise UserError(f"unknown device {device!r}; use cpu or cuda")
        if precision not in TORCH_PRECISIONS:
            raise UserError(f"unknown precision {precision!r} for a run directory; use {' or '.join(TORCH_PRECISIONS)}")
        if device == "cuda" and not torch.cuda.is_available():
            raise UserError("device 'cuda' was asked for but no CUDA device is available; use device='cpu'")
        row = TABLE[precision]
        if row.runtime_dtype:
            check_native(precision, device)
        self.loaded = load_run(run_dir, checkpoint, ema=ema, device=device, sampling=sampling)
        self.device, self.precision = device, precision
        info = self.loaded.info
        self.signature = signature_of(self.loaded.model)
        self.image_shape = (info.channels, info.height, info.width)
        self.metadata = {"model": self.loaded.model_name, "step": self.loaded.step, "precision": precision,
                         "dataset": info.name}
        self._class_names = list(info.class_names or [])
        self.generator = self.loaded.generator
        if row.runtime_dtype:
            z, labels = self.prepare_inputs(n=16, seed=4321)
            images = self.example_images(16)
            expected = self.run(z, labels, images)
            self.generator = to_runtime_dtype(copy.deepcopy(self.loaded.generator), row.runtime_dtype)
            self.psnr_db = psnr(expected, self.run(z, labels, images))
            if self.psnr_db < row.min_psnr_db:
                raise UserError(f"this generator loses too much in {precision} (PSNR {self.psnr_db:.1f} dB against "
                                f"{REFERENCE}, at least {row.min_psnr_db:g} needed); use {REFERENCE}")

    @functools.cached_property
    def feeds(self) -> GeneratorFeeds:
        """What this run's generator is fed (core/feeds.py), its test split opened once."""
        return GeneratorFeeds.of_run(self.loaded)

    def example_images(self, n: int, seed: int = 4321) -> tuple:
        """A restoration model's inputs degraded from n of its run's test images (() for a noise-only model)."""
        arrays = self.feeds.arrays(n, seed)
        return arrays[len(arrays) - len(self.signature.images):] if self.signature.restores else ()

    def run(self, z, labels, images=()):
        z_tensor, label_tensor = torch_inputs(z, labels, self.device)
        image_tensors = [torch.from_numpy(value).to(self.device) for value in images]
        dtype = next(self.generator.parameters(), torch.empty(0)).dtype  # the runtime dtype it was cast to
        if dtype != torch.float32:
            z_tensor = z_tensor.to(dtype)
            image_tensors = [t.to(dtype) for t in image_tensors]
        with torch.inference_mode():
            return call_generator(self.generator, z_tensor, label_tensor, image_tensors).float().cpu().numpy()
