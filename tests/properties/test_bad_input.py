"""Bad input never ends in a traceback: each boundary refuses it in one line, exit 2, and changes no input file.

Categories: damaged run directories, config and pipeline files, model options, export options, dataset
labels, output paths, exported files whose metadata lies, benchmark reports, the runtime API; plus a
pickle with a code payload given as weights, the last-resort handler for bugs, and kill -9 during
checkpoint writes.
"""

import gzip
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from helpers import assert_one_line_error, run_genforge
from onnx import TensorProto, helper

from genforge.core import runtime
from genforge.core.errors import UserError
from genforge.core.runs import checkpoint as ckpt


@pytest.fixture(scope="module")
def runs(tiny_runs):
    return tiny_runs


def fingerprint(folder) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(genforge_cli, args, fragments, inputs):
    """Run the CLI on bad input: exit 2, one line naming each fragment, every file under `inputs` unchanged."""
    before = {str(folder): fingerprint(folder) for folder in inputs}
    assert_one_line_error(genforge_cli(*args, expect=2), *fragments)
    assert {str(folder): fingerprint(folder) for folder in inputs} == before


def damaged_copy(runs, tmp_path, edit):
    run = tmp_path / "damaged"
    shutil.copytree(runs["cgan"], run)
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(edit(record)))
    return run


RUN_CONFIG_DAMAGE = {
    "no data_info": (lambda r: {k: v for k, v in r.items() if k != "data_info"}, "sample", ["damaged", "data_info"]),
    "no train": (lambda r: {k: v for k, v in r.items() if k != "train"}, "resume", ["damaged", "'train'"]),
    "a list": (lambda r: [r], "sample", ["damaged", "a list"]),
    "batch_size as text": (lambda r: {**r, "train": {**r["train"], "batch_size": "64"}}, "sample",
                           ["damaged", "batch_size"]),
    "data_info without channels": (lambda r: {**r, "data_info": {**r["data_info"], "channels": None}}, "export",
                                   ["damaged", "data_info"]),
}


@pytest.mark.parametrize("case", RUN_CONFIG_DAMAGE)
def test_damaged_run_directory(case, runs, tmp_path, genforge_cli):
    edit, command, fragments = RUN_CONFIG_DAMAGE[case]
    run = damaged_copy(runs, tmp_path, edit)
    args = {"sample": ("sample", run, "--out", tmp_path / "g.png"),
            "resume": ("train", "--resume", run, "--steps", "8"),
            "export": ("export", "onnx", run, "--out", tmp_path / "x.onnx")}[command]
    refused(genforge_cli, args, fragments, [run])
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "x.onnx").exists()


TRAIN_TOML = {
    "batch_size as text": ('batch_size = "64"', ["batch_size", "whole number"]),
    "batch_size 0": ("batch_size = 0", ["batch_size = 0", "at least 1"]),
    "epochs -1": ("epochs = -1", ["epochs = -1"]),
    "unknown option": ("bach_size = 8", ["unknown training option", "bach_size"]),
    "ema_decay 2": ("ema_decay = 2.0", ["ema_decay", "between 0 and 1"]),
    "model_options not a table": ("model_options = 3", ["model_options"]),
}


def toml_file(tmp_path, name: str, text: str):
    """`text` as conf/NAME under tmp_path (conf/ holds nothing else, so its fingerprint is the file's)."""
    path = tmp_path / "conf" / name
    path.parent.mkdir()
    path.write_text(text + "\n")
    return path


@pytest.mark.parametrize("case", TRAIN_TOML)
def test_bad_training_config_file(case, tmp_path, genforge_cli):
    text, fragments = TRAIN_TOML[case]
    config = toml_file(tmp_path, "train.toml", text)
    refused(genforge_cli, ("train", "--config", config, "--out", tmp_path / "run"), fragments, [config.parent])
    assert not (tmp_path / "run").exists()


