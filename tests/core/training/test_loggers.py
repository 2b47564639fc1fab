"""Experiment loggers: what they wrote, read back with each tool's own reader; a failing logger never costs a run."""

import csv
import json

import pytest
from helpers import assert_one_line_error, sample_plugin

import genforge
from genforge.core.errors import UserError

SMALL = {"model": "cgan", "image_size": 16, "batch_size": 16, "model_options": {"g_width": 8, "d_width": 8},
         "log_every": 5, "sample_every": 10, "progress": False, "threads": 1}


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("logged") / "run"
    return genforge.train(steps=20, checkpoint_every=10, log_to=["csv", "tensorboard", "mlflow"], out=out, **SMALL)


def test_tensorboard_holds_scalars_at_their_steps_the_grids_and_the_options(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logged_run.path / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("train/d_loss")] == [5, 10, 15, 20]
    assert [e.step for e in events.Images("samples")] == [10, 20]
    assert events.Images("samples")[0].encoded_image_string.startswith(b"\x89PNG")
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["model"].string_value == "cgan" and hparams["model_options.g_width"].number_value == 8


def test_mlflow_holds_params_metrics_and_artifacts_in_its_local_store(logged_run):
    import mlflow

    client = mlflow.MlflowClient((logged_run.path / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("genforge")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["model"] == "cgan" and run.data.params["model_options.g_width"] == "8"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/g_loss")] == [5, 10, 15, 20]
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"samples.png", "loss.png", "samples"} <= top
    grids = [a.path for a in client.list_artifacts(run.info.run_id, "samples")]
    assert grids == ["samples/step-00000010.png", "samples/step-00000020.png"]
    exported = logged_run.export("onnx")
    assert exported.name in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_csv_and_jsonl_hold_the_same_training_records(logged_run):
    with (logged_run.path / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    jsonl = [json.loads(line) for line in (logged_run.path / "metrics.jsonl").read_text().splitlines()]
    assert [int(r["step"]) for r in rows] == [r["step"] for r in jsonl if r["kind"] == "train"] == [5, 10, 15, 20]
    assert float(rows[-1]["g_loss"]) == pytest.approx(jsonl[-1]["g_loss"])


def test_a_resumed_run_logs_to_the_same_mlflow_run_and_rewinds_the_csv(tmp_path):
    import mlflow

    out = tmp_path / "run"
    genforge.train(steps=10, checkpoint_every=10, log_to=["csv", "mlflow"], out=out, **SMALL)
    with (out / "metrics.csv").open("a") as file:
        file.write("15,9,9,9,9,9\n")  # logged after the last checkpoint by a run that was then killed
    genforge.train(resume=out, steps=20, progress=False)
    with (out / "metrics.csv").open(newline="") as file:
        assert [int(r["step"]) for r in csv.DictReader(file)] == [5, 10, 15, 20]
    client = mlflow.MlflowClient((out / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("genforge").experiment_id])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/d_loss")] == [5, 10, 15, 20]


def test_a_logger_that_raises_costs_one_warning_not_the_run(install_plugin, tmp_path, capfd):
    install_plugin("broken_logger", sample_plugin("broken_logger"), dist="broken-logger")
    run = genforge.train(steps=20, log_to=["broken"], out=tmp_path / "run", **SMALL)
    assert run.trained["step"] == 20 and (run.path / "samples.png").exists()
    warnings = [line for line in capfd.readouterr().err.splitlines() if "logger 'broken'" in line]
    assert len(warnings) == 1 and "the tracking server went away" in warnings[0]
    assert [r["step"] for r in run.metrics()] == [5, 10, 15, 20]


def test_unknown_or_uninstalled_loggers_are_refused_before_work(install_plugin, tmp_path, genforge_cli):
    install_plugin("broken_logger", sample_plugin("broken_logger"), dist="broken-logger")
    with pytest.raises(UserError, match="unknown logger 'tensorbord'; did you mean tensorboard"):
        genforge.train(steps=2, log_to=["tensorbord"], out=tmp_path / "a", **SMALL)
    assert_one_line_error(genforge_cli("train", "--steps", "2", "--log-to", "needs-nothing-here", "--out",
                                       tmp_path / "b", expect=2), "genforge_no_such_module",
                          "pip install genforge-no-such-module")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert "tensorboard" in genforge_cli("loggers").stdout


def test_progress_in_a_log_is_one_line_per_tenth_of_the_work():
    import io

    from genforge.core.progress import LineProgress

    stream = io.StringIO()
    bar = LineProgress(40, "cgan on digits", "step", stream=stream)
    for _ in range(40):
        bar.update(1)
        bar.set_postfix({"g_loss": "0.5"})
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(":")[1].split("%")[0].strip() for line in lines] == [str(p) for p in range(10, 101, 10)]
    assert lines[-1].startswith("cgan on digits: 100% (40/40 steps,") and lines[-1].endswith("g_loss=0.5")
    resumed = io.StringIO()
    bar = LineProgress(40, "cgan on digits", "step", initial=25, stream=resumed)
    for _ in range(15):
        bar.update(1)
    assert [line.split("%")[0][-3:].strip() for line in resumed.getvalue().splitlines()] == ["70", "80", "90", "100"]


def test_overwrite_replaces_a_run_with_its_loggers_files(tmp_path):
    out = tmp_path / "run"
    genforge.train(steps=10, log_to=["csv", "tensorboard", "mlflow"], out=out, **SMALL)
    (out / "eval.csv").write_text("step\n")
    again = genforge.train(steps=5, out=out, overwrite=True, **SMALL)
    assert not (out / "tensorboard").exists() and not (out / "mlruns").exists() and again.trained["step"] == 5
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="notes.txt"):
        genforge.train(steps=5, out=out, overwrite=True, **SMALL)
    assert (out / "notes.txt").read_text() == "mine"


