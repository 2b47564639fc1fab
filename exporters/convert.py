"""The converters from the fp32 ONNX file to the other precisions (named by exporters/precisions.py's rows):
fp16 by onnxruntime.transformers.float16, int8 by onnxruntime.quantization (static Q/DQ).

Every converter is called as convert(src, dst, feeds, target, keep_float=False) and returns the names of
the nodes it left in float (keep_float: the int8 converter's fallback when the full int8 file fails a check).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import TopologicalSortPass

from genforge.core.feeds import GeneratorFeeds
from genforge.exporters.precisions import INT8_TARGETS
from genforge.exporters.unroll import STEP_INPUT

QUANTIZED_OPS = ["Conv", "MatMul", "Gemm", "Relu", "Slice", "Concat", "Reshape", "Transpose", "Unsqueeze"]


def to_fp16(src: Path, dst: Path, feeds: GeneratorFeeds, target: str, keep_float: bool = False) -> list:
    """float16 inside, float32 inputs and outputs; Tanh, Sigmoid and Softmax stay float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16  # lazy: onnxruntime is an extra

    model = onnx.load(str(src))
    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=["Tanh", "Sigmoid", "Softmax"],
                                         disable_shape_infer=False)
    onnx.save(topologically_sorted(converted), str(dst))
    return []


def topologically_sorted(model):
    """The fp16 converter appends its input casts at the end of the graph; ONNX wants them first."""
    graph = ir.from_proto(model)
    TopologicalSortPass()(graph)
    return ir.to_proto(graph)


class _Calibration:
    """Feeds the generator's own input distribution to the int8 calibrator: its noise and labels, and a
    restoration model's image inputs degraded from real test images (core/feeds.py)."""

    def __init__(self, feeds: GeneratorFeeds, batches: int = 16, batch: int = 32, seed: int = 1234):
        self.items = [feeds.feed(batch, seed=seed + i) for i in range(batches)]
        self.index = 0

    def get_next(self):
        if self.index >= len(self.items):
            return None
        self.index += 1
        return self.items[self.index - 1]

    def rewind(self):
        self.index = 0


def edge_layers(model: onnx.ModelProto) -> list[str]:
    """The nodes int8 hurts most: those reading the first or the last Conv/Gemm weights (in an unrolled sampler,
    every step's copy) and every MatMul of two activations (attention)."""
    weights = {i.name for i in model.graph.initializer}
    layers = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm") and len(n.input) > 1]
    edges = {layers[0].input[1], layers[-1].input[1]} if layers else set()
    attention = [n.name for n in model.graph.node if n.op_type == "MatMul" and not set(n.input) & weights]
    return [n.name for n in layers if n.input[1] in edges] + attention


def to_int8(src: Path, dst: Path, feeds: GeneratorFeeds, target: str, keep_float: bool = False) -> list:
    """Static Q/DQ int8 calibrated on the generator's own inputs, in the form `target` (an INT8_TARGETS name) runs.

    An unrolled sampler (exporters/unroll.py) is calibrated through the whole graph, so each step's copy of
    the network gets the ranges of the noise level it really sees; its calibration batches are smaller, as
    every step's activations are alive at once.
    """
    from onnxruntime.quantization import (  # lazy: onnxruntime is an extra
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process  # lazy: onnxruntime is an extra

    rules = INT8_TARGETS[target]
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(src), load_external_data=False).graph
        unrolled = any(i.name.startswith(STEP_INPUT) for i in graph.initializer)
        calibration = _Calibration(feeds, batches=16, batch=8) if unrolled else _Calibration(feeds)
        kept = edge_layers(onnx.load(str(prepared), load_external_data=False)) if keep_float else []
        quantize_static(str(prepared), str(dst), calibration, nodes_to_exclude=kept,
                        quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                        reduce_range=rules.reduce_range,
                        activation_type=QuantType.QInt8 if rules.signed_activations else QuantType.QUInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        op_types_to_quantize=QUANTIZED_OPS + (["ConvTranspose"] if target == "tensorrt" else []),
                        extra_options={"ActivationSymmetric": rules.symmetric_activations, "WeightSymmetric": True,
                                       "QuantizeBias": not rules.float_bias})
    return kept
