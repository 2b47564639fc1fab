"""Every ONNX export precision and its policy, in one table (light: the CLI reads it at start-up).

tolerance: the export is checked against the fp32 PyTorch generator at two batch sizes and
refused below min_psnr_db (peak-to-peak 2, the [-1, 1] range) or above max_abs_error.
rewrite: the exact ConvTranspose rewrite (exporters/rewrite.py) is on by default, with this
interleave form. quality_gate: the variant's FD is compared with fp32's and refused past
--max-fd-increase.
"""

from __future__ import annotations

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


PRECISIONS = {p.name: p for p in (
    Precision("fp32", 60.0, 1e-3, True, "concat", False,
              "float32 graph, ConvTranspose rewritten into Convs (fastest on ONNX Runtime CPU)"),
    Precision("fp16", 35.0, 0.1, False, "concat", True,
              "float16 graph with float32 inputs and outputs, for GPUs; Tanh stays float32"),
    Precision("int8", 22.0, 0.6, True, "transpose", True,
              "static Q/DQ int8, calibrated on the generator's own inputs; uint8 activations, 7-bit weights"),
)}
OPSETS = range(18, 24)  # what torch's dynamo exporter writes as asked (it writes 18 for anything lower)
DEFAULT_OPSET = 18
