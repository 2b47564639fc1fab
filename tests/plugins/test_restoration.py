"""Restoration models: named image inputs in the contract, degrade() feeding every tool, paired metrics and the
gate on them, named ONNX inputs, `sample --input DIR`, and a third-party restoration plugin from the guide."""

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from helpers import assert_one_line_error
from PIL import Image

import genforge
from genforge.core.data import DataInfo
from genforge.core.errors import ContractError
from genforge.core.restore import degraded_inputs
from genforge.exporters.onnx import export_onnx
from genforge.plugins.inpaint import Inpaint, InpaintConfig


@pytest.fixture(scope="module")
def inpaint_run(train_small, tmp_path_factory):
    return train_small(tmp_path_factory.mktemp("inpaint") / "run", model="inpaint", steps=40, sample_every=20,
                       checkpoint_every=20).out


@pytest.fixture(scope="module")
def inpaint_onnx(inpaint_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("inpaint-onnx") / "inpaint.onnx"
    export_onnx(inpaint_run, path)
    return path


def test_degrade_cuts_a_quarter_hole_the_same_for_the_same_seed():
    model = Inpaint(DataInfo("digits", 1, 16, 16, 10), InpaintConfig(width=8))
    clean = torch.rand(4, 1, 16, 16) * 2 - 1
    image, mask = degraded_inputs(model, clean, seed=3)
    again = degraded_inputs(model, clean, seed=3)
    other = degraded_inputs(model, clean, seed=4)
    assert torch.equal(mask, again[1]) and not torch.equal(mask, other[1])
    assert torch.allclose((1 - mask).mean((1, 2, 3)), torch.full((4,), 0.25))
    assert torch.equal(image, clean * mask)


def test_the_generator_keeps_every_known_pixel():
    model = Inpaint(DataInfo("digits", 1, 16, 16, 10), InpaintConfig(width=8)).eval()
    clean = torch.rand(3, 1, 16, 16) * 2 - 1
    image, mask = degraded_inputs(model, clean, seed=0)
    out = model.generator()(torch.randn(3, 1, 16, 16), image, mask)
    assert torch.allclose(out * mask, clean * mask, atol=1e-6)


def test_training_writes_damaged_restored_clean_grids_and_judges_by_masked_psnr(inpaint_run):
    config = json.loads((inpaint_run / "config.json").read_text())["train"]
    assert config["eval_metric"] == "psnr_masked"
    with Image.open(inpaint_run / "samples.png") as grid:
        assert grid.size[1] > grid.size[0] / 8 * 2  # three rows of eight
    scores = genforge.evaluate(inpaint_run, n=100)
    assert {"psnr", "psnr_input", "psnr_masked", "psnr_masked_input", "ssim", "ssim_masked", "fd"} <= set(scores)
    assert scores["psnr_masked"] > scores["psnr_masked_input"] and scores["ssim"] > scores["ssim_input"]
    assert "restored PSNR in the hole" in scores.verdict()


def test_noise_only_models_get_no_paired_metric_and_no_note(run):
    scores = genforge.evaluate(run, n=50)
    assert "psnr" not in scores and "skipped" not in scores or "psnr" not in scores.get("skipped", {})


def test_exported_file_has_named_inputs_and_restores_with_onnx_runtime_alone(inpaint_run, inpaint_onnx):
    model = onnx.load(str(inpaint_onnx))
    assert [i.name for i in model.graph.input] == ["z", "image", "mask"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert [i["name"] for i in json.loads(meta["inputs"])] == ["image", "mask"]
    exported, trained = genforge.load(inpaint_onnx), genforge.load(inpaint_run)
    image, mask = trained.example_images(5)
    got = exported.generate(image=image, mask=mask, seed=1)
    assert np.allclose(got, trained.generate(image=image, mask=mask, seed=1), atol=1e-4)
    assert np.allclose(got * mask, image * mask, atol=1e-5)
    assert "image (1, 16, 16)" in repr(exported)


def test_the_int8_gate_is_the_models_paired_metric(inpaint_run, tmp_path):
    report = genforge.export(inpaint_run, out=tmp_path / "int8.onnx", precision="int8", quality_samples=100)
    assert report.exists()
    meta = {p.key: p.value for p in onnx.load(str(report), load_external_data=False).metadata_props}
    assert meta["precision"] == "int8" and json.loads(meta["inputs"])[1]["name"] == "mask"
    from genforge.app.export import export_gated

    result = export_gated(inpaint_run, tmp_path / "int8-again.onnx", precision="int8", quality_samples=100)
    assert result.quality["metric"] == "psnr_masked" and result.quality["drop"] <= 0.5 and result.quality["ok"]


def test_missing_or_extra_image_inputs_are_one_line_errors(inpaint_onnx):
    generator = genforge.load(inpaint_onnx)
    with pytest.raises(genforge.UserError, match="give image"):
        generator.generate(n=2)
    with pytest.raises(genforge.UserError, match="shape"):
        generator.generate(image=np.zeros((2, 1, 8, 8), np.float32), mask=np.ones((2, 1, 8, 8), np.float32))


def write_damaged(folder, names, with_mask=True):
    folder.mkdir()
    for name in names:
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 24), dtype=np.uint8)).save(folder / name)
        if with_mask:
            mask = np.full((24, 24), 255, np.uint8)
            mask[6:18, 6:18] = 0
            Image.fromarray(mask).save(folder / name.replace(".png", ".mask.png"))


