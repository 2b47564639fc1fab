"""Every precision genforge knows, in one table that every layer reads (light: the CLI reads it at start-up).

One row per precision, one column per layer:
  training     `genforge train --precision`: the torch autocast dtype of a training step (autocast; None: the
               step runs as it is), and whether it needs CUDA (fp16's gradient scaling)
  runtime      a run directory's generator run by PyTorch in it (`genforge.load(run, precision=...)`), gated
               against fp32 at min_psnr_db, and the benchmark backend that times it (`genforge bench --precision`)
  onnx         `genforge export onnx --precision`: the tolerance against the fp32 PyTorch generator
               (min_psnr_db, peak-to-peak 2; max_abs_error), the exact ConvTranspose rewrite and its interleave
               form, the quality gate (app/export.py), and the converter from the fp32 file, named so reading
               the table imports nothing heavy (fp32 is the exported file itself)
int8's two forms, for ONNX Runtime on CPUs and for TensorRT, are its targets (exporters/precisions.py
INT8_TARGETS; has_targets marks it). Adding a precision is adding a row, and its converter for ONNX or its
dtype for training or the runtime. REFERENCE (fp32) is the one every other is measured against and the default.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    name: str
    summary: str
    trains: bool = False  # a training precision
    autocast: str | None = None  # the torch dtype a training step autocasts to (None: no autocast)
    training_needs_cuda: bool = False
    runtime: bool = False  # PyTorch runs a run directory's generator in it
    runtime_dtype: str | None = None  # the torch dtype its weights are cast to there (None: as trained)
    bench_backend: str | None = None  # the benchmark backend that times a run directory in it
    onnx: bool = False  # an ONNX export precision
    min_psnr_db: float = 0.0  # against fp32: the export's tolerance, and the runtime's gate
    max_abs_error: float = 0.0
    rewrite: bool = False
    interleave: str = "concat"
    quality_gate: bool = False
    convert: str | None = None  # "module:function", for ONNX precisions other than fp32
    float_retry: bool = False  # a file that fails a check is made once more with its edge layers in float
    has_targets: bool = False  # the exported file is made for one target (exporters/precisions.py INT8_TARGETS)
    exported_by_default: bool = False  # `genforge run` and the plugin kit export it unless told otherwise

    def converter(self):
        module, name = self.convert.split(":")
        return getattr(importlib.import_module(module), name)


REFERENCE = "fp32"
TABLE = {p.name: p for p in (
    Precision(REFERENCE, "float32 everywhere; the ONNX graph has its ConvTranspose rewritten into Convs (fastest on "
              "ONNX Runtime CPU)", trains=True, runtime=True, bench_backend="torch", onnx=True, min_psnr_db=60.0,
              max_abs_error=1e-3, rewrite=True, exported_by_default=True),
    Precision("fp16", "float16 graph with float32 inputs and outputs, for GPUs; Tanh stays float32 (training: "
              "autocast with gradient scaling, CUDA only)", trains=True, autocast="float16",
              training_needs_cuda=True, onnx=True, min_psnr_db=35.0, max_abs_error=0.1, quality_gate=True,
              convert="genforge.exporters.convert:to_fp16"),
    # bf16 keeps 8 bits of mantissa where fp16 keeps 11; its runtime gate is fp16's export tolerance
    Precision("bf16", "bfloat16 (training: autocast; PyTorch runtime: weights in bfloat16, channels_last), where "
              "the CPU or GPU has native bf16", trains=True, autocast="bfloat16", runtime=True,
              runtime_dtype="bfloat16", bench_backend="torch-bf16", min_psnr_db=35.0),
    Precision("int8", "static Q/DQ int8, calibrated on the generator's own inputs, for --target cpu or tensorrt",
              onnx=True, min_psnr_db=22.0, max_abs_error=0.6, rewrite=True, interleave="transpose",
              quality_gate=True, convert="genforge.exporters.convert:to_int8", float_retry=True, has_targets=True,
              exported_by_default=True),
)}


def timed_by(backend: str) -> str:
    """The precision whose run directories the benchmark backend `backend` times (its bench_backend column)."""
    return next(name for name, p in TABLE.items() if p.bench_backend == backend)


def bfloat16_precision() -> str:
    """The training precision a model's bf16_by_default asks for: the row that autocasts to bfloat16."""
    return next(name for name, p in TABLE.items() if p.autocast == "bfloat16")


def default_exports() -> list[str]:
    """What `genforge run` and the plugin kit export when not told: the reference and the fast CPU file."""
    return [name for name, p in TABLE.items() if p.exported_by_default]


def training_precisions() -> tuple[str, ...]:
    return tuple(name for name, p in TABLE.items() if p.trains)


def runtime_precisions() -> tuple[str, ...]:
    return tuple(name for name, p in TABLE.items() if p.runtime)


def export_precisions() -> dict[str, Precision]:
    return {name: p for name, p in TABLE.items() if p.onnx}
