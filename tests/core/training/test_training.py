"""The trainer and the built-in models on CPU: shapes, determinism, resume, checkpoints, errors."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error
from PIL import Image

from genforge.core import runtime
from genforge.core.errors import TrainingDiverged, UserError
from genforge.core.model import generate
from genforge.core.runs import checkpoint as ckpt
from genforge.core.runs.run_dir import load_run
from genforge.core.training.ema import EMA
from genforge.core.training.trainer import Trainer


def weights(run_dir, which=None):
    return ckpt.read_checkpoint(ckpt.find_checkpoint(run_dir, which)).model


@pytest.mark.parametrize("model", ["dcgan", "cgan", "vae"])
@pytest.mark.parametrize("dataset, channels, size", [("digits", 1, 32), ("shapes", 3, 16)])
def test_each_model_trains_and_samples(train_small, tmp_path, model, dataset, channels, size):
    trainer = train_small(tmp_path / "run", model=model, dataset=dataset, image_size=size)
    run = trainer.out
    assert (run / "samples.png").exists() and (run / "loss.png").exists() and (run / "config.json").exists()
    assert (run / "samples.png").read_bytes() == (run / "samples" / "step-00000004.png").read_bytes()
    assert [p.name for p in ckpt.step_checkpoints(run / "checkpoints")] == ["step-00000002", "step-00000004"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and all(r["images_per_s"] > 0 for r in records)
    generator = runtime.load(run)
    images = generator.generate(n=5, seed=1)
    assert images.shape == (5, channels, size, size) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
    assert generator.conditional == (model == "cgan")


def test_same_seed_same_weights(train_small, tmp_path):
    a, b = train_small(tmp_path / "a"), train_small(tmp_path / "b")
    c = train_small(tmp_path / "c", seed=1)
    wa, wb, wc = weights(a.out), weights(b.out), weights(c.out)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


@pytest.mark.parametrize("model", ["dcgan", "vae"])
def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(train_small, small_config, tmp_path, monkeypatch,
                                                                    model):
    scheduler = {"lr_decay": 0.9} if model == "vae" else {}  # the VAE also has a scheduler
    options = {**small_config(model).model_options, **scheduler}
    whole = train_small(tmp_path / "whole", model=model, steps=6, ema=True, model_options=options)
    config = small_config(model=model, steps=6, ema=True, model_options=options)
    interrupted = Trainer(config, tmp_path / "cut", progress=False)
    original_step = interrupted.model.training_step
    calls = {"n": 0}

    def crash_on_fifth(*args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original_step(*args)

    monkeypatch.setattr(interrupted.model, "training_step", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    assert ckpt.find_checkpoint(tmp_path / "cut").name == "step-00000004"
    resumed = Trainer(config, tmp_path / "cut", resume=True, progress=False)
    assert resumed.step == 4
    resumed.fit()
    final_whole = ckpt.read_checkpoint(ckpt.find_checkpoint(whole.out))
    final_resumed = ckpt.read_checkpoint(ckpt.find_checkpoint(resumed.out))
    assert final_whole.step == final_resumed.step == 6
    for key, value in final_whole.model.items():
        assert torch.equal(value, final_resumed.model[key]), key
    for key, value in final_whole.ema.items():
        assert torch.equal(value, final_resumed.ema[key]), key
    assert final_whole.state["schedulers"] == final_resumed.state["schedulers"]
    if model == "vae":
        assert final_resumed.state["schedulers"]["vae"]["last_epoch"] == 6


def test_interrupted_checkpoint_write_leaves_previous_loadable(train_small, tmp_path, monkeypatch):
    trainer = train_small(tmp_path / "run", steps=2)
    before = ckpt.find_checkpoint(trainer.out)

    def dies_midway(state, path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk pulled out")

    monkeypatch.setattr(torch, "save", dies_midway)
    trainer.step = 3
    with pytest.raises(OSError, match="disk pulled out"):
        trainer.save()
    assert ckpt.find_checkpoint(trainer.out) == before
    assert ckpt.read_checkpoint(before).step == 2
    assert not [p for p in (trainer.out / "checkpoints").iterdir() if p.name.startswith(".tmp")]


def test_nan_loss_stops_with_last_good_checkpoint(small_config, tmp_path, monkeypatch):
    config = small_config(steps=6)
    trainer = Trainer(config, tmp_path / "nan", progress=False)
    original_step = trainer.model.training_step
    calls = {"n": 0}

    def nan_on_third(*args):
        calls["n"] += 1
        metrics = original_step(*args)
        if calls["n"] == 3:
            metrics["g_loss"] = torch.tensor(float("nan"))
        return metrics

    monkeypatch.setattr(trainer.model, "training_step", nan_on_third)
    with pytest.raises(TrainingDiverged, match="g_loss became nan at step 3.*step-00000002"):
        trainer.fit()
    assert ckpt.read_checkpoint(ckpt.find_checkpoint(trainer.out)).step == 2


@pytest.mark.parametrize("override, fragment", [
    ({"checkpoint_every": -5}, "checkpoint_every = -5 is out of range"),
    ({"steps": "10"}, "steps = '10' must be a whole number"),
    ({"epochs": 1}, "give either epochs or steps, not both"),
])
def test_a_trainconfig_built_in_python_is_refused_by_the_clis_rules_before_anything_is_written(
        small_config, tmp_path, override, fragment):
    with pytest.raises(UserError) as error:
        Trainer(small_config("dcgan", "digits", **override), tmp_path / "run", progress=False)
    assert fragment in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_checkpoints_keep_the_last_k(train_small, tmp_path):
    trainer = train_small(tmp_path / "run", steps=8, checkpoint_every=1, keep=3)
    assert [p.name for p in ckpt.step_checkpoints(trainer.out / "checkpoints")] == [
        "step-00000006", "step-00000007", "step-00000008"]


def test_state_file_loads_with_weights_only(train_small, tmp_path):
    trainer = train_small(tmp_path / "run", steps=2, ema=True)
    path = ckpt.find_checkpoint(trainer.out)
    state = torch.load(path / "state.pt", weights_only=True)
    assert state["step"] == 2 and set(state["optimizers"]) == {"d", "g"} and "torch" in state["rng"]
    assert (path / "ema.safetensors").exists()


def cli_train(genforge_cli, out, *extra, expect=0):
    return genforge_cli("train", "--image-size", "16", "--batch-size", "16", "--steps", "2", "-o", "g_width=8",
                   "-o", "d_width=8", "--no-progress", "--out", out, *extra, expect=expect)


def test_cli_train_sample_interpolate(genforge_cli, tmp_path):
    out = tmp_path / "run"
    result = cli_train(genforge_cli, out, "--model", "cgan")
    assert "trained cgan on digits to step 2" in result.stdout
    grid = tmp_path / "grid.png"
    genforge_cli("sample", out, "--n", "12", "--labels", "0,1,2", "--out", grid)
    assert Image.open(grid).size[0] > 0
    genforge_cli("interpolate", out, "--rows", "2", "--steps", "3", "--out", tmp_path / "i.png")
    assert (tmp_path / "i.png").exists()
    assert_one_line_error(genforge_cli("sample", out, "--labels", "12", "--out", grid, expect=2),
                          "labels must be in 0..9")


def test_cli_config_file_and_override(genforge_cli, tmp_path):
    config = tmp_path / "train.toml"
    config.write_text('model = "vae"\nsteps = 3\nbatch-size = 8\n[model_options]\nwidth = 8\n')
    out = tmp_path / "run"
    genforge_cli("train", "--config", config, "--steps", "2", "--image-size", "16", "--no-progress", "--out", out)
    record = json.loads((out / "config.json").read_text())
    assert record["train"]["model"] == "vae" and record["train"]["steps"] == 2 and record["train"]["batch_size"] == 8
    assert record["model_config"]["width"] == 8


def test_cli_resume_continues(genforge_cli, tmp_path):
    out = tmp_path / "run"
    cli_train(genforge_cli, out)
    genforge_cli("train", "--resume", out, "--steps", "4", "--no-progress")
    assert ckpt.find_checkpoint(out).name == "step-00000004"


def test_cli_bad_inputs_are_one_line_and_lose_nothing(genforge_cli, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(np.full((8, 8), i * 10, np.uint8)).save(folder / f"{i}.png")
    assert_one_line_error(cli_train(genforge_cli, tmp_path / "x", "--model", "cgan", "--dataset", "image-folder",
                                    "--data-dir", folder, expect=2), "cgan needs a labelled dataset")
    assert_one_line_error(genforge_cli("train", "--image-size", "48", "--steps", "1", "--out", tmp_path / "y",
                                       expect=2), "dcgan makes images of 16, 32, 64, 128 pixels, not 48")
    assert not (tmp_path / "y").exists(), "a refused run must leave nothing behind"
    assert_one_line_error(genforge_cli("train", "--resume", folder, expect=2), "not a genforge run")

    out = tmp_path / "run"
    cli_train(genforge_cli, out)
    before = sorted(str(p) for p in out.rglob("*"))
    assert_one_line_error(cli_train(genforge_cli, out, expect=2), "already exists", "--overwrite")
    assert_one_line_error(genforge_cli("train", "--resume", out, "--batch-size", "32", expect=2), "disagrees")
    assert sorted(str(p) for p in out.rglob("*")) == before, "a failed command must not touch the run"

    latest = ckpt.find_checkpoint(out)
    (latest / "model.safetensors").write_bytes(b"\x00" * 10)
    assert_one_line_error(genforge_cli("sample", out, "--out", tmp_path / "g.png", expect=2), "is corrupt")
    if not torch.cuda.is_available():
        assert_one_line_error(genforge_cli("train", "--device", "cuda", "--steps", "1", "--out", tmp_path / "z",
                                           expect=2), "cuda")
    bad_choice = genforge_cli("train", "--precision", "bad", expect=2)  # click's own usage error (three lines)
    assert "Invalid value for '--precision'" in bad_choice.stderr and "Traceback" not in bad_choice.stderr
    assert_one_line_error(genforge_cli("train", "--precision", "fp16", "--device", "cpu", "--steps", "1",
                                  "--out", tmp_path / "w", expect=2), "fp16 training needs CUDA")
    assert not (tmp_path / "w").exists()


def test_cli_overwrite_replaces_a_run_but_never_a_foreign_folder(genforge_cli, tmp_path):
    out = tmp_path / "run"
    cli_train(genforge_cli, out)
    cli_train(genforge_cli, out, "--overwrite")
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    assert_one_line_error(cli_train(genforge_cli, foreign, "--overwrite", expect=2), "not a genforge run")
    assert (foreign / "keep.txt").read_text() == "precious"


@pytest.mark.gpu
def test_cuda_training_with_fp16_and_bf16(train_small, tmp_path):
    for precision in ("fp16", "bf16"):
        trainer = train_small(tmp_path / f"gpu-{precision}", device="cuda", precision=precision, channels_last=True)
        assert runtime.load(trainer.out).generate(n=2).shape == (2, 1, 16, 16)


def test_vae_samples_from_the_gaussian_fitted_to_its_codes(train_small, tmp_path):
    trainer = train_small(tmp_path / "vae", model="vae", steps=6)
    decoder = trainer.model.generator()
    assert decoder.prior_mean.abs().sum() > 0 and not torch.equal(decoder.prior_scale_tril, torch.eye(8))
    covariance = decoder.prior_scale_tril @ decoder.prior_scale_tril.t()
    expected = trainer.model.code_second_moment - torch.outer(trainer.model.code_mean, trainer.model.code_mean)
    torch.testing.assert_close(covariance, expected + 1e-4 * torch.eye(8), rtol=1e-4, atol=1e-5)
    old = {k: v for k, v in trainer.model.state_dict().items() if "prior" not in k and "code_" not in k}
    fresh = type(trainer.model)(trainer.model.info, trainer.model.config)
    fresh.load_state_dict(old)  # a checkpoint from before the fitted prior loads, with the standard prior
    assert torch.equal(fresh.generator().prior_mean, torch.zeros(8))
    standard = train_small(tmp_path / "standard", model="vae", steps=2,
                           model_options={"width": 8, "latent_dim": 8, "prior": "standard"}).model.generator()
    assert torch.equal(standard.prior_mean, torch.zeros(8)) and torch.equal(standard.prior_scale_tril, torch.eye(8))


def test_gans_keep_an_ema_by_default_and_its_weights_are_what_loads(train_small, tmp_path, genforge_cli):
    runs = {model: train_small(tmp_path / model, model=model, steps=3, checkpoint_every=0)
            for model in ("dcgan", "cgan", "vae")}
    for model, trainer in runs.items():
        recorded = json.loads((trainer.out / "config.json").read_text())["train"]["ema"]
        assert recorded is trainer.config.ema is (model != "vae"), model
    run = runs["dcgan"].out
    checkpoint = ckpt.read_checkpoint(ckpt.find_checkpoint(run))
    raw = {k: v for k, v in checkpoint.model.items() if k.startswith("G.")}
    assert any(not torch.equal(raw[f"G.{k}"], v) for k, v in checkpoint.ema.items() if v.is_floating_point())
    z = torch.randn(4, 16, 1, 1)
    for ema, expected in ((None, checkpoint.ema), (True, checkpoint.ema), (False, {k[2:]: v for k, v in raw.items()})):
        loaded = load_run(run, ema=ema)
        assert loaded.ema == (ema is not False)
        reference = copy.deepcopy(loaded.model.generator())
        reference.load_state_dict(expected)
        torch.testing.assert_close(generate(loaded.model.generator(), z, None), generate(reference, z, None))
    no_ema = train_small(tmp_path / "no-ema", steps=2, ema=False).out
    assert not load_run(no_ema).ema and ckpt.read_checkpoint(ckpt.find_checkpoint(no_ema)).ema is None
    result = genforge_cli("sample", str(no_ema), "--ema", "--out", str(tmp_path / "s.png"), expect=2)
    assert_one_line_error(result, "has no EMA weights")
    assert not (tmp_path / "s.png").exists()


def test_ema_warms_up_then_holds_its_decay(train_small, tmp_path):
    ema = EMA(torch.nn.Linear(2, 2), decay=0.999)
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(90) == pytest.approx(0.91)
    assert ema.decay_at(10**6) == 0.999
    module = torch.nn.Linear(2, 2, bias=False)
    ema = EMA(module, decay=0.999)
    start = module.weight.detach().clone()
    with torch.no_grad():
        module.weight.add_(1.0)
    ema.update(module, step=0)  # warm-up: the average moves 90% of the way at the first step
    torch.testing.assert_close(ema.state["weight"], start + 0.9)
    with ema.applied_to(module):
        torch.testing.assert_close(module.weight, start + 0.9)
    torch.testing.assert_close(module.weight.detach(), start + 1.0)


def test_cgan_checkpoints_from_before_the_class_loss_still_load(train_small, tmp_path):
    trainer = train_small(tmp_path / "cgan", model="cgan", steps=2)
    old = {k: v for k, v in trainer.model.state_dict().items() if ".classifier." not in k}
    assert len(old) < len(trainer.model.state_dict())
    fresh = type(trainer.model)(trainer.model.info, trainer.model.config)
    fresh.load_state_dict(old)
    for key, value in old.items():
        assert torch.equal(fresh.state_dict()[key], value), key
