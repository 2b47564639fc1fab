"""Quality metrics on cases with known answers, the classifier cache, and bad input."""

import json

import pytest
import torch
from helpers import assert_one_line_error
from torch import nn

from genforge.core.errors import UserError
from genforge.core.evaluation import features, metrics, scoring
from genforge.plugins import metrics as builtin_metrics


class Identity(nn.Module):
    """Features = the flattened input, so the metric sees the samples themselves."""

    def __init__(self, d):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x.flatten(1).double()


def gaussian(n, d, mean=0.0, std=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, 1, 1, generator=g, dtype=torch.float64) * std + mean).float()


def test_identical_sets_have_zero_fd_and_kid():
    a = gaussian(2000, 4)
    assert abs(metrics.frechet_distance(a, a.clone(), Identity(4))) < 1e-6
    kid, std = metrics.kernel_distance(a, a.clone(), Identity(4))
    shifted, _ = metrics.kernel_distance(a, gaussian(2000, 4, 1.0, seed=5), Identity(4))
    assert abs(kid) <= 3 * std and abs(kid) < 0.02 * shifted  # unbiased estimate over random subsets: 0 +- noise


@pytest.mark.parametrize("mean, std, expected", [
    (1.0, 1.0, 4 * 1.0),           # |mu|^2 = d * 1
    (0.0, 2.0, 4 * (2.0 - 1) ** 2),  # tr(S1 + S2 - 2 (S1 S2)^1/2) = d (1 + 4 - 4)
    (0.5, 3.0, 4 * (0.25 + 4.0)),
])
def test_shifted_gaussians_give_the_analytic_frechet_distance(mean, std, expected):
    a, b = gaussian(20000, 4, seed=1), gaussian(20000, 4, mean, std, seed=2)
    fd = metrics.frechet_distance(a, b, Identity(4))
    assert fd == pytest.approx(expected, rel=0.05, abs=0.02)


def test_kid_grows_with_the_shift():
    a = gaussian(600, 4, seed=1)
    near, far = gaussian(600, 4, 0.2, seed=2), gaussian(600, 4, 2.0, seed=3)
    assert metrics.kernel_distance(a, near, Identity(4))[0] < metrics.kernel_distance(a, far, Identity(4))[0]


def test_classifier_is_cached_and_reused(monkeypatch):
    config = {"dataset": "shapes", "image_size": 16, "channels": None, "data_dir": None, "seed": 0}
    first = features.load_reference(config)
    assert not first.from_cache and first.cache_path.exists() and first.accuracy > 0.9
    monkeypatch.setattr(features, "_train_classifier",
                        lambda *a, **k: pytest.fail("the cached classifier was not reused"))
    second = features.load_reference(config)
    assert second.from_cache and second.accuracy == first.accuracy
    images = second.test.batch(torch.arange(8))[0]
    assert torch.allclose(first.classifier(images), second.classifier(images), atol=1e-5)


def test_reference_points_bracket_real_data():
    reference = features.reference_for({"dataset": "digits", "image_size": 16, "channels": None, "data_dir": None})
    points = metrics.fd_reference_points(reference)
    assert 0 < points["fd_floor"] < points["fd_ceiling"] / 10


def test_bad_input():
    info = features.reference_for({"dataset": "digits", "image_size": 16, "channels": None, "data_dir": None}).info
    with pytest.raises(UserError, match="too few"):
        scoring.frechet_distance_of(torch.zeros(3, 1, 16, 16), info, {"dataset": "digits", "image_size": 16})
    with pytest.raises(UserError, match=r"expected \(N, 1, 16, 16\)"):
        scoring.frechet_distance_of(torch.zeros(30, 3, 16, 16), info, {"dataset": "digits", "image_size": 16})
    data = metrics.EvalInput(torch.zeros(20, 1, 16, 16), None, features.reference_for(
        {"dataset": "digits", "image_size": 16, "channels": None, "data_dir": None}),
        options={"inception_weights": "/nonexistent/pt_inception.pth"})
    with pytest.raises(UserError, match="does not exist"):
        builtin_metrics.metric_inception(data)
    with pytest.raises(UserError, match="--inception-weights"):
        builtin_metrics.metric_inception(metrics.EvalInput(data.images, None, data.reference))
    with pytest.raises(UserError, match="conditional"):
        builtin_metrics.metric_cond_acc(data)


def test_evaluate_cli_on_run_and_onnx(train_small, tmp_path, genforge_cli):
    from genforge.exporters.onnx import export_onnx

    run = train_small(tmp_path / "cgan", model="cgan").out
    out = tmp_path / "scores.json"
    result = genforge_cli("evaluate", run, "--n", "200", "--json", out)
    scores = json.loads(out.read_text())
    assert {"fd", "fd_floor", "fd_ceiling", "kid", "cond_acc", "classifier_test_accuracy"} <= set(scores)
    assert "cond_acc" in result.stdout
    onnx_path = tmp_path / "cgan.onnx"
    export_onnx(run, onnx_path)
    onnx_scores = tmp_path / "onnx.json"
    genforge_cli("evaluate", onnx_path, "--n", "200", "--json", onnx_scores)
    from_onnx = json.loads(onnx_scores.read_text())
    assert from_onnx["fd"] == pytest.approx(scores["fd"], rel=1e-3)
    assert from_onnx["cond_acc"] == pytest.approx(scores["cond_acc"], abs=0.01)
    assert_one_line_error(genforge_cli("evaluate", run, "--n", "5", expect=2), "too few")
    assert_one_line_error(genforge_cli("evaluate", run, "--metrics", "fid2", expect=2), "unknown metric")
    vae = train_small(tmp_path / "vae", model="vae").out
    vae_scores = tmp_path / "vae.json"
    genforge_cli("evaluate", vae, "--n", "200", "--json", vae_scores)
    assert {"neg_elbo", "recon_psnr", "mean_image_psnr"} <= set(json.loads(vae_scores.read_text()))


