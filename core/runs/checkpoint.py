"""Checkpoints: safetensors weights plus a weights_only-loadable state file, written atomically.

    checkpoints/step-00000100/
        model.safetensors   every weight and buffer of the model (G, D, encoder...)
        ema.safetensors     EMA of the generator's state (when EMA is on)
        state.pt            step, optimizers, grad scalers, RNG: torch.load(weights_only=True)
        meta.json           step, run id, time

A checkpoint is written into a hidden temporary folder, fsynced, then renamed into
place, so a process killed at any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from genforge import __version__
from genforge.core.errors import UserError
from genforge.core.files import PLAIN_FILE_MODE, check_regular_file, current_umask
from genforge.core.folders import pid_alive

PREFIX = "step-"


@dataclass
class Checkpoint:
    path: Path
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    state: dict
    meta: dict

    @property
    def step(self) -> int:
        return int(self.meta["step"])


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def write_checkpoint(folder: Path, name: str, model: dict, state: dict, meta: dict, ema: dict | None = None) -> Path:
    """Write checkpoint `name` under `folder` atomically and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    tmp = folder / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_file(_contiguous(model), str(tmp / "model.safetensors"))
        if ema is not None:
            save_file(_contiguous(ema), str(tmp / "ema.safetensors"))
        torch.save(state, tmp / "state.pt")
        record = {**meta, "genforge_version": __version__, "time": time.time()}
        (tmp / "meta.json").write_text(json.dumps(record, indent=1))
        for file in tmp.iterdir():
            file.chmod(PLAIN_FILE_MODE & ~current_umask())  # safetensors writes 0600; the user's umask decides
            _fsync(file)
        _fsync(tmp)
        if final.exists():
            old = folder / f".old-{name}-{os.getpid()}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        _fsync(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def check_weights_file(path, what: str = "weights file") -> None:
    """Refuse a user's weights file unless it loads as plain tensors (torch.load weights_only=True): a pickle
    that would run code is rejected before any library unpickles it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle warnings would add lines to the one-line refusal
            torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  the unpickler raises several types for files it refuses
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise UserError(f"{what} {path} is not a plain weights file and was not loaded (genforge loads only "
                        f"tensors, weights_only=True: {reason}); pass the original weights file") from None


def _pid_alive(pid: int) -> bool:
    # ours counts as dead: this process writes one checkpoint at a time, so any left over is from a failed write
    return pid != os.getpid() and pid_alive(pid)


def remove_stale_temporaries(folder: Path) -> list[str]:
    """Clean up after writers killed mid-write: remove their .tmp-* and .trash-* folders; put back an
    .old-NAME-PID folder whose NAME is missing (killed between the two renames). Live writers' folders
    are left alone."""
    done = []
    if not folder.is_dir():
        return done
    for entry in folder.iterdir():
        prefix = next((p for p in (".tmp-", ".old-", ".trash-") if entry.name.startswith(p)), None)
        name, _, pid = entry.name[len(prefix or ""):].rpartition("-")
        if prefix is None or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if prefix == ".old-" and not (folder / name).exists():
            entry.rename(folder / name)
            done.append(f"restored {name}")
        else:
            shutil.rmtree(entry, ignore_errors=True)
            done.append(f"removed {entry.name}")
    return done


def step_checkpoints(folder: Path) -> list[Path]:
    """Completed step checkpoints, oldest first (temporary folders are never listed)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def prune(folder: Path, keep: int) -> None:
    """Delete all but the last `keep` step checkpoints; each is renamed away first (atomic), so a process
    killed while deleting never leaves a half-deleted checkpoint that looks complete."""
    for old in step_checkpoints(folder)[:-keep] if keep > 0 else []:
        trash = folder / f".trash-{old.name}-{os.getpid()}"
        old.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


def read_checkpoint(path: Path) -> Checkpoint:
    """Load a checkpoint folder; a damaged one (unreadable, or contents of the wrong kind) is a one-line UserError."""
    path = Path(path)
    try:
        for name in ("meta.json", "model.safetensors", "state.pt"):
            check_regular_file(path / name, "checkpoint file")
        meta = json.loads((path / "meta.json").read_text())
        model = load_file(str(path / "model.safetensors"))
        ema = load_file(str(path / "ema.safetensors")) if (path / "ema.safetensors").exists() else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    except UserError as exc:
        raise UserError(f"checkpoint {path} is incomplete ({exc.message}); pick another with --checkpoint") from None
    except Exception as exc:  # noqa: BLE001  safetensors, pickle and JSON each raise their own types
        raise UserError(f"checkpoint {path} is corrupt ({type(exc).__name__}); "
                        "pick another with --checkpoint") from None
    problem = _damage(meta, state)
    if problem:
        raise UserError(f"checkpoint {path} is damaged ({problem}); pick another with --checkpoint")
    return Checkpoint(path, model, ema, state, meta)


def _damage(meta, state) -> str | None:
    """What is wrong with meta.json and state.pt as the trainer writes them, or None."""
    if not isinstance(meta, dict):
        return f"meta.json holds a {type(meta).__name__}, not a table"
    step = meta.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return f"meta.json's step is {step!r}, not a count of steps"
    if not isinstance(state, dict):
        return f"state.pt holds a {type(state).__name__}, not a table"
    for key, kind in (("optimizers", dict), ("schedulers", dict)):
        if not isinstance(state.get(key, {}), kind):
            return f"state.pt's {key} is a {type(state[key]).__name__}, not a table"
    if not all(isinstance(v, dict) for v in state.get("optimizers", {}).values()):
        return "state.pt's optimizers are not optimizer states"
    rng = state.get("rng")
    if rng is not None and not isinstance(rng, dict | list):
        return f"state.pt's rng is a {type(rng).__name__}"
    return None


def check_tensors_fit(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], path, what: str) -> None:
    """Before loading: every tensor of the checkpoint that the model has must have the model's dtype and shape."""
    for key, tensor in found.items():
        want = expected.get(key)
        if want is None:
            continue
        if tensor.dtype != want.dtype:
            raise UserError(f"checkpoint {path}: {what} tensor {key} is {str(tensor.dtype).removeprefix('torch.')}, "
                            f"the model's is {str(want.dtype).removeprefix('torch.')}; the file was not written by "
                            "genforge for this run: pick another with --checkpoint")
        if tuple(tensor.shape) != tuple(want.shape):
            raise UserError(f"checkpoint {path}: {what} tensor {key} has shape {tuple(tensor.shape)}, the model's is "
                            f"{tuple(want.shape)}; it comes from a model with other options (widths, latent size): "
                            "use the run it belongs to")


def find_checkpoint(run_dir: Path, which: str | None = None) -> Path:
    """The checkpoint folder for `which`: None or "latest", "best", a step number, or a path."""
    folder = Path(run_dir) / "checkpoints"
    if which in (None, "latest"):
        found = step_checkpoints(folder)
        if not found:
            raise UserError(f"{run_dir} has no checkpoint yet; train it first (genforge train --resume {run_dir})")
        return found[-1]
    if which.isdigit():
        path = folder / f"{PREFIX}{int(which):08d}"
    elif (folder / which).is_dir():
        path = folder / which
    else:
        path = Path(which)
    if not path.is_dir():
        names = ", ".join(p.name for p in step_checkpoints(folder)) or "none"
        raise UserError(f"no checkpoint {which!r} in {run_dir}; available: {names}")
    return path


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
