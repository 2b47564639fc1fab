"""int8 files for two targets: ONNX Runtime's CPU kernels (uint8 asymmetric) and TensorRT (symmetric int8).

Every Q/DQ of a TensorRT-bound file is checked statically (int8, zero point 0, every Conv, ConvTranspose,
Gemm and MatMul fed by DequantizeLinear): no GPU needed. The CPU-flavoured file must fail the same check,
and `genforge export tensorrt` must refuse it in one line before asking for TensorRT or a GPU.
"""

import onnx
import pytest
from helpers import assert_one_line_error

from genforge.core import runtime
from genforge.exporters.onnx import export_onnx, psnr
from genforge.exporters.qdq import tensorrt_qdq_problems


@pytest.fixture(scope="module")
def exports(train_small, tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    files = {}
    for model in ("dcgan", "cgan", "vae"):
        run = train_small(root / model, model=model).out
        for target in ("cpu", "tensorrt"):
            path = root / f"{model}-{target}.onnx"
            export_onnx(run, path, precision="int8", target=target)
            files[model, target] = (run, path)
    return files


@pytest.mark.parametrize("model", ["dcgan", "cgan", "vae"])
def test_a_tensorrt_bound_int8_file_keeps_every_qdq_rule(model, exports):
    run, path = exports[model, "tensorrt"]
    graph = onnx.load(str(path))
    assert tensorrt_qdq_problems(graph) == []
    quantizers = [n for n in graph.graph.node if n.op_type == "QuantizeLinear"]
    assert quantizers, "activations are quantized"
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["precision"] == "int8" and meta["int8_target"] == "tensorrt"
    expected = runtime.load(run).generate(n=8, seed=1)
    assert psnr(expected, runtime.load(path).generate(n=8, seed=1)) >= 22


@pytest.mark.parametrize("model", ["dcgan", "cgan", "vae"])
def test_the_cpu_flavoured_int8_file_fails_the_tensorrt_rules(model, exports):
    _, path = exports[model, "cpu"]
    problems = tensorrt_qdq_problems(onnx.load(str(path)))
    assert any("not int8" in p or "not 0" in p for p in problems), problems
    assert {p.key: p.value for p in onnx.load(str(path)).metadata_props}["int8_target"] == "cpu"


def test_export_tensorrt_refuses_a_cpu_int8_file_saying_how_to_export_the_right_one(exports, genforge_cli, tmp_path):
    _, path = exports["dcgan", "cpu"]
    result = genforge_cli("export", "tensorrt", path, "--out", tmp_path / "g.engine", expect=2)
    assert_one_line_error(result, "int8 for ONNX Runtime on CPUs", "--target tensorrt")
    assert not (tmp_path / "g.engine").exists()


def test_the_target_option_is_checked(exports, genforge_cli, tmp_path):
    run, _ = exports["dcgan", "cpu"]
    assert_one_line_error(genforge_cli("export", "onnx", run, "--out", tmp_path / "x.onnx", "--precision", "int8",
                                       "--target", "edge", expect=2), "--target")