def test_trainer_keeps_the_best_checkpoint(train_small, tmp_path):
    from genforge.core.runs import checkpoint as ckpt

    trainer = train_small(tmp_path / "run", steps=6, eval_every=2, eval_samples=100)
    evals = [json.loads(line) for line in (trainer.out / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "eval"]
    assert [e["step"] for e in evals] == [2, 4, 6]
    best = min(evals, key=lambda e: e["fd"])
    best_ckpt = ckpt.read_checkpoint(ckpt.find_checkpoint(trainer.out, "best"))
    assert best_ckpt.step == best["step"]
    assert best_ckpt.state["best"]["value"] == pytest.approx(best["fd"])
    assert trainer.config.ema  # the score kept is that of the EMA weights, which loading the checkpoint gives
    from genforge.core.evaluation.scoring import evaluate_run

    assert evaluate_run(trainer.out, "best", n=100, metrics=["fd"])["fd"] == pytest.approx(best["fd"], rel=1e-4)


def test_unlabelled_data_points_to_the_inception_metric(train_small, tmp_path, genforge_cli):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    run = train_small(tmp_path / "run", dataset="image-folder", data_dir=str(folder)).out
    assert_one_line_error(genforge_cli("evaluate", run, "--n", "50", expect=2), "has no labels", "--metrics inception")


def test_eval_during_training_can_train_the_classifier_first(train_small, tmp_path, monkeypatch):
    """The first --eval-every on an uncached dataset trains the classifier inside no_grad scoring."""
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(features, "_references", {})
    trainer = train_small(tmp_path / "run", dataset="shapes", steps=2, eval_every=2, eval_samples=50)
    assert list((tmp_path / "empty-cache" / "classifiers").glob("shapes-16px-3ch-*.safetensors"))
    assert any(json.loads(line)["kind"] == "eval" for line in (trainer.out / "metrics.jsonl").read_text().splitlines())


def test_kid_is_the_same_for_the_same_images_and_leaves_the_global_rng_alone():
    from genforge.core.evaluation.metrics import kernel_distance

    features = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8))
    real, fake = torch.randn(300, 1, 4, 4), torch.randn(300, 1, 4, 4) + 0.5
    first = kernel_distance(real, fake, features)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    second = kernel_distance(real, fake, features)
    assert first == second and first[0] > 0
    assert torch.equal(torch.rand(3), expected_next)


CRASHING_METRIC = """
from genforge import MetricSpec, hookimpl


def crash(data):
    return {"crash": 1 / 0}


def misnamed(data):
    return {"something_else": 1.0}


def need_a_file(options):
    if not options.get("needed_file"):
        raise ValueError("this metric needs needed_file")


@hookimpl
def register_metrics(register):
    register(MetricSpec("crash", "acme_metric:crash", "divides by zero", default=False))
    register(MetricSpec("misnamed", "acme_metric:misnamed", "returns another key", default=False))
    register(MetricSpec("picky", "acme_metric:crash", "checks its options first", default=False,
                        check="acme_metric:need_a_file"))
"""


def test_a_plugin_metric_that_fails_names_its_plugin_and_a_failing_check_comes_before_any_work(
        run, install_plugin, genforge_cli):
    install_plugin("acme_metric", CRASHING_METRIC, dist="acme-metrics")
    result = genforge_cli("evaluate", run, "--n", "20", "--metrics", "crash", expect=2)
    last = result.stderr.strip().splitlines()[-1]  # after the work's progress: the metric ran, then failed
    assert last.startswith("Error: metric 'crash' from plugin acme-metrics failed: ZeroDivisionError"), last
    assert "Traceback" not in result.stderr
    result = genforge_cli("evaluate", run, "--n", "20", "--metrics", "picky", expect=2)
    assert_one_line_error(result, "metric 'picky'", "needs needed_file")


def test_the_eval_metric_is_checked_before_the_first_step_and_must_return_its_own_name(
        tmp_path, install_plugin, genforge_cli):
    install_plugin("acme_metric", CRASHING_METRIC, dist="acme-metrics")
    small = ("--steps", "4", "--image-size", "16", "--batch-size", "16", "--eval-every", "2", "--eval-samples", "20")
    for metric, said in (("fid_typo", "unknown metric"), ("picky", "needs needed_file")):
        result = genforge_cli("train", *small, "--eval-metric", metric, "--out", tmp_path / metric, expect=2)
        assert_one_line_error(result, said)
        assert not (tmp_path / metric).exists()
    result = genforge_cli("train", *small, "--eval-metric", "misnamed", "--out", tmp_path / "m", expect=2)
    assert "returned something_else but not 'misnamed'" in result.stderr.strip().splitlines()[-1]
