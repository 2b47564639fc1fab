"""bf16 for deployment on CPUs with native bf16 (AVX-512 BF16, AMX): the runtime and the torch-bf16 backend,
gated on PSNR against fp32, refused in one line where the CPU would only emulate it."""

import pytest
from helpers import assert_one_line_error

from genforge.core import hardware, runtime
from genforge.core.errors import UserError
from genforge.core.numerics import psnr
from genforge.core.precision import TABLE
from genforge.core.runtime import pytorch as core_runtime


@pytest.fixture(scope="module")
def run(train_small, tmp_path_factory):
    return train_small(tmp_path_factory.mktemp("bf16") / "run").out


@pytest.mark.skipif(not hardware.cpu_has_bf16(), reason="this CPU has neither AVX-512 BF16 nor AMX")
def test_bf16_runtime_matches_fp32_within_its_gate(run):
    fp32, bf16 = runtime.load(run), runtime.load(run, precision="bf16")
    assert bf16.metadata["precision"] == "bf16" and bf16.psnr_db >= TABLE["bf16"].min_psnr_db
    images = bf16.generate(n=6, seed=2)
    assert images.dtype.name == "float32" and images.shape == fp32.generate(n=6, seed=2).shape
    assert psnr(fp32.generate(n=6, seed=2), images) >= TABLE["bf16"].min_psnr_db


@pytest.mark.skipif(not hardware.cpu_has_bf16(), reason="this CPU has neither AVX-512 BF16 nor AMX")
def test_bench_precision_bf16_times_the_torch_bf16_backend(run, genforge_cli, tmp_path):
    import json

    genforge_cli("bench", run, "--backend", "torch", "--precision", "bf16", "--batch", "2", "--warmup-s", "0",
                 "--duration-s", "0.05", "--json", tmp_path / "b.json")
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(r["backend"], r["status"]) for r in rows] == [("torch-bf16", "ok")]


def test_bf16_is_refused_in_one_line_where_the_cpu_would_emulate_it(run, monkeypatch, genforge_cli, tmp_path):
    monkeypatch.setattr(core_runtime, "cpu_has_bf16", lambda: False)
    with pytest.raises(UserError, match="neither AVX-512 BF16 nor AMX"):
        runtime.load(run, precision="bf16")
    from genforge.plugins import backends

    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: False)
    from genforge.core.targets import classify_target

    assert "neither AVX-512 BF16 nor AMX" in backends.TorchBf16Backend().skip_reason(classify_target(run))


def test_bf16_applies_to_run_directories_only(run, tmp_path):
    from genforge.exporters.onnx import export_onnx

    export_onnx(run, tmp_path / "g.onnx")
    with pytest.raises(UserError, match="applies to run directories only"):
        runtime.load(tmp_path / "g.onnx", precision="bf16")
    with pytest.raises(UserError, match="fp32 or bf16"):
        runtime.load(run, precision="fp8")


def test_bench_precision_is_checked(run, genforge_cli):
    assert_one_line_error(genforge_cli("bench", run, "--precision", "int4", expect=2), "--precision")


@pytest.mark.parametrize("native", [True, False])
def test_training_precision_defaults_to_the_models_choice_where_bf16_is_native(native, monkeypatch, train_small,
                                                                               tmp_path):
    import json

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: native)
    chosen = {}
    for model in ("diffusion", "dcgan"):
        trainer = train_small(tmp_path / model, model=model, steps=1)
        chosen[model] = json.loads((trainer.out / "config.json").read_text())["train"]["precision"]
    assert chosen == {"diffusion": "bf16" if native else "fp32", "dcgan": "fp32"}
    told = train_small(tmp_path / "told", model="diffusion", steps=1, precision="fp32")
    assert told.config.precision == "fp32"
