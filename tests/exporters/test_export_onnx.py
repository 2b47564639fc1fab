"""ONNX export: every built-in model in every precision, validation, metadata, runtime, bad input."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from helpers import assert_one_line_error

from genforge.app.export import export_gated
from genforge.core import runtime
from genforge.core.data import DataInfo
from genforge.core.errors import UserError, ValidationFailed
from genforge.exporters.onnx import export_onnx, psnr
from genforge.exporters.precisions import PRECISIONS
from genforge.exporters.rewrite import max_difference, rewrite_generator


@pytest.fixture(scope="module")
def runs(tiny_runs):
    return tiny_runs


def randomise_batchnorm(module):
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            if m.affine:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)


@pytest.mark.parametrize("form", ["auto", "split"])
@pytest.mark.parametrize("model", ["dcgan", "cgan", "vae"])
@pytest.mark.parametrize("interleave", ["transpose", "concat"])
def test_convtranspose_rewrite_is_exact(model, form, interleave):
    from genforge.core.contract import build_model

    net = build_model(model, DataInfo("x", 3, 64, 64, 10), {})
    generator = net.generator().eval()
    randomise_batchnorm(generator)
    labels = (torch.tensor([0, 4, 9], dtype=torch.int32),) if net.conditional else ()
    inputs = (torch.randn(3, *net.latent_shape),) + labels
    rewritten, count = rewrite_generator(generator, inputs, form, interleave)
    kept = [m for m in rewritten.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    if form == "auto":  # four convs where there are 8+ output channels; the RGB layer stays as it is
        assert [m.out_channels for m in kept] == [3]
        assert count == (4 if model != "vae" else 3)
    else:
        assert not kept and count == (5 if model != "vae" else 4)
    assert max_difference(generator, rewritten, inputs) < 1e-5


def test_fp32_export_is_rewritten_unless_told_not_to(runs, tmp_path, genforge_cli):
    ops = {}
    for flag in ("--rewrite", "--no-rewrite"):
        out = tmp_path / f"{flag}.onnx"
        genforge_cli("export", "onnx", runs["dcgan"], "--out", out, flag)
        proto = onnx.load(str(out))
        ops[flag] = [n.op_type for n in proto.graph.node]
        meta = {p.key: p.value for p in proto.metadata_props}
        assert (meta["rewrite"] == "none") == (flag == "--no-rewrite")
    assert ops["--rewrite"].count("ConvTranspose") == 1 and "Conv" in ops["--rewrite"]  # only the RGB layer kept
    assert ops["--no-rewrite"].count("ConvTranspose") == 3 and "Conv" not in ops["--no-rewrite"]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("model", ["dcgan", "cgan", "vae"])
def test_every_model_exports_in_every_precision(runs, tmp_path, model, precision):
    out = tmp_path / f"{model}-{precision}.onnx"
    report = export_gated(runs[model], out, precision=precision, quality_samples=200, max_fd_increase=10.0)
    assert out.exists() and all(c["ok"] for c in report.checks)
    assert [c["batch"] for c in report.checks] == [2, 7]
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert not (tmp_path / f"{out.name}.data").exists() and len(list(tmp_path.iterdir())) == 1, "self-contained"
    assert not any(n.op_type == "RandomNormal" or n.op_type == "RandomNormalLike" for n in proto.graph.node)
    if precision == "int8":
        ops = [n.op_type for n in proto.graph.node]
        assert "QuantizeLinear" in ops and ops.count("ConvTranspose") == 1 and "Conv" in ops  # RGB layer kept
    reference = runtime.load(runs[model])
    exported = runtime.load(out)
    min_psnr, max_abs = PRECISIONS[precision].min_psnr_db, PRECISIONS[precision].max_abs_error
    for batch in (1, 2, 7):
        expected = reference.generate(n=batch, seed=batch)
        got = exported.generate(n=batch, seed=batch)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert psnr(expected, got) >= min_psnr and np.abs(got - expected).max() <= max_abs
    if precision != "fp32":
        assert set(report.quality) >= {"fd_fp32", "fd_variant", "fd_increase", "ok"}


def test_metadata_round_trips(runs, tmp_path):
    out = tmp_path / "cgan.onnx"
    export_onnx(runs["cgan"], out)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    record = json.loads((runs["cgan"] / "config.json").read_text())
    assert meta["model"] == "cgan" and meta["plugin"] == "genforge" and meta["precision"] == "fp32"
    assert json.loads(meta["latent_shape"]) == [16, 1, 1] and meta["num_classes"] == "10"
    assert meta["label_dtype"] == "int32" and json.loads(meta["image_shape"]) == [1, 16, 16]
    assert meta["output_range"] == "[-1, 1]" and meta["training_step"] == "6"
    assert meta["run_id"] == record["run_id"]
    loaded = runtime.load(out)
    assert loaded.latent_shape == (16, 1, 1) and loaded.num_classes == 10 and loaded.image_shape == (1, 16, 16)
    inputs = {i.name: i.type.tensor_type.elem_type for i in onnx.load(str(out)).graph.input}
    assert inputs == {"z": onnx.TensorProto.FLOAT, "labels": onnx.TensorProto.INT32}


def test_fixed_batch_export(runs, tmp_path):
    out = tmp_path / "b4.onnx"
    report = export_onnx(runs["dcgan"], out, batch=4)
    assert [c["batch"] for c in report.checks] == [4]
    g = runtime.load(out)
    assert g.generate(n=4).shape == (4, 1, 16, 16)
    with pytest.raises(UserError, match="exported for batch 4"):
        g.generate(n=3)


def test_refused_variant_leaves_no_file_and_force_writes_it(runs, tmp_path, genforge_cli):
    out = tmp_path / "int8.onnx"
    with pytest.raises(ValidationFailed, match="nothing written"):
        export_gated(runs["dcgan"], out, precision="int8", max_fd_increase=-0.99, quality_samples=200)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    result = genforge_cli("export", "onnx", runs["dcgan"], "--out", out, "--precision", "int8", "--max-fd-increase",
                     "-0.99", "--quality-samples", "200", expect=1)
    assert "nothing written" in result.stderr and not out.exists()
    forced = genforge_cli("export", "onnx", runs["dcgan"], "--out", out, "--precision", "int8", "--max-fd-increase",
                     "-0.99", "--quality-samples", "200", "--force")
    assert "--force" in forced.stdout and out.exists()


def test_sample_from_onnx_imports_no_model_plugin(runs, tmp_path):
    out = tmp_path / "cgan.onnx"
    export_onnx(runs["cgan"], out)
    script = (
        "import sys\n"
        "from genforge.app.cli import main\n"
        f"try:\n    main(['sample', {str(out)!r}, '--n', '20', '--labels', '3', "
        f"'--out', {str(tmp_path / 'g.png')!r}])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print('PLUGINS', sorted(m for m in sys.modules if m in ('genforge.plugins.dcgan', 'genforge.plugins.cgan', "
        "'genforge.plugins.vae', 'genforge.core.training.trainer')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "PLUGINS []" in result.stdout and (tmp_path / "g.png").exists()


def test_bad_inputs(runs, tmp_path, genforge_cli):
    good = tmp_path / "good.onnx"
    export_onnx(runs["cgan"], good)
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("hello")
    assert_one_line_error(genforge_cli("sample", not_onnx, "--out", tmp_path / "x.png", expect=2), "not a valid ONNX")
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(good.read_bytes()[:2000])
    assert_one_line_error(genforge_cli("sample", truncated, "--out", tmp_path / "x.png", expect=2), "not a valid ONNX")

    proto = onnx.load(str(good))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    assert_one_line_error(genforge_cli("sample", bare, "--out", tmp_path / "x.png", expect=2), "no genforge metadata")
    proto = onnx.load(str(good))
    for p in proto.metadata_props:
        if p.key == "genforge_version":
            p.value = "99.0.0"
    newer = tmp_path / "newer.onnx"
    onnx.save(proto, str(newer))
    assert_one_line_error(genforge_cli("sample", newer, "--out", tmp_path / "x.png", expect=2), "newer", "upgrade")

    g = runtime.load(good)
    with pytest.raises(UserError, match=r"noise must have shape \(N, 16, 1, 1\)"):
        g.generate(z=np.zeros((2, 15, 1, 1), np.float32))
    with pytest.raises(UserError, match="noise must be float32"):
        g.generate(z=np.zeros((2, 16, 1, 1), np.int64))
    with pytest.raises(UserError, match="labels must be in 0..9"):
        g.generate(n=2, labels=[1, 10])
    assert_one_line_error(genforge_cli("sample", good, "--labels", "-1", "--out", tmp_path / "x.png", expect=2),
                          "labels must be in 0..9")

    empty_run = tmp_path / "empty-run"
    empty_run.mkdir()
    (empty_run / "config.json").write_text((runs["dcgan"] / "config.json").read_text())
    assert_one_line_error(genforge_cli("export", "onnx", empty_run, "--out", tmp_path / "e.onnx", expect=2),
                          "no checkpoint")
    assert_one_line_error(genforge_cli("export", "onnx", runs["dcgan"], "--out", tmp_path / "e.txt", expect=2),
                          "must end in .onnx")
    assert not (tmp_path / "e.onnx").exists()

    existing = tmp_path / "existing.onnx"
    existing.write_bytes(b"somebody's model")
    assert_one_line_error(genforge_cli("export", "onnx", runs["dcgan"], "--out", existing, expect=2),
                          "already exists; pass --overwrite")
    assert existing.read_bytes() == b"somebody's model"
    genforge_cli("export", "onnx", runs["dcgan"], "--out", existing, "--overwrite")
    assert onnx.load(str(existing)).graph.node


def test_provider_fallback_warns(runs, tmp_path, caplog):
    out = tmp_path / "m.onnx"
    export_onnx(runs["dcgan"], out)
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA provider present: no fallback to show")
    with caplog.at_level("WARNING", logger="genforge.runtime"):
        g = runtime.load(out, provider="cuda")
    assert g.provider == "CPUExecutionProvider"
    assert "falling back to CPU" in caplog.text
    assert g.generate(n=2).shape == (2, 1, 16, 16)


@pytest.mark.gpu
def test_cuda_provider_runs(runs, tmp_path):
    out = tmp_path / "m.onnx"
    export_onnx(runs["dcgan"], out)
    g = runtime.load(out, provider="cuda")
    assert g.provider == "CUDAExecutionProvider"
    np.testing.assert_allclose(g.generate(n=3, seed=1), runtime.load(out).generate(n=3, seed=1), atol=1e-3)


def test_engine_sidecar_checks_without_a_gpu(tmp_path):
    from genforge.core.runtime.tensorrt import check_compatible, read_sidecar
    from genforge.exporters.tensorrt import profile_shapes

    engine = tmp_path / "g.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(UserError, match="no sidecar"):
        read_sidecar(engine)
    sidecar = {"tensorrt_version": "10.13.0", "gpu": "NVIDIA H100", "profile": profile_shapes((16, 1, 1), 1, 8, 32)}
    (tmp_path / "g.engine.json").write_text(json.dumps(sidecar))
    assert read_sidecar(engine)["profile"]["max"] == [32, 16, 1, 1]
    with pytest.raises(UserError, match="TensorRT 10.13.0, this is 11.4.0; rebuild"):
        check_compatible(sidecar, "11.4.0", "NVIDIA H100")
    with pytest.raises(UserError, match="built on NVIDIA H100, this GPU is NVIDIA H200"):
        check_compatible(sidecar, "10.13.0", "NVIDIA H200")
    with pytest.raises(UserError, match="min"):
        profile_shapes((16, 1, 1), 8, 4, 32)


def test_tensorrt_export_without_tensorrt_is_one_line(runs, tmp_path, genforge_cli):
    try:
        import tensorrt  # noqa: F401
        if torch.cuda.is_available():
            pytest.skip("TensorRT and a GPU are present")
    except ImportError:
        pass
    onnx_path = tmp_path / "m.onnx"
    export_onnx(runs["dcgan"], onnx_path)
    assert_one_line_error(genforge_cli("export", "tensorrt", onnx_path, "--out", tmp_path / "m.engine", expect=2),
                          "TensorRT")
    assert not (tmp_path / "m.engine").exists()
    (tmp_path / "old.engine").write_bytes(b"an engine built for hours")
    assert_one_line_error(genforge_cli("export", "tensorrt", onnx_path, "--out", tmp_path / "old.engine", expect=2),
                          "already exists; pass --overwrite")
    assert (tmp_path / "old.engine").read_bytes() == b"an engine built for hours"


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tensorrt_engine_matches_onnx(runs, tmp_path, precision):
    pytest.importorskip("tensorrt")
    from genforge.exporters.tensorrt import build_engine

    onnx_path = tmp_path / f"m-{precision}.onnx"
    export_onnx(runs["cgan"], onnx_path, precision=precision, target="tensorrt")
    engine = tmp_path / f"m-{precision}.engine"
    build_engine(onnx_path, engine, 1, 4, 8)
    got = runtime.load(engine).generate(n=5, seed=3)
    expected = runtime.load(runs["cgan"]).generate(n=5, seed=3)
    assert psnr(expected, got) >= PRECISIONS[precision].min_psnr_db - 5
    with pytest.raises(UserError, match="covers batch 1 to 8"):
        runtime.load(engine).generate(n=9)
