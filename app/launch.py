"""`genforge train --nproc N`: N training processes on this machine through torch's elastic launcher.

The launcher (torch.distributed.run, what `torchrun` runs) starts N copies of `genforge train` with
RANK, WORLD_SIZE, LOCAL_RANK and a rendezvous on localhost; the trainer finds its place from those
(core/training/distributed.py). Everything the user gave is checked here first, once, so a bad option is one
line before any process starts. If a worker dies, the launcher stops the others (no restarts) and
this prints which one and how to resume. Across machines, run torchrun yourself on each:

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m genforge.app.cli train --model dcgan --batch-size 256 --out runs/big
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
from pathlib import Path

import torch
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import get_args_parser, run

from genforge.core.compute import decide
from genforge.core.contract import open_dataset, with_batch_size
from genforge.core.errors import TrainingStopped, UserError
from genforge.core.runs.config import TrainConfig
from genforge.core.training.distributed import FINISHED_DIR


def check_launch(nproc: int, config: TrainConfig) -> None:
    """What N processes on this machine need, checked before any starts."""
    cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise UserError("--device cuda with --nproc needs NCCL on CUDA GPUs, and none is available; use --device cpu")
    if cuda and nproc > torch.cuda.device_count():
        raise UserError(f"--nproc {nproc} needs {nproc} GPUs (one per process) and this machine has "
                        f"{torch.cuda.device_count()}; use --nproc {torch.cuda.device_count()} or --device cpu")
    config = with_batch_size(config)
    if config.batch_size < nproc:
        raise UserError(f"--batch-size {config.batch_size} (the global batch) is smaller than --nproc {nproc}: each "
                        "process needs a share; raise --batch-size")
    if config.batch_size % nproc:
        raise UserError(f"--batch-size {config.batch_size} (the global batch) does not split over {nproc} processes; "
                        f"use a multiple of {nproc}")
    dataset, _ = open_dataset(config.dataset, "train", config.image_size, config.channels, config.data_dir,
                              seed=config.seed)
    if len(dataset) < config.batch_size:
        raise UserError(f"{config.dataset} has {len(dataset)} training images, fewer than one global batch of "
                        f"{config.batch_size}; lower --batch-size")


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


@contextlib.contextmanager
def children_environment(environment: dict):
    """os.environ as `environment` while torch.distributed.run starts the processes (they inherit it), then as
    it was: this process's own environment is left as the user set it."""
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def launch(nproc: int, options: dict, target: list[str], progress: bool) -> None:
    """Run `genforge train` in nproc processes with `options` (written to a TOML config) and `target`
    (["--out", DIR] and the like); raises TrainingStopped when a process fails."""
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="genforge-launch-") as tmp:
        config = Path(tmp) / "train.toml"
        config.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in options.items() if v is not None))
        args = get_args_parser().parse_args([
            "--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.5",
            "-m", "genforge", "train", "--config", str(config), *target,
            "--progress" if progress else "--no-progress"])
        threads = options.get("threads")  # a count asked for is each process's; the free cores are shared
        children = {**decide(threads).child_environment(1 if threads else nproc), FINISHED_DIR: tmp}
        try:
            with children_environment(children):  # each process's share of the threads
                run(args)
        except ChildFailedError as failed:
            if all((Path(tmp) / f"finished-{rank}").exists() for rank in range(nproc)):
                return  # every process passed the last barrier: the abort came in gloo's teardown, after the work
            rank, failure = min(failed.failures.items(), key=lambda item: item[1].timestamp)
            how = (f"was killed by {signal.Signals(-failure.exitcode).name}" if failure.exitcode < 0
                   else f"exited with status {failure.exitcode}")
            raise TrainingStopped(f"training stopped: process {rank} (pid {failure.pid}) {how}, so the other "
                                  f"{nproc - 1} were stopped; the last checkpoint is kept: continue with "
                                  f"`genforge train --resume RUN --nproc {nproc}`") from None
