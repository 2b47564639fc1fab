"""The run directory, the one owner of config.json and metrics.jsonl: writing and reading them, and opening a run
as a model with a checkpoint's weights."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from genforge import __version__
from genforge.core.contract import build_model
from genforge.core.data import DataInfo
from genforge.core.errors import UserError
from genforge.core.files import read_json, write_atomic, write_json
from genforge.core.model import with_sampling
from genforge.core.registry import get_registry
from genforge.core.specs import ModelSpec
from genforge.core.runs import checkpoint as ckpt
from genforge.core.runs.config import config_from_dict


CONFIG_FILE, METRICS_FILE = "config.json", "metrics.jsonl"


def config_path(run_dir) -> Path:
    return Path(run_dir) / CONFIG_FILE


def metrics_path(run_dir) -> Path:
    return Path(run_dir) / METRICS_FILE


def open_metrics_log(run_dir):
    """metrics.jsonl opened for appending records (the jsonl logger's file)."""
    return metrics_path(run_dir).open("a")


def read_metrics(run_dir, kind: str | None = None) -> list[dict]:
    """metrics.jsonl's records (of one kind: train, eval, lr, ...), oldest first; none before the first log."""
    path = metrics_path(run_dir)
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records if kind is None else [r for r in records if r.get("kind", "train") == kind]


def read_run_config(run_dir) -> dict:
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"{run_dir} does not exist; pass a run directory made by `genforge train`")
    path = config_path(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir} is not a genforge run (no config.json); pass a folder made by `genforge train`")
    record = read_json(path, "run config", "the run cannot be opened")
    check_run_record(record, path)
    return record


def check_run_record(record, path: Path) -> None:
    """config.json as the trainer writes it; anything else is a one-line error naming what is damaged."""
    def damaged(what: str) -> UserError:
        return UserError(f"{path} is damaged ({what}); the run cannot be opened: restore config.json or train again")

    if not isinstance(record, dict):
        raise damaged(f"a {type(record).__name__}, not a table")
    for key, kind in (("train", dict), ("data_info", dict), ("model_config", dict), ("run_id", str)):
        if not isinstance(record.get(key), kind):
            raise damaged(f"'{key}' is missing or not a {kind.__name__}")
    try:
        config_from_dict(dict(record["train"]))
    except UserError as exc:
        raise damaged(exc.message) from None
    info = record["data_info"]
    shape_ok = all(isinstance(info.get(k), int) and not isinstance(info.get(k), bool) and info.get(k) > 0
                   for k in ("channels", "height", "width"))
    classes = info.get("num_classes")
    if not (shape_ok and isinstance(info.get("name"), str) and (classes is None or (isinstance(classes, int)
                                                                                    and classes > 0))):
        raise damaged("'data_info' lacks a name, channels, height, width or a valid num_classes")


@dataclass
class LoadedRun:
    run_dir: Path
    record: dict
    info: DataInfo
    model: torch.nn.Module
    checkpoint: Path
    step: int
    ema: bool
    spec: ModelSpec

    @property
    def generator(self) -> torch.nn.Module:
        return self.model.generator()

    @property
    def model_name(self) -> str:
        return self.record["train"]["model"]


def load_run(run_dir, checkpoint: str | None = None, ema: bool | None = None, device="cpu",
             sampling: dict | None = None) -> LoadedRun:
    """The model of a run with the weights of one checkpoint (latest by default), in eval mode; the
    generator's EMA weights when ema is True, or None (the default) and the checkpoint has them; sampling:
    new values for the model's sampling_options (core/model.py)."""
    record = read_run_config(run_dir)
    info = DataInfo.from_dict(record["data_info"])
    ckpt.remove_stale_temporaries(Path(run_dir) / "checkpoints")
    path = ckpt.find_checkpoint(Path(run_dir), checkpoint)
    loaded = ckpt.read_checkpoint(path)
    torch.manual_seed(0)
    spec = get_registry().model(record["train"]["model"])
    options = with_sampling(spec.load(), record["model_config"], sampling) if sampling else record["model_config"]
    model = build_model(spec, info, options)
    ckpt.check_tensors_fit(model.state_dict(), loaded.model, path, "model")
    if loaded.ema is not None:
        ckpt.check_tensors_fit(model.generator().state_dict(), loaded.ema, path, "EMA")
    try:
        model.load_state_dict(loaded.model)
    except RuntimeError as exc:
        raise UserError(f"checkpoint {path} does not fit the {record['train']['model']} model of this run "
                        f"({str(exc).splitlines()[0]})") from None
    if ema and loaded.ema is None:
        raise UserError(f"checkpoint {path} has no EMA weights; train with --ema, or drop --ema")
    ema = loaded.ema is not None if ema is None else ema
    if ema:
        model.generator().load_state_dict(loaded.ema)
    model.to(device).eval()
    return LoadedRun(Path(run_dir), record, info, model, path, loaded.step, ema, spec)


RUN_FILES = (CONFIG_FILE, "checkpoints", "samples", METRICS_FILE, "samples.png", "loss.png")


def run_files() -> tuple[str, ...]:
    """What genforge writes in a run directory: the trainer's files and every registered logger's (LoggerSpec
    files), which --overwrite may replace; anything else in the folder stops it."""
    logged = (name for spec in get_registry().specs("loggers").values() for name in spec.files)
    return RUN_FILES + tuple(dict.fromkeys(logged))
OVERWRITE_FIX = "choose another --out, or move your files out of it first"


def truncate_log(run_dir, step: int) -> list[int]:
    """Drop metrics.jsonl records after `step` (logged after the checkpoint a resumed run goes back to).

    Returns the numbers of the damaged lines dropped (not JSON records), besides a last line cut short by a
    kill, which is expected and dropped silently."""
    path = metrics_path(run_dir)
    if not path.exists():
        return []
    kept, damaged = [], []
    lines = path.read_text(errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number < len(lines) and line.strip():
                damaged.append(number)
            continue
        if not isinstance(record, dict):
            damaged.append(number)
        elif isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line)
    write_atomic(path, "".join(line + "\n" for line in kept))
    return damaged


def write_run_config(out: Path, run_id: str, config, model, info: DataInfo) -> None:
    """config.json: the training options (typed), the model's config, the data it was built for."""
    record = {"genforge_version": __version__, "run_id": run_id, "train": dataclasses.asdict(config),
              "model_config": dataclasses.asdict(model.config), "data_info": info.as_dict(),
              "latent_shape": list(model.latent_shape), "conditional": model.conditional}
    write_json(config_path(out), record)
