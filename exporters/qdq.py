"""What TensorRT accepts of an int8 Q/DQ ONNX file, checked statically (no GPU needed).

TensorRT's ONNX parser takes only symmetric int8 quantization: every QuantizeLinear and
DequantizeLinear with an int8 zero point of 0 (per-tensor activations, per-channel weights along
the output channel). It fuses a DequantizeLinear into the convolution or matrix product that
consumes it, so the inputs of each Conv, ConvTranspose, Gemm and MatMul must come from
DequantizeLinear nodes (activations and weights alike) for the layer to run in int8.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

FUSED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def tensorrt_qdq_problems(model: onnx.ModelProto) -> list[str]:
    """Every way this graph's Q/DQ breaks TensorRT's rules (empty when TensorRT can build it in int8)."""
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    constants[node.output[0]] = numpy_helper.to_array(attribute.t)
    producers = {output: node for node in graph.node for output in node.output}
    problems, quantizers = [], [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not quantizers:
        return ["no QuantizeLinear/DequantizeLinear nodes: not an int8 Q/DQ file"]
    for node in quantizers:
        name = node.name or node.output[0]
        if len(node.input) < 3 or node.input[2] not in constants:
            problems.append(f"{node.op_type} {name} has no constant zero point")
            continue
        zero_point = constants[node.input[2]]
        if zero_point.dtype != np.int8:
            problems.append(f"{node.op_type} {name} quantizes to {zero_point.dtype}, not int8")
        elif np.any(zero_point != 0):
            first = int(zero_point.flat[np.flatnonzero(zero_point)[0]])
            problems.append(f"{node.op_type} {name} has a zero point of {first}, not 0 (asymmetric)")
    for node in graph.node:
        if node.op_type not in FUSED_OPS:
            continue
        for index in (0, 1):
            producer = producers.get(node.input[index])
            if producer is None or producer.op_type != "DequantizeLinear":
                problems.append(f"{node.op_type} {node.name or node.output[0]}'s input {index} "
                                f"({node.input[index]}) does not come from a DequantizeLinear")
    return problems
