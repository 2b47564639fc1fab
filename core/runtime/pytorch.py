"""A run directory's generator behind the runtime API, in PyTorch: fp32, or bf16 where the hardware has it."""

from __future__ import annotations

import copy
import functools

import torch

from genforge.core.errors import UserError
from genforge.core.feeds import GeneratorFeeds
from genforge.core.hardware import cpu_has_bf16
from genforge.core.inputs import call_generator, signature_of, torch_inputs
from genforge.core.numerics import psnr
from genforge.core.precision import TABLE, runtime_precisions
from genforge.core.runs.run_dir import load_run
from genforge.core.runtime.base import DEVICES, GeneratorRuntime

TORCH_PRECISIONS = runtime_precisions()
BF16_MIN_PSNR_DB = TABLE["bf16"].min_psnr_db


def check_bf16_device(device: str) -> None:
    """bf16 pays only where the hardware computes it: a CUDA GPU, or a CPU with AVX-512 BF16 or AMX."""
    if device == "cpu" and not cpu_has_bf16():
        raise UserError("bf16 on this CPU would be emulated and several times slower than fp32 (it has neither "
                        "AVX-512 BF16 nor AMX); use fp32, or ONNX Runtime int8 for speed")


def to_bf16(generator: torch.nn.Module) -> torch.nn.Module:
    """The generator's weights in bfloat16, convolutions in channels_last (oneDNN's fast bf16 layout)."""
    return generator.to(dtype=torch.bfloat16, memory_format=torch.channels_last)


class TorchRuntime(GeneratorRuntime):
    """A run directory's generator in PyTorch, in fp32 or (where the hardware has it) bf16."""

    def __init__(self, run_dir, checkpoint=None, ema=None, device="cpu", precision="fp32", sampling=None):
        if device not in DEVICES:
            raise UserError(f"unknown device {device!r}; use cpu or cuda")
        if precision not in TORCH_PRECISIONS:
            raise UserError(f"unknown precision {precision!r} for a run directory; use fp32 or bf16")
        if device == "cuda" and not torch.cuda.is_available():
            raise UserError("device 'cuda' was asked for but no CUDA device is available; use device='cpu'")
        if precision == "bf16":
            check_bf16_device(device)
        self.loaded = load_run(run_dir, checkpoint, ema=ema, device=device, sampling=sampling)
        self.device, self.precision = device, precision
        info = self.loaded.info
        self.signature = signature_of(self.loaded.model)
        self.image_shape = (info.channels, info.height, info.width)
        self.metadata = {"model": self.loaded.model_name, "step": self.loaded.step, "precision": precision,
                         "dataset": info.name}
        self._class_names = list(info.class_names or [])
        self.generator = self.loaded.generator
        if precision == "bf16":
            z, labels = self.prepare_inputs(n=16, seed=4321)
            images = self.example_images(16)
            expected = self.run(z, labels, images)
            self.generator = to_bf16(copy.deepcopy(self.loaded.generator))
            self.psnr_db = psnr(expected, self.run(z, labels, images))
            if self.psnr_db < BF16_MIN_PSNR_DB:
                raise UserError(f"this generator loses too much in bf16 (PSNR {self.psnr_db:.1f} dB against fp32, "
                                f"at least {BF16_MIN_PSNR_DB:g} needed); use fp32")

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
        if next(self.generator.parameters(), torch.empty(0)).dtype == torch.bfloat16:
            z_tensor = z_tensor.to(torch.bfloat16)
            image_tensors = [t.to(torch.bfloat16) for t in image_tensors]
        with torch.inference_mode():
            return call_generator(self.generator, z_tensor, label_tensor, image_tensors).float().cpu().numpy()