def test_sample_input_restores_a_folder_under_the_same_names(inpaint_onnx, genforge_cli, tmp_path):
    write_damaged(tmp_path / "in", ["a.png", "b.png"])
    genforge_cli("sample", inpaint_onnx, "--input", tmp_path / "in", "--out", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    with Image.open(tmp_path / "out" / "a.png") as restored, Image.open(tmp_path / "in" / "a.png") as damaged:
        assert restored.size == (16, 16)
        known = np.asarray(damaged.resize((16, 16), Image.BICUBIC), np.float32)[:2]
        assert np.abs(np.asarray(restored, np.float32)[:2] - known).max() <= 1  # the known rows are kept
    again = genforge_cli("sample", inpaint_onnx, "--input", tmp_path / "in", "--out", tmp_path / "out",
                         expect=2)
    assert_one_line_error(again, "--overwrite")


def test_sample_input_mistakes_are_one_line(inpaint_run, run, genforge_cli, tmp_path):
    write_damaged(tmp_path / "nomask", ["a.png"], with_mask=False)
    missing = genforge_cli("sample", inpaint_run, "--input", tmp_path / "nomask", "--out", tmp_path / "o",
                           expect=2)
    assert_one_line_error(missing, "a.mask.png")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    noise_only = genforge_cli("sample", run, "--input", tmp_path / "nomask", "--out", tmp_path / "o2",
                              expect=2)
    assert_one_line_error(noise_only, "restoration models")


def test_scoring_an_exported_restorer_needs_its_run(inpaint_run, inpaint_onnx, genforge_cli):
    result = genforge_cli("evaluate", inpaint_onnx, "--n", "20", expect=2)
    assert_one_line_error(result, "--dataset-from")
    scores = genforge.evaluate(inpaint_onnx, n=40, dataset_from=inpaint_run, metrics="psnr_masked")
    assert scores["psnr_masked"] > scores["psnr_masked_input"]


def test_benchmarks_feed_the_image_inputs(inpaint_run, inpaint_onnx):
    report = genforge.bench([inpaint_run, inpaint_onnx], batches=[2], warmup_s=0, min_iters=2, duration_s=0.05)
    rows = report["rows"]
    assert {r["status"] for r in rows} <= {"ok", "skipped"}, rows  # skipped: the CUDA backends on this machine
    assert {r["target_kind"] for r in rows if r["status"] == "ok"} == {"run", "onnx"}, rows


def test_a_model_with_inputs_but_no_degrade_is_refused_naming_the_fix():
    from genforge.core.contract import build_model
    from genforge.core.specs import ModelSpec

    class NoDegrade(Inpaint):
        degrade = None

    spec = ModelSpec("half", "x:y", "")
    object.__setattr__(spec, "load", lambda: NoDegrade)
    with pytest.raises(ContractError, match="degrade"):
        build_model(spec, DataInfo("digits", 1, 16, 16, 10), {"width": 8})


def guide_denoiser() -> str:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    return re.search(r"```python\n# my_denoiser/plugin.py\n(.*?)```", guide, re.S).group(1)


def test_a_third_party_restoration_plugin_from_the_guide_trains_samples_evaluates_exports(
        install_plugin, genforge_cli, tmp_path):
    package = tmp_path / "site" / "my_denoiser"  # the install_plugin fixture's site folder
    package.mkdir(parents=True)
    (package / "__init__.py").touch()
    (package / "plugin.py").write_text(guide_denoiser())
    install_plugin("my_denoiser_entry", "from my_denoiser.plugin import register_models  # noqa: F401\n")
    run = tmp_path / "run"
    genforge_cli("train", "--model", "denoise", "--steps", "20", "--image-size", "16", "--batch-size", "16",
                 "--no-progress", "--out", run, "--threads", "1")
    scores = genforge.evaluate(run, n=50)
    assert scores["psnr"] > scores["psnr_input"] and "psnr_masked" not in scores
    for precision in ("fp32", "int8"):
        genforge_cli("export", "onnx", run, "--precision", precision, "--out", tmp_path / f"{precision}.onnx",
                     "--quality-samples", "50")
    exported = genforge.load(tmp_path / "int8.onnx")
    assert [i.name for i in exported.inputs] == ["noisy"]
    write_damaged(tmp_path / "in", ["x.png"], with_mask=False)
    genforge_cli("sample", tmp_path / "int8.onnx", "--input", tmp_path / "in", "--out", tmp_path / "out")
    assert (tmp_path / "out" / "x.png").exists()


@pytest.mark.slow
def test_the_plugin_kit_accepts_the_built_in_restoration_model(tmp_path):
    from genforge.testing import check_model_plugin

    report = check_model_plugin("inpaint", model_options={"width": 8}, workdir=tmp_path)
    assert any("psnr" in step for step in report.steps), report.steps
