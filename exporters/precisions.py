"""Every ONNX export precision and its policy, in one table (light: the CLI reads it at start-up).

tolerance: the export is checked against the fp32 PyTorch generator at two batch sizes and
refused below min_psnr_db (peak-to-peak 2, the [-1, 1] range) or above max_abs_error.
rewrite: the exact ConvTranspose rewrite (exporters/rewrite.py) is on by default, with this
interleave form. quality_gate: the variant's FD is compared with fp32's and refused past
--max-fd-increase (the application's gate: app/export.py). convert: the converter from the fp32 file
(exporters/convert.py), named so reading the table imports nothing heavy.

Training precisions are torch autocast modes, a different thing: core/training/config.py AUTOCAST_MODES.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    name: str
    min_psnr_db: float
    max_abs_error: float
    rewrite: bool
    interleave: str
    quality_gate: bool
    summary: str
    convert: str | None = None  # "module:function" in exporters/convert.py, None for fp32 (the exported file)
    float_retry: bool = False  # a file that fails a check is made once more with its edge layers in float

    def converter(self):
        module, name = self.convert.split(":")
        return getattr(importlib.import_module(module), name)


PRECISIONS = {p.name: p for p in (
    Precision("fp32", 60.0, 1e-3, True, "concat", False,
              "float32 graph, ConvTranspose rewritten into Convs (fastest on ONNX Runtime CPU)"),
    Precision("fp16", 35.0, 0.1, False, "concat", True,
              "float16 graph with float32 inputs and outputs, for GPUs; Tanh stays float32",
              "genforge.exporters.convert:to_fp16"),
    Precision("int8", 22.0, 0.6, True, "transpose", True,
              "static Q/DQ int8, calibrated on the generator's own inputs, for --target cpu or tensorrt",
              "genforge.exporters.convert:to_int8", float_retry=True),
)}


@dataclass(frozen=True)
class Int8Target:
    """Where an int8 file will run: the two differ in how activations are quantized, and neither runs the
    other's fast (measured: docs/int8-targets.md)."""

    name: str
    signed_activations: bool  # int8 (TensorRT's only form) or uint8 (ONNX Runtime's fast CPU kernels)
    symmetric_activations: bool  # zero point 0 (TensorRT's only form)
    reduce_range: bool  # 7-bit weights: uint8 x int8 pair sums overflow int16 on x86 CPUs without VNNI
    float_bias: bool  # biases left in float (TensorRT dequantizes only int8, not ONNX Runtime's int32 biases)
    summary: str


INT8_TARGETS = {t.name: t for t in (
    Int8Target("cpu", False, False, True, False,
               "ONNX Runtime on CPUs: uint8 asymmetric activations, 7-bit per-channel weights (TensorRT rejects it)"),
    Int8Target("tensorrt", True, True, False, True,
               "TensorRT (and ONNX Runtime's TensorRT provider): symmetric int8 activations and per-channel weights, "
               "zero points 0; about 4x slower than 'cpu' on ONNX Runtime CPU"),
)}
OPSETS = range(18, 24)  # what torch's dynamo exporter writes as asked (it writes 18 for anything lower)
DEFAULT_OPSET = 18


# what the quality gate may compare with fp32 besides FD: a restoration model's paired metrics, and the most each
# may drop (dB for PSNR); app/export.py runs the gate
PAIRED_GATES = {"psnr": 0.5, "psnr_masked": 0.5, "ssim": 0.01, "ssim_masked": 0.01}
GATE_METRICS = ("fd", *PAIRED_GATES)
