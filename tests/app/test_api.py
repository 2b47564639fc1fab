"""The Python API against the CLI: the same run from both, the same errors, and values that display."""

import json
import subprocess
import sys

import numpy as np
import pytest
from safetensors.torch import load_file

import genforge
from genforge.core.errors import UserError
from genforge.core.runs import checkpoint as ckpt

OPTIONS = {"steps": 12, "image_size": 16, "batch_size": 16, "checkpoint_every": 6, "sample_every": 6,
           "seed": 5, "threads": 1}
WIDTHS = {"g_width": 8, "d_width": 8}


def cli_args(options: dict) -> list[str]:
    return [item for key, value in options.items() for item in (f"--{key.replace('_', '-')}", str(value))]


def files_of(run) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if ".genforge" not in p.name)


def test_the_api_and_the_cli_write_the_same_run(tmp_path, genforge_cli):
    api = genforge.train(model="cgan", out=tmp_path / "api", progress=False, model_options=WIDTHS, **OPTIONS)
    genforge_cli("train", "--model", "cgan", *cli_args(OPTIONS), "-o", "g_width=8", "-o", "d_width=8",
                 "--no-progress", "--out", tmp_path / "cli")
    cli = tmp_path / "cli"
    assert files_of(api.path) == files_of(cli)
    records = [json.loads((run / "config.json").read_text()) for run in (api.path, cli)]
    for record in records:
        record.pop("run_id")
    assert records[0] == records[1]
    logs = [[{k: v for k, v in json.loads(line).items() if k != "images_per_s"}
             for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (api.path, cli)]
    assert logs[0] == logs[1] and [r["step"] for r in logs[0]] == [10, 12]
    weights = [load_file(str(ckpt.find_checkpoint(run) / "model.safetensors")) for run in (api.path, cli)]
    assert all(weights[0][k].equal(weights[1][k]) for k in weights[0])


BAD = {
    "batch size 0": ({"batch_size": 0}, ["--batch-size", "0"]),
    "epochs and steps": ({"epochs": 1}, ["--epochs", "1"]),
    "unknown model": ({"model": "dcgen"}, ["--model", "dcgen"]),
    "unknown model option": ({"model_options": {"bogus": 1}}, ["-o", "bogus=1"]),
    "unknown logger": ({"log_to": "tensorbord"}, ["--log-to", "tensorbord"]),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_arguments_raise_the_clis_message(case, tmp_path, genforge_cli):
    api_options, cli_options = BAD[case]
    given = {"steps": 2, "image_size": 16, **api_options}
    with pytest.raises(UserError) as raised:
        genforge.train(out=tmp_path / "api", progress=False, **given)
    args = ["train", "--steps", "2", "--image-size", "16", *cli_options, "--out", tmp_path / "cli"]
    result = genforge_cli(*args, expect=2)
    assert result.stderr.strip() == f"Error: {raised.value.message}"
    assert not (tmp_path / "api").exists() and not (tmp_path / "cli").exists()


def test_a_run_samples_evaluates_exports_benchmarks_and_displays(tmp_path):
    run = genforge.train(model="cgan", out=tmp_path / "run", progress=False, model_options=WIDTHS, **OPTIONS)
    assert repr(run) == f"Run({str(run.path)!r}: cgan on digits, step 12)"
    assert "data:image/png;base64," in run._repr_html_() and "<table>" in run._repr_html_()
    samples = run.sample(n=6, labels=[1, 2])
    assert samples.images.shape == (6, 1, 16, 16) and samples.labels.tolist() == [1, 2, 1, 2, 1, 2]
    assert samples._repr_png_().startswith(b"\x89PNG") and repr(samples).startswith("Samples(6 images, 1x16x16")
    assert samples.save(tmp_path / "grid.png").exists()
    same = genforge.load(run.path).generate(n=6, labels=samples.labels, seed=0)
    np.testing.assert_array_equal(same, samples.images)
    onnx_file = run.export("onnx")
    assert onnx_file == tmp_path / "run-fp32.onnx" and onnx_file.exists()
    with pytest.raises(UserError, match="already exists"):
        run.export("onnx")
    report = genforge.bench([run, onnx_file], backends="torch,ort-cpu", batches=(1,), warmup_s=0.01,
                            duration_s=0.05)
    assert [r["backend"] for r in report["rows"]] == ["torch", "ort-cpu"] and "ort-cpu" in repr(report)
    assert report._repr_markdown_().startswith("| target |")
    scores = run.evaluate(n=100, metrics=["fd"])
    assert scores["fd"] > 0 and "fd=" in repr(scores) and "<table>" in scores._repr_html_()
    assert [r["step"] for r in run.metrics()] == [10, 12]


def test_python_m_genforge_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "genforge", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "genforge, version" in result.stdout


def test_callbacks_and_a_tensorrt_export_without_a_gpu(tmp_path):
    class CountSteps(genforge.Callback):
        def __init__(self):
            self.seen = 0

        def on_step_end(self, trainer, metrics):
            self.seen += 1

    counter = CountSteps()
    run = genforge.train(out=tmp_path / "run", progress=False, callbacks=[counter], model_options=WIDTHS,
                         **{**OPTIONS, "steps": 4})
    assert counter.seen == 4
    if not __import__("torch").cuda.is_available():
        with pytest.raises(UserError, match="TensorRT"):
            run.export("tensorrt")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_resuming_a_finished_run_is_refused_and_leaves_it_open(tmp_path):
    run = genforge.train(out=tmp_path / "run", progress=False, model_options=WIDTHS, **{**OPTIONS, "steps": 2})
    with pytest.raises(UserError, match="already reached step 2"):
        genforge.train(resume=run.path, progress=False)
    assert genforge.train(resume=run.path, steps=3, progress=False).trained["step"] == 3


# -- the API checks what the CLI checks, and says it in Python ----------------------------------
API_REFUSALS = [
    ("train", dict(nproc="2"), "nproc="),
    ("train", dict(nproc=-1), "nproc="),
    ("train", dict(nproc=1.0), "nproc="),
    ("train", dict(threads=0), "threads"),
    ("train", dict(steps="5"), "steps"),
    ("train", dict(steps=float("nan")), "steps"),
    ("train", dict(progress="yes"), "progress="),
    ("train", dict(out=123), "out="),
    ("train", dict(callbacks=[genforge.Callback]), "pass an instance"),
    ("train", dict(callbacks=[object()]), "not a callback"),
    ("sample", dict(n="4"), "n="),
    ("sample", dict(n=0), "n="),
    ("sample", dict(seed=-1), "seed="),
    ("evaluate", dict(n=np.float64(5)), "n="),
    ("evaluate", dict(ema="no"), "ema="),
    ("export", dict(precison="int8"), "unknown keyword argument(s) precison"),
    ("export", dict(opset="17"), "opset="),
    ("export", dict(max_fd_increase=float("nan")), "max_fd_increase="),
    ("export", dict(quality_samples=5), "quality_samples="),
    ("bench", dict(threads=-1), "threads="),
    ("bench", dict(min_iters=0), "min_iters="),
    ("bench", dict(batches=8), "batches="),
    ("bench", dict(batches=[0]), "batches="),
    ("bench", dict(duration_s=float("inf")), "duration_s="),
    ("bench", dict(warmup_s=-1), "warmup_s="),
    ("run_pipeline", dict(threads=1.5), "threads="),
    ("run_pipeline", dict(overwrite="yes"), "overwrite="),
    ("load", dict(checkpoint=4), "checkpoint="),
    ("load", dict(ema=1), "ema="),
    ("load", dict(sampling=[("steps", 3)]), "sampling="),
]


@pytest.mark.parametrize("function, kwargs, fragment", API_REFUSALS,
                         ids=[f"{f}-{next(iter(k))}={k[next(iter(k))]!r}" for f, k, _ in API_REFUSALS])
def test_every_api_argument_is_checked_and_named_in_python_terms(function, kwargs, fragment, run, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)  # a refused train() or run_pipeline() would write here: nothing may appear
    target = {"train": (), "run_pipeline": ()}.get(function, (run,))
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as refused:
        getattr(genforge, function)(*target, **kwargs)
    assert "--" not in str(refused.value).split(";")[0], "named as the keyword, not the CLI option"
    assert list(tmp_path.iterdir()) == [], "a refusal leaves nothing behind"


def test_load_refuses_a_non_path_and_numpy_numbers_count_as_numbers(run, tmp_path):
    with pytest.raises(UserError, match="path="):
        genforge.load(123)
    samples = genforge.sample(run, n=np.int64(4), seed=np.int32(1))
    assert samples.images.shape[0] == 4
    trained = genforge.train(out=tmp_path / "np", steps=np.int64(2), image_size=16, batch_size=np.int64(16),
                             model_options={"g_width": np.int64(8), "d_width": 8}, progress=False)
    assert trained.config["steps"] == 2 and trained.config["model_options"]["g_width"] == 8


def test_one_callback_is_taken_as_a_list_of_one(tmp_path):
    from genforge import Callback

    class Count(Callback):
        seen = 0

        def on_step_end(self, trainer, metrics):
            Count.seen += 1

    genforge.train(out=tmp_path / "one", steps=2, image_size=16, batch_size=16, progress=False,
                   model_options={"g_width": 8, "d_width": 8}, callbacks=Count())
    assert Count.seen == 2


def test_what_the_api_returns_says_what_it_is(run):
    """genforge.load's value has a one-line repr; Run's methods have docstrings; train() lists its options
    to help() and IDEs."""
    import inspect

    shown = repr(genforge.load(run))
    assert shown.startswith("TorchRuntime(") and "checkpoints" in shown and "-> images (1, 16, 16)" in shown
    for name in ("sample", "evaluate", "export", "metrics", "record", "config", "stop_reason"):
        member = getattr(genforge.Run, name)
        assert (member.fget if isinstance(member, property) else member).__doc__, name
    parameters = inspect.signature(genforge.train).parameters
    assert {"steps", "batch_size", "eval_every", "model_options"} <= set(parameters)
    assert "Training options: " in genforge.train.__doc__