PIPELINES = {
    "train not a table": ("train = 3", ["[train] must be a table"]),
    "out not text": ("out = 3", ["out = 3"]),
    "unknown key in evaluate": ("[evaluate]\nsamples = 5", ["samples", "[evaluate]"]),
    "unknown key in export": ("[export]\nprecision = 'int8'", ["precision", "[export]"]),
    "unknown key in bench": ("[bench]\nbatch = [1]", ["batch", "[bench]"]),
    "batch 0": ("[bench]\nbatches = [0]", ["batches = [0]"]),
    "precisions as text": ('[export]\nprecisions = "fp32"', ["precisions = 'fp32'"]),
    "unknown backend": ("[bench]\nbackends = ['torchh']", ["unknown backend 'torchh'"]),
    "bad train value": ("[train]\nsteps = 0", ["steps = 0"]),
}


@pytest.mark.parametrize("case", PIPELINES)
def test_bad_pipeline_is_refused_before_any_work(case, tmp_path, genforge_cli):
    text, fragments = PIPELINES[case]
    pipeline = toml_file(tmp_path, "pipeline.toml", text)
    refused(genforge_cli, ("run", pipeline, "--out", tmp_path / "report"), fragments, [pipeline.parent])
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("option, fragment", [
    ("g_width=-4", "g_width = -4"), ("latent_dim=0", "latent_dim = 0"), ("lr=nan", "lr = nan"),
    ("beta1=1.5", "beta1 = 1.5"), ("lr=fast", "lr='fast' must be a float"),
])
def test_bad_model_option(option, fragment, tmp_path, genforge_cli):
    refused(genforge_cli, ("train", "--steps", "1", "-o", option, "--out", tmp_path / "run"), [fragment], [])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("opset", ["7", "16", "17", "99"])
def test_export_opsets_that_do_not_work_are_refused(opset, runs, tmp_path, genforge_cli):
    refused(genforge_cli, ("export", "onnx", runs["cgan"], "--out", tmp_path / "x.onnx", "--opset", opset),
            [f"opset {opset} is not supported", "use 18 to 23"], [runs["cgan"]])
    assert not (tmp_path / "x.onnx").exists()


def test_dataset_labels_beyond_the_class_count(tmp_path, genforge_cli):
    data = tmp_path / "mnist"
    data.mkdir()
    images, labels = np.zeros((40, 28, 28), np.uint8), (np.arange(40) % 12).astype(np.uint8)
    (data / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(
        np.array([0x803, 40, 28, 28], ">i4").tobytes() + images.tobytes()))
    (data / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(np.array([0x801, 40], ">i4").tobytes()
                                                                    + labels.tobytes()))
    refused(genforge_cli, ("train", "--model", "cgan", "--dataset", "mnist", "--data-dir", data, "--image-size", "16",
                           "--out", tmp_path / "run"), ["dataset plugin 'mnist'", "0..9"], [data])


def output_cases(runs, tmp):
    afile = tmp / "a-file.txt"
    return {
        "train --out a file": (("train", "--steps", "1", "--out", afile), ["is a file, not a folder"]),
        "sample --out x.txt": (("sample", runs["cgan"], "--out", tmp / "x.txt"), ["must end in .png"]),
        "sample --out a folder": (("sample", runs["cgan"], "--out", tmp), ["is a folder"]),
        "sample into an unwritable place": (("sample", runs["cgan"], "--out", "/proc/genforge/g.png"),
                                            ["cannot be written"]),
        "export --json a folder": (("export", "onnx", runs["cgan"], "--out", tmp / "m.onnx", "--json", tmp),
                                   ["export report", "is a folder"]),
        "export under a file": (("export", "onnx", runs["cgan"], "--out", afile / "m.onnx"), ["is a file"]),
        "export --out not .onnx": (("export", "onnx", runs["cgan"], "--out", tmp / "m.bin"), ["must end in .onnx"]),
        "evaluate --json a folder": (("evaluate", runs["cgan"], "--json", tmp), ["scores file", "is a folder"]),
        "bench --json unwritable": (("bench", runs["cgan_onnx"], "--json", "/proc/genforge/r.json"),
                                    ["cannot be written"]),
        "interpolate --out no suffix": (("interpolate", runs["cgan"], "--out", tmp / "walk"), ["must end in"]),
        "run --out a file": (("run", "--out", afile), ["is a file, not a folder"]),
    }


