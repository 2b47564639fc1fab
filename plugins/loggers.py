"""Built-in experiment loggers: the JSONL file (metrics.jsonl, always on), CSV, TensorBoard and MLflow.

TensorBoard writes under RUN/tensorboard (scalars per record kind, the sample grids as images, the
training options as hyperparameters). MLflow logs to MLFLOW_TRACKING_URI when it is set, else to a local
file store in RUN/mlruns (MLflow keeps that store working when MLFLOW_ALLOW_FILE_STORE is true, which
this logger sets for its own default store); the MLflow run id is saved with the checkpoints, so a resumed
run logs to the same MLflow run.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from pathlib import Path

from genforge.core.files import write_atomic
from genforge.core.runs.run_dir import open_metrics_log
from genforge.core.training.loggers import Logger

SKIPPED_KEYS = ("kind", "step")


def numbers(record: dict) -> dict[str, float]:
    """The record's scalar numbers (not its kind and step, nor lists and tables)."""
    return {k: float(v) for k, v in record.items()
            if k not in SKIPPED_KEYS and isinstance(v, int | float) and not isinstance(v, bool)}


class JsonlLogger(Logger):
    """metrics.jsonl: one JSON record per line; what loss.png, the report and resuming read."""

    required = True

    def start(self, run_dir, hyperparams, step, state):
        self.file = open_metrics_log(run_dir)

    def log_metrics(self, record):
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self):
        self.file.close()


class CsvLogger(Logger):
    """metrics.csv (training records) and eval.csv (evaluations), a header from each file's first record."""

    FILES = {"train": "metrics.csv", "eval": "eval.csv"}

    def start(self, run_dir, hyperparams, step, state):
        self.run_dir, self.writers, self.files = Path(run_dir), {}, {}
        for name in self.FILES.values():
            path = self.run_dir / name
            if path.exists():  # a resumed run: rows after the step it goes back to are logged again
                with path.open(newline="") as file:
                    rows = list(csv.reader(file))
                kept = rows[:1] + [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) <= step]
                buffer = io.StringIO()
                csv.writer(buffer).writerows(kept)
                write_atomic(path, buffer.getvalue())

    def log_metrics(self, record):
        name = self.FILES.get(record.get("kind"))
        if name is None:
            return
        if name not in self.writers:
            path = self.run_dir / name
            header = None
            if path.exists() and path.stat().st_size:
                with path.open(newline="") as file:
                    header = next(csv.reader(file), None)
            self.files[name] = path.open("a", newline="")
            fields = header or ["step", *numbers(record)]
            self.writers[name] = csv.DictWriter(self.files[name], fields, extrasaction="ignore")
            if header is None:
                self.writers[name].writeheader()
        self.writers[name].writerow({"step": record["step"], **numbers(record)})
        self.files[name].flush()

    def close(self):
        for file in self.files.values():
            file.close()


def quiet_tensorboard_threads() -> None:
    """TensorBoard's writer thread keeps a write error (a folder turned read-only, a full disk) for the training
    thread's next call, which the loggers turn into one warning; it also re-raises it in its own thread, where
    Python prints a traceback. That second report is dropped; every other thread's error is printed as before."""
    if getattr(threading.excepthook, "genforge_quiet_tensorboard", False):
        return
    previous = threading.excepthook

    def hook(args):
        if type(args.thread).__name__ != "_AsyncWriterThread":
            previous(args)

    hook.genforge_quiet_tensorboard = True
    threading.excepthook = hook


class TensorBoardLogger(Logger):
    """RUN/tensorboard: scalars as KIND/NAME, sample grids as images, the options as hyperparameters."""

    def start(self, run_dir, hyperparams, step, state):
        from torch.utils.tensorboard import SummaryWriter  # lazy: the tensorboard extra

        quiet_tensorboard_threads()
        self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=step or None, flush_secs=10)
        if not step:
            self.writer.add_hparams(flat_params(hyperparams), {}, run_name=".")

    def log_metrics(self, record):
        for key, value in numbers(record).items():
            self.writer.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def log_image(self, name, path, step):
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image(name, pixels, step, dataformats="HWC")

    def close(self):
        self.writer.close()


def flat_params(params: dict, prefix: str = "") -> dict:
    """Options as TensorBoard and MLflow take them: one level, numbers, text and booleans (None as "none")."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = "none" if value is None else value if isinstance(value, int | float | str) \
                else str(value)
    return flat


# An unanswering tracking server costs seconds, not MLflow's default minutes of retries (120 s timeout, 7
# retries with backoff): one try and one retry of at most 4 s each, then one warning and training goes on.
MLFLOW_HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "4", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                      "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0.5"}


class MlflowLogger(Logger):
    """An MLflow run (experiment "genforge"): parameters, metrics per step, sample grids and files as
    artifacts."""

    keeps_files = True

    def start(self, run_dir, hyperparams, step, state):
        import mlflow  # lazy: the mlflow extra

        for name, value in MLFLOW_HTTP_LIMITS.items():  # the user's own settings win
            os.environ.setdefault(name, value)
        self.uri = state.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or \
            (Path(run_dir) / "mlruns").resolve().as_uri()
        if self.uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = mlflow.MlflowClient(self.uri)
        self.run_id = state.get("run_id")
        if self.run_id is None:
            experiment = self.client.get_experiment_by_name("genforge")
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment("genforge")
            run = self.client.create_run(experiment_id, run_name=Path(run_dir).name,
                                         tags={"genforge.run_id": str(hyperparams.get("run_id"))})
            self.run_id = run.info.run_id
            params = [mlflow.entities.Param(k, str(v)[:6000]) for k, v in flat_params(hyperparams).items()]
            for start in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[start:start + 100])
        else:
            self.client.update_run(self.run_id, status="RUNNING")

    def log_metrics(self, record):
        import mlflow

        now = int(time.time() * 1000)
        metrics = [mlflow.entities.Metric(f"{record['kind']}/{k}", v, now, record["step"])
                   for k, v in numbers(record).items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def log_image(self, name, path, step):
        self.client.log_artifact(self.run_id, str(path), name)

    def log_artifact(self, path):
        self.client.log_artifact(self.run_id, str(path))

    def state_dict(self):
        return {"run_id": self.run_id, "tracking_uri": self.uri}

    def finish(self, status, stop_reason):
        if stop_reason:
            self.client.set_tag(self.run_id, "genforge.stop_reason", stop_reason[:5000])
        self.client.set_terminated(self.run_id, status=status)
        self.terminated = True

    def close(self):
        if not getattr(self, "terminated", False):
            self.client.set_terminated(self.run_id)
