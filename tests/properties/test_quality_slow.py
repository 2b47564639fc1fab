"""Slow quality tests of the built-in models with their defaults only (no model options, the default batch):
minutes of CPU training each; CI runs them. `pytest -m "not slow"` skips them."""

import json

import pytest

from genforge.core.evaluation.scoring import evaluate_target
from genforge.core.runs.config import TrainConfig
from genforge.core.training.trainer import Trainer

pytestmark = pytest.mark.slow
CGAN_STEPS = 500  # about 22 epochs of digits at batch 64
DCGAN_EVAL_EVERY = 100


def fit(out, **values):
    trainer = Trainer(TrainConfig(dataset="digits", **values), out, progress=False)
    trainer.fit()
    return trainer.out


def evals(run):
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "eval"]


def test_cgan_on_digits_reaches_conditional_accuracy(tmp_path):
    run = fit(tmp_path / "cgan", model="cgan", steps=CGAN_STEPS, sample_every=0, checkpoint_every=0)
    scores = evaluate_target(run, n=1000, metrics="cond_acc,fd")
    assert scores["classifier_test_accuracy"] > 0.95
    assert scores["cond_acc"] >= 0.90, scores


def test_dcgan_fd_falls_and_stays_far_below_the_ceiling(tmp_path):
    run = fit(tmp_path / "dcgan", model="dcgan", steps=4 * DCGAN_EVAL_EVERY, eval_every=DCGAN_EVAL_EVERY,
              eval_samples=500, eval_metric="fd", sample_every=0, checkpoint_every=0)
    fds = [e["fd"] for e in evals(run)]
    assert len(fds) == 4 and fds[-1] < fds[0], fds
    scores = evaluate_target(run, n=1000, metrics="fd")
    assert scores["fd"] < scores["fd_ceiling"] / 20, scores


def test_vae_elbo_falls_and_reconstructions_beat_the_mean_image(tmp_path):
    run = fit(tmp_path / "vae", model="vae", steps=600, eval_every=200, eval_samples=200,
              eval_metric="neg_elbo", sample_every=0, checkpoint_every=0)
    elbos = [e["neg_elbo"] for e in evals(run)]
    assert len(elbos) == 3 and elbos[-1] < elbos[0], elbos
    scores = evaluate_target(run, n=200, metrics="neg_elbo")
    assert scores["recon_psnr"] > scores["mean_image_psnr"] + 3, scores