@pytest.mark.parametrize("case", list(output_cases({"cgan": None, "cgan_onnx": None}, __import__("pathlib").Path("."))))
def test_bad_output_path_is_refused_before_work(case, runs, tmp_path, genforge_cli):
    (tmp_path / "a-file.txt").write_text("mine")
    args, fragments = output_cases(runs, tmp_path)[case]
    refused(genforge_cli, args, fragments, [runs["root"], tmp_path])
    assert (tmp_path / "a-file.txt").read_text() == "mine"


def lying_onnx(path, latent_shape="[4]", image_shape="[1, 2, 2]", output="images", num_classes="0",
               z_shape=("N", 4), classes_in_graph=None):
    """A tiny graph (z -> images, labels through a Gather on a small table) with genforge metadata that may lie."""
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, list(z_shape))
    nodes, inputs, inits = [helper.make_node("Identity", ["z"], ["flat"])], [z], []
    if classes_in_graph:
        inputs.append(helper.make_tensor_value_info("labels", TensorProto.INT32, ["N"]))
        inits.append(helper.make_tensor("table", TensorProto.FLOAT, [classes_in_graph, 4],
                                        [0.0] * classes_in_graph * 4))
        nodes = [helper.make_node("Gather", ["table", "labels"], ["embedded"]),
                 helper.make_node("Add", ["z", "embedded"], ["flat"])]
    nodes.append(helper.make_node("Reshape", ["flat", "shape"], [output]))
    inits.append(helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 1, 2, 2]))
    out = helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 1, 2, 2])
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, [out], inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    for key, value in {"genforge_version": "0.1.0", "latent_shape": latent_shape, "image_shape": image_shape,
                       "num_classes": num_classes, "dataset": "digits"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


LIES = {
    "latent_shape of another rank": (dict(latent_shape="[4, 1, 1]"), ("sample",), ["latent_shape"]),
    "latent_shape an int": (dict(latent_shape="4"), ("sample",), ["malformed genforge metadata"]),
    "output not named images": (dict(output="pictures"), ("sample",), ["outputs ['pictures']"]),
    "more classes than the embedding": (dict(num_classes="100", classes_in_graph=3), ("sample", "--labels", "50"),
                                        ["failed on inputs", "export it again"]),
    "image shape wrong": (dict(image_shape="[1, 8, 8]"), ("sample",), ["image_shape", "export it again"]),
}


@pytest.mark.parametrize("case", LIES)
def test_exported_file_whose_metadata_lies(case, tmp_path, genforge_cli):
    options, command, fragments = LIES[case]
    (tmp_path / "in").mkdir()
    path = lying_onnx(tmp_path / "in" / "liar.onnx", **options)
    refused(genforge_cli, (command[0], path, *command[1:], "--out", tmp_path / "g.png"), fragments,
            [tmp_path / "in"])


def report_cases(valid):
    no_samples = json.loads(json.dumps(valid))
    next(r for r in no_samples["rows"] if r["status"] == "ok").pop("samples_ms")
    empty = json.loads(json.dumps(valid))
    next(r for r in empty["rows"] if r["status"] == "ok")["samples_ms"] = []
    return {"a JSON list": [valid], "no rows": {k: v for k, v in valid.items() if k != "rows"},
            "a row without samples_ms": no_samples, "schema not a string": {**valid, "schema": 3},
            "empty samples": empty}


@pytest.mark.parametrize("case", ["a JSON list", "no rows", "a row without samples_ms", "schema not a string",
                                  "empty samples"])
def test_bench_compare_refuses_malformed_reports(case, runs, tmp_path, genforge_cli):
    good = tmp_path / "in" / "good.json"
    good.parent.mkdir()
    genforge_cli("bench", runs["cgan_onnx"], "--batch", "1", "--duration-s", "0.05", "--warmup-s", "0.01",
                 "--json", good)
    bad = tmp_path / "in" / "bad.json"
    bad.write_text(json.dumps(report_cases(json.loads(good.read_text()))[case]))
    refused(genforge_cli, ("bench", "compare", good, bad), ["not a genforge benchmark report"], [good.parent])


def test_runtime_api_refuses_bad_arguments_in_one_line(runs):
    import torch

    cases = [
        (lambda: runtime.load(runs["cgan"], device="cuda"), "no CUDA device") if not torch.cuda.is_available()
        else (lambda: runtime.load(runs["cgan"], device="tpu"), "unknown device"),
        (lambda: runtime.load(runs["cgan"], device="tpu"), "unknown device 'tpu'"),
        (lambda: runtime.load(None), "no target given"),
        (lambda: runtime.load(runs["cgan_onnx"]).generate(n="abc"), "n must be a whole number"),
        (lambda: runtime.load(runs["cgan_onnx"]).generate(n=2.5), "n must be a whole number"),
        (lambda: runtime.load(runs["cgan_onnx"]).generate(n=2, seed="x"), "seed must be an integer"),
        (lambda: runtime.load(runs["cgan"]).generate(z=np.full((2, 16, 1, 1), np.nan, np.float32)), "NaN or Inf"),
        (lambda: runtime.load(runs["cgan_onnx"]).generate(z=np.full((2, 16, 1, 1), np.inf, np.float32)), "NaN or Inf"),
        (lambda: runtime.load(runs["cgan_onnx"]).generate(n=3, labels=[0, 1]), "labels must have shape (3,)"),
    ]
    for call, fragment in cases:
        with pytest.raises(UserError) as caught:
            call()
        assert fragment in caught.value.message and "\n" not in caught.value.message


class Payload:
    """Unpickling this runs code: it writes a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_a_code_payload_is_refused_and_never_runs(runs, tmp_path, genforge_cli, monkeypatch):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "in" / "pt_inception.pth"
    evil.parent.mkdir()
    evil.write_bytes(pickle.dumps({"weights": Payload(marker)}))
    refused(genforge_cli, ("evaluate", runs["cgan"], "--n", "20", "--metrics", "inception", "--inception-weights",
                           evil), ["not a plain weights file", "was not loaded"], [evil.parent])
    monkeypatch.setenv("GENFORGE_INCEPTION_WEIGHTS", str(evil))
    refused(genforge_cli, ("evaluate", runs["cgan"], "--n", "20", "--metrics", "inception"),
            ["not a plain weights file"], [evil.parent])
    assert not marker.exists(), "the payload ran"


def test_markdown_report_escapes_file_names(tmp_path):
    from genforge.benchmarks.rows import COLUMNS, markdown_table

    row = {"target": "<img src=x onerror=alert(1)>|x.onnx", "backend": "ort-cpu", "batch": None, "status": "skipped",
           "reason": "a | b"}
    env = {"cpu": {"model": "cpu", "cores": 1, "flags": []}, "gpu": None, "versions": {}}
    table = markdown_table({"rows": [row], "environment": env})
    assert "<img" not in table and "&lt;img" in table and "\\|x.onnx" in table
    assert all(line.count("|") - line.count("\\|") == len(COLUMNS) + 1 for line in table.splitlines()[:3])


def test_an_unexpected_error_is_one_line_and_a_crash_file(tmp_path):
    plugin = tmp_path / "site" / "buggy_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text("import click\nfrom genforge import hookimpl\n\n@click.command('boom')\ndef boom():\n"
                      "    {}['missing']\n\n@hookimpl\ndef register_commands(cli):\n    cli.add_command(boom)\n")
    info = tmp_path / "site" / "buggy-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: buggy\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[genforge]\nbuggy = buggy_plugin\n")
    result = run_genforge("boom", env_extra={"PYTHONPATH": str(plugin.parent), "GENFORGE_CRASH_DIR": str(tmp_path)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "genforge hit a bug (KeyError" in lines[0] and "Traceback" not in result.stderr
    crash = next(tmp_path.glob("genforge-crash-*.txt"))
    assert str(crash) in lines[0] and "Traceback" in crash.read_text() and "boom" in crash.read_text()


@pytest.mark.slow
def test_kill_during_checkpoint_writes_then_resume(tmp_path):
    """kill -9 a training run at random moments while it writes a checkpoint every step, several times within a
    time bound, resuming each time: every checkpoint loads, no stale .tmp-* folder survives a resume, the run
    reaches its step count."""
    run, steps = tmp_path / "run", 400
    base = [sys.executable, "-m", "genforge.app.cli", "train", "--steps", str(steps), "--image-size", "16",
            "--batch-size", "16", "-o", "g_width=8", "-o", "d_width=8", "-o", "latent_dim=16", "--checkpoint-every",
            "1", "--keep", "2", "--sample-every", "0", "--no-progress"]
    rng = np.random.default_rng(0)
    deadline, kills, reached = time.monotonic() + 90, 0, [0]
    command = [*base, "--out", str(run)]
    while time.monotonic() < deadline and kills < 4:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # wait until it has written a checkpoint past the last one seen, then kill it a moment later: mid-write
        # or mid-step, wherever it happens to be
        while process.poll() is None and time.monotonic() < deadline:
            found = ckpt.step_checkpoints(run / "checkpoints")
            if found and int(found[-1].name.split("-")[1]) > reached[-1] + 5:
                break
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0.0, 0.3)))
        if process.poll() is not None:
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
        command = [sys.executable, "-m", "genforge.app.cli", "train", "--resume", str(run), "--no-progress"]
        found = ckpt.step_checkpoints(run / "checkpoints")
        for checkpoint in found:
            ckpt.read_checkpoint(checkpoint)
        reached.append(ckpt.read_checkpoint(found[-1]).step if found else 0)
    assert kills >= 2 and any(0 < step < steps for step in reached), reached
    started = time.time()
    final = subprocess.run([sys.executable, "-m", "genforge.app.cli", "train", "--resume", str(run),
                            "--no-progress"], capture_output=True, text=True, timeout=300)
    if "already reached step" not in final.stderr:
        assert final.returncode == 0, final.stderr
    stale = [p for p in (run / "checkpoints").iterdir() if p.name.startswith((".tmp-", ".old-", ".trash-"))
             and p.stat().st_mtime < started]
    assert stale == []
    last = ckpt.step_checkpoints(run / "checkpoints")
    assert last and ckpt.read_checkpoint(last[-1]).step == steps
    for checkpoint in last:
        ckpt.read_checkpoint(checkpoint)
    steps_logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps_logged == sorted(steps_logged) and len(steps_logged) == len(set(steps_logged))


def test_a_pipeline_that_failed_after_training_can_be_rerun(tmp_path, genforge_cli):
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text("[train]\nsteps = 2\nbatch_size = 16\nimage_size = 16\n"
                        "model_options = {g_width = 8, d_width = 8}\n[evaluate]\nn = 20\n"
                        "[export]\nprecisions = ['fp32']\n[bench]\nbackends = ['nope']\n")
    refused(genforge_cli, ("run", pipeline, "--out", tmp_path / "report"), ["unknown backend 'nope'"], [])
    pipeline.write_text(pipeline.read_text().replace("backends = ['nope']", "batches = [1]\nduration_s = 0.05")
                        .replace("precisions = ['fp32']", "precisions = ['fp32']\nquality_samples = 10"))
    out = tmp_path / "report"
    (out / "run").mkdir(parents=True)
    (out / ".genforge-report").write_text("left by a run that failed after training\n")
    genforge_cli("run", pipeline, "--out", out)
    assert (out / "report.json").exists()
