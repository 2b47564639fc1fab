"""Where training results go: the logger contract, the loggers a run uses, and handing them exported files.
The Loggers callback (core/training/callbacks.py) feeds them during training.

A logger plugin registers a LoggerSpec (hook register_loggers) naming a Logger subclass. `--log-to
tensorboard,mlflow` (or log_to in a config or pipeline file) picks the loggers of a run; the JSONL logger
(metrics.jsonl, opened through core/runs/run_dir.py; resuming and loss.png read it) is always one of them.
Loggers run on rank 0 only. A logger that raises is switched off with one warning: a logger never costs a run.

    class PrintLogger(Logger):
        def log_metrics(self, record):
            print(record["step"], record.get("g_loss"))
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from genforge.core.errors import UserError, unknown_name
from genforge.core.registry import get_registry

ALWAYS = ("jsonl",)  # the run directory's own record


class Logger:
    """What genforge calls; every method is optional. `record`s are metrics.jsonl's lines: a dict with "kind"
    ("train", "eval" or "distributed"), "step", and numbers (lists for "distributed")."""

    required = False  # True: a failure stops training (only the run directory's own metrics.jsonl)
    keeps_files = False  # True: log_artifact is also handed files made from the finished run (exports)

    def start(self, run_dir: Path, hyperparams: dict, step: int, state: dict) -> None:
        """Before the first step of a fit; step > 0 on a resume, with the state_dict() saved at that step."""

    def log_metrics(self, record: dict) -> None:
        """A metrics record (every log_every steps, and every evaluation)."""

    def log_image(self, name: str, path: Path, step: int) -> None:
        """A picture written by the run (the sample grid every sample_every steps)."""

    def log_artifact(self, path: Path) -> None:
        """A file to keep with the run (samples.png and loss.png at the end; exported files)."""

    def state_dict(self) -> dict:
        """Saved in every checkpoint (e.g. an experiment tracker's run id) and handed back to start()."""
        return {}

    def finish(self, status: str, stop_reason: str | None) -> None:
        """Before close(): how the fit ended: "FINISHED", "FAILED" (an error) or "KILLED" (SIGINT/SIGTERM), and
        why a callback stopped it early (None when it did not)."""

    def close(self) -> None:
        """At the end of the fit, whether it ended well or not."""


def logger_names(log_to) -> list[str]:
    return list(dict.fromkeys([*ALWAYS, *(log_to or ())]))


def check_loggers(log_to) -> None:
    """Every logger asked for is registered and has what it needs installed (one line each, before work)."""
    registry = get_registry()
    for name in logger_names(log_to):
        if name not in registry.specs("loggers"):
            raise unknown_name("logger", name, registry.specs("loggers"))
        spec = registry.get("loggers", name)
        missing = [module for module in spec.requires if importlib.util.find_spec(module) is None]
        if missing:
            raise UserError(f"logger {name!r} needs {', '.join(missing)}, which is not installed: "
                            f"{spec.install_hint or 'pip install ' + missing[0]}")


def log_artifacts(run_dir, paths) -> None:
    """Files made from a finished run (exports) handed to the run's loggers that keep files (e.g. MLflow), in the
    logger's run as the last checkpoint left it. A failure is a warning: the files are written already."""
    from genforge.core.runs import checkpoint as ckpt
    from genforge.core.runs.run_dir import read_run_config

    run_dir = Path(run_dir)
    train = read_run_config(run_dir)["train"]
    names = [name for name in logger_names(train.get("log_to")) if name not in ALWAYS]
    if not names:
        return
    checkpoint = ckpt.read_checkpoint(ckpt.find_checkpoint(run_dir))
    saved = checkpoint.state.get("callbacks", {}).get("Loggers", {})
    registry = get_registry()
    for name in names:
        try:
            logger = registry.get("loggers", name).load()()
            if not logger.keeps_files:
                continue
            logger.start(run_dir, train, checkpoint.step, saved.get(name, {}))
            for path in paths:
                logger.log_artifact(Path(path))
            logger.close()
        except Exception as exc:  # noqa: BLE001  a logger never costs what was made
            warn(name, "log_artifact", exc)


def warn(name: str, method: str, exc: Exception) -> None:
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
    print(f"Warning: logger {name!r} failed in {method} ({reason}); going on without it", file=sys.stderr, flush=True)