def test_log_to_in_a_config_file_and_a_pipeline_file(tmp_path, genforge_cli):
    config = tmp_path / "train.toml"
    config.write_text('steps = 10\nimage_size = 16\nbatch_size = 16\nlog_to = ["csv"]\n'
                      "model_options = {g_width = 8, d_width = 8}\n")
    genforge_cli("train", "--config", config, "--no-progress", "--out", tmp_path / "run")
    assert (tmp_path / "run" / "metrics.csv").read_text().startswith("step,")
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text('[train]\nsteps = 2\nlog_to = ["tensorbord"]\n')
    assert_one_line_error(genforge_cli("run", pipeline, "--out", tmp_path / "report", expect=2),
                          "unknown logger 'tensorbord'")
    assert not (tmp_path / "report").exists()


def test_genforge_export_hands_the_file_to_mlflow_too(logged_run, genforge_cli, tmp_path):
    import mlflow

    genforge_cli("export", "onnx", logged_run.path, "--out", tmp_path / "from-the-cli.onnx")
    client = mlflow.MlflowClient((logged_run.path / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("genforge").experiment_id])
    assert "from-the-cli.onnx" in {a.path for a in client.list_artifacts(run.info.run_id)}


# -- services never hold a run hostage; the tracker records the truth ---------------------------
def test_an_unanswering_tracking_server_costs_seconds_and_one_warning(tmp_path, monkeypatch, capfd):
    """A server that accepts connections and never answers: MLflow's default retries take minutes."""
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{silent.getsockname()[1]}")
    started = time.monotonic()
    try:
        run = genforge.train(steps=4, log_to=["mlflow"], out=tmp_path / "run", **SMALL)
    finally:
        silent.close()
    assert time.monotonic() - started < 30 and run.trained["step"] == 4
    warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("Warning")]
    assert len(warnings) == 1 and "mlflow" in warnings[0], warnings


def mlflow_run(out):
    import mlflow

    client = mlflow.MlflowClient((out / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "genforge"]
    (run,) = client.search_runs([experiment.experiment_id])
    return run


def test_the_tracker_records_finished_with_the_stop_reason_failed_and_killed(tmp_path, monkeypatch):
    import os
    import signal

    from genforge import Callback, EarlyStopping

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    genforge.train(steps=40, log_to=["mlflow"], out=tmp_path / "stopped", eval_every=2, eval_samples=50,
                   callbacks=[EarlyStopping("fd", patience=1, min_delta=1e9)], **SMALL)
    run = mlflow_run(tmp_path / "stopped")
    assert run.info.status == "FINISHED" and run.data.tags["genforge.stop_reason"].startswith("early stopping")

    class Explode(Callback):
        def on_step_end(self, trainer, metrics):
            if trainer.step == 2:
                raise RuntimeError("a plugin's bug")

    with pytest.raises(RuntimeError):
        genforge.train(steps=4, log_to=["mlflow"], out=tmp_path / "failed", callbacks=[Explode()], **SMALL)
    assert mlflow_run(tmp_path / "failed").info.status == "FAILED"

    class Interrupt(Callback):
        def on_step_end(self, trainer, metrics):
            if trainer.step == 2:
                os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(BaseException):  # noqa: B017  TrainingInterrupted, whatever the API raises for a signal
        genforge.train(steps=6, log_to=["mlflow"], out=tmp_path / "killed", callbacks=[Interrupt()], **SMALL)
    assert mlflow_run(tmp_path / "killed").info.status == "KILLED"


READ_ONLY_MID_RUN = """
import errno, sys
import genforge
from tensorboard.summary.writer import record_writer

class TurnReadOnly(genforge.Callback):
    def on_step_end(self, trainer, metrics):
        if trainer.step == 5:
            def refuse(self, data):
                raise OSError(errno.EROFS, "Read-only file system")
            record_writer.RecordWriter.write = refuse

run = genforge.train(steps=20, log_to=["tensorboard"], out=sys.argv[1], callbacks=[TurnReadOnly()], model="cgan",
                     image_size=16, batch_size=16, model_options={"g_width": 8, "d_width": 8}, log_every=5,
                     sample_every=10, progress=False, threads=1)
print(run.trained["step"])
"""


def test_a_tensorboard_folder_that_stops_taking_writes_is_one_warning(tmp_path):
    """The folder turns read-only mid-run (injected: tests run as root, where chmod does not bite). In a
    subprocess: pytest would catch the writer thread's traceback that a user sees."""
    import subprocess
    import sys

    script = tmp_path / "read_only.py"
    script.write_text(READ_ONLY_MID_RUN)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "20", done.stderr
    assert "Traceback" not in done.stderr and "Exception in thread" not in done.stderr, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("Warning")]
    assert len(warnings) == 1 and "tensorboard" in warnings[0] and "Read-only" in warnings[0], done.stderr
