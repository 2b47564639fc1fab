"""The ONNX export's view of the precision table (core/precision.py: tolerance, rewrite, quality gate and
converter per precision), with what only export knows: int8's targets, the opsets, the gate's metrics.
Light: the CLI reads it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from genforge.core.precision import export_precisions

PRECISIONS = export_precisions()  # fp32, fp16, int8: rows of core/precision.py with an ONNX column


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
DEFAULT_TARGET = "cpu"
OPSETS = range(18, 24)  # what torch's dynamo exporter writes as asked (it writes 18 for anything lower)
DEFAULT_OPSET = 18


# what the quality gate may compare with fp32 besides FD: a restoration model's paired metrics, and the most each
# may drop (dB for PSNR); app/export.py runs the gate
PAIRED_GATES = {"psnr": 0.5, "psnr_masked": 0.5, "ssim": 0.01, "ssim_masked": 0.01}
GATE_METRICS = ("fd", *PAIRED_GATES)


def export_file_name(stem: str, precision: str, target: str = "cpu", suffix: str = ".onnx") -> str:
    """The one name of an exported file wherever genforge chooses it (export's default, `genforge run`, bench
    suites): STEM-PRECISION.onnx, with the int8 target added when it is not the CPU's (cgan-int8-tensorrt.onnx)."""
    named = PRECISIONS.get(precision) and PRECISIONS[precision].has_targets and target != DEFAULT_TARGET
    return f"{stem}-{precision}{f'-{target}' if named else ''}{suffix}"
