"""The one training loop: any model plugin on any dataset plugin, on CPU or CUDA.

The trainer owns devices, precision, data order, EMA, logging, samples and checkpoints;
the model's training_step owns its own updates through the StepContext.

Data order is a pure function of (seed, epoch): each epoch is one permutation of the
train split with the last partial batch dropped. Together with the RNG state stored in
every checkpoint, this is what makes a resumed run end with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from genforge import __version__
from genforge.core import checkpoint as ckpt
from genforge.core.callbacks import Callback, callbacks_in_order, callbacks_state, restore_callbacks
from genforge.core.contract import build_model, check_generator_output, open_dataset, probe_batch
from genforge.core.data import batch_of
from genforge.core.distributed import (
    Placement,
    barrier,
    broadcast_state,
    gather,
    placement_from_environment,
    shard,
    start,
)
from genforge.core.errors import TrainingDiverged, TrainingInterrupted, UserError
from genforge.core.files import write_atomic, write_json
from genforge.core.folders import acquire_run_lock, make_owned_folder, removal_refusal, remove_owned_folder, run_lock
from genforge.core.images import save_grid
from genforge.core.inputs import signature_of, torch_inputs
from genforge.core.model import GeneratorModel, generate
from genforge.core.registry import get_registry
from genforge.core.run_dir import read_run_config
from genforge.core.signals import StopSignals
from genforge.core.step import StepContext
from genforge.core.threads import apply_threads
from genforge.core.train_config import DEVICES, PRECISIONS, TrainConfig, config_from_dict

RESUMABLE_CHANGES = {"steps", "epochs", "device", "log_every", "sample_every", "checkpoint_every", "keep", "threads",
                     "dist_timeout_s"}


def resumed_config(record: dict, changes: dict) -> TrainConfig:
    """The config of a run to resume (its config.json record) with `changes`, which may only be RESUMABLE_CHANGES.

    A new --steps replaces the run's --epochs and the other way round.
    """
    values = dict(record["train"])
    for key, value in changes.items():
        if key not in RESUMABLE_CHANGES and values.get(key) != value:
            raise UserError(f"--{key.replace('_', '-')} {value} disagrees with the run's {values.get(key)}; "
                            f"a resumed run keeps its config (only {', '.join(sorted(RESUMABLE_CHANGES))} may change)")
        values[key] = value
    if "steps" in changes:
        values["epochs"] = None
    if "epochs" in changes:
        values["steps"] = None
    return config_from_dict(values)


def resolve_device(name: str) -> torch.device:
    if name not in DEVICES:
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return torch.device(name)


def check_placement(placement: Placement, config: TrainConfig, device: torch.device) -> None:
    """What several processes need: a global batch they can share, SyncBatchNorm only on CUDA."""
    if config.sync_batchnorm and device.type != "cuda":
        raise UserError("--sync-batchnorm needs CUDA (torch's SyncBatchNorm); drop it on the CPU")
    if not placement.distributed:
        return
    if config.batch_size % placement.world_size:
        raise UserError(f"--batch-size {config.batch_size} (the global batch) does not split over "
                        f"{placement.world_size} processes; use a multiple of {placement.world_size}")


RUN_FILES = ("config.json", "checkpoints", "samples", "metrics.jsonl", "samples.png", "loss.png")
OVERWRITE_FIX = "choose another --out, or move your files out of it first"


def check_precision(precision: str, device: torch.device) -> None:
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise UserError("fp16 training needs CUDA (gradient scaling); use --precision bf16 or fp32 on the CPU")


def truncate_log(path: Path, step: int) -> None:
    """Drop metrics.jsonl records after `step` (logged after the checkpoint a resumed run goes back to)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line)
    write_atomic(path, "".join(line + "\n" for line in kept))


class BatchSampler:
    """Batches of the train split in an order fixed by (seed, epoch); with several processes, each takes its
    shard of every global batch of batch_size (core/distributed.py)."""

    def __init__(self, dataset, batch_size: int, seed: int, placement: Placement = Placement()):
        self.dataset, self.batch_size, self.seed, self.placement = dataset, batch_size, seed, placement
        self.steps_per_epoch = len(dataset) // batch_size
        if self.steps_per_epoch == 0:
            raise UserError(f"the dataset has {len(dataset)} images, fewer than one batch of {batch_size}; "
                            "lower --batch-size")
        self._epoch, self._perm = -1, None

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(len(self.dataset), generator=generator)
        indices = self._perm[index * self.batch_size:(index + 1) * self.batch_size]
        return batch_of(self.dataset, shard(indices, self.placement))


class EMA:
    """Exponential moving average of a module's floating-point state (weights and BN statistics).

    The decay warms up as min(decay, (1 + step) / (10 + step)), as in TensorFlow's
    ExponentialMovingAverage with num_updates: early on the average follows the weights closely, so
    short runs are not dragged back to their first, poor steps (Yazici et al. 2019 on EMA for GANs).
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        for key, value in module.state_dict().items():
            if value.is_floating_point():
                self.state[key].lerp_(value, weight)
            else:
                self.state[key].copy_(value)

    @contextmanager
    def applied_to(self, module: torch.nn.Module):
        """`module` holding the averaged state for the block; its own state restored after."""
        own = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(self.state)
        try:
            yield module
        finally:
            module.load_state_dict(own)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def fixed_inputs(model: GeneratorModel, seed: int, n: int = 64):
    """The same noise (and labels) for every sample grid of a run, so grids compare over time."""
    return torch_inputs(*signature_of(model).inputs(n=n, seed=seed + 12345))


class Trainer:
    def __init__(self, config: TrainConfig, out: Path, resume: bool = False, overwrite: bool = False,
                 progress: bool = True, callbacks: list[Callback] | None = None):
        self.config, self.out = config, Path(out)
        self.callbacks = callbacks_in_order(progress, callbacks or ())
        self.stop_reason: str | None = None  # a callback sets it to end training after the current step
        self.last_log: dict | None = None  # the latest metrics.jsonl record, for the progress bar
        self.placement = placement_from_environment()
        self.threads = apply_threads(config.threads, self.placement.world_size)
        # recorded in config.json, so a resumed run computes with the same count: CPU kernels split their sums by
        # thread, and bit-exact resumption needs the same split (--threads on --resume changes it knowingly)
        self.config = config = dataclasses.replace(config, threads=self.threads)
        self.device = resolve_device(config.device)
        check_precision(config.precision, self.device)
        check_placement(self.placement, config, self.device)
        self.device = start(self.placement, self.device.type, config.dist_timeout_s) or self.device
        if config.epochs is not None and config.steps is not None:
            raise UserError("give either --epochs or --steps, not both")
        self._check_run_dir(resume, overwrite)
        dataset, self.info = open_dataset(config.dataset, "train", config.image_size, config.channels,
                                          config.data_dir, seed=config.seed)
        self.sampler = BatchSampler(dataset, config.batch_size, config.seed, self.placement)
        torch.manual_seed(config.seed)
        self.model = build_model(config.model, self.info, config.model_options, probe=probe_batch(dataset))
        typed = {key: getattr(self.model.config, key) for key in config.model_options}
        self.config = config = dataclasses.replace(config, model_options=typed)  # config.json stores them typed
        if config.sync_batchnorm:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=memory_format)
        self.memory_format = memory_format
        self.optimizers = self.model.optimizers()
        self.schedulers = self.model.schedulers(self.optimizers)
        broadcast_state(self.model)
        if self.placement.rank:  # each process draws its own noise; rank 0 draws what a single process would
            torch.manual_seed((config.seed * 1_000_003 + self.placement.rank) % 2**63)
        self.ctx = StepContext(self.optimizers, self.device, config.precision)
        if config.ema is None:
            self.config = config = dataclasses.replace(config, ema=type(self.model).ema_by_default)
        self.ema = EMA(self.model.generator(), config.ema_decay) if config.ema else None
        self.step = 0
        self.run_id = uuid.uuid4().hex[:12]
        self.best: dict | None = None
        self._saved_step = None
        self.release_lock = lambda: None
        if resume:
            if self.placement.main:
                self.release_lock = acquire_run_lock(self.out, "resume it")
            self._restore()
        elif self.placement.main:
            if overwrite and self.out.exists() and any(self.out.iterdir()):
                with run_lock(self.out, "overwrite it"):
                    remove_owned_folder(self.out, "run", RUN_FILES, OVERWRITE_FIX)
            make_owned_folder(self.out, "run")
            self.release_lock = acquire_run_lock(self.out, "train it")
            self._write_config()
        barrier()
        epochs = config.epochs if config.epochs is not None else (None if config.steps is not None else 5)
        self.total_steps = config.steps if config.steps is not None else epochs * self.sampler.steps_per_epoch
        self.fixed_z, self.fixed_labels = fixed_inputs(self.model, config.seed)

    # -- run directory -------------------------------------------------------------------
    def _check_run_dir(self, resume: bool, overwrite: bool) -> None:
        """Refuse to touch what the user has; nothing is written until the model is built."""
        if resume:
            return
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            if not overwrite:
                raise UserError(f"{self.out} already exists; pass --resume {self.out} to continue it, "
                                "--overwrite to replace it, or another --out")
            refusal = removal_refusal(self.out, "run", RUN_FILES)
            if refusal:
                raise UserError(f"{refusal}; refusing to overwrite it: {OVERWRITE_FIX}")

    def _write_config(self) -> None:
        record = {"genforge_version": __version__, "run_id": self.run_id, "train": dataclasses.asdict(self.config),
                  "model_config": dataclasses.asdict(self.model.config), "data_info": self.info.as_dict(),
                  "latent_shape": list(self.model.latent_shape), "conditional": self.model.conditional}
        write_json(self.out / "config.json", record)

    def _restore(self) -> None:
        record = read_run_config(self.out)
        self.run_id = record["run_id"]
        ckpt.remove_stale_temporaries(self.out / "checkpoints")
        found = ckpt.step_checkpoints(self.out / "checkpoints")
        if not found:
            if self.placement.main:
                truncate_log(self.out / "metrics.jsonl", 0)
            return
        checkpoint = ckpt.read_checkpoint(found[-1])
        ckpt.check_tensors_fit(self.model.state_dict(), checkpoint.model, found[-1], "model")
        try:
            self.model.load_state_dict(checkpoint.model)
            for name, optimizer in self.optimizers.items():
                optimizer.load_state_dict(checkpoint.state["optimizers"][name])
            for name, scheduler in self.schedulers.items():
                scheduler.load_state_dict(checkpoint.state["schedulers"][name])
            self.ctx.load_state_dict(checkpoint.state.get("scalers", {}))
            rng = checkpoint.state["rng"]
            if isinstance(rng, list):  # one state per process
                if len(rng) == self.placement.world_size:
                    set_rng_state(rng[self.placement.rank])
                elif self.placement.main:
                    set_rng_state(rng[0])
            elif self.placement.main:
                set_rng_state(rng)
            if self.ema is not None and checkpoint.ema is not None:
                ckpt.check_tensors_fit(self.ema.state, checkpoint.ema, found[-1], "EMA")
                self.ema.state = {k: v.to(self.device) for k, v in checkpoint.ema.items()}
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
            if isinstance(exc, UserError):
                raise
            reason = " ".join(str(exc).split())[:150]
            raise UserError(f"checkpoint {found[-1]} does not fit this run's model and optimizers "
                            f"({type(exc).__name__}: {reason}); resume the run it belongs to, or remove that "
                            "checkpoint folder") from None
        self.best = checkpoint.state.get("best")
        restore_callbacks(self.callbacks, checkpoint.state.get("callbacks"))
        self.step = self._saved_step = checkpoint.step
        if self.placement.main:
            truncate_log(self.out / "metrics.jsonl", self.step)

    # -- the loop ------------------------------------------------------------------------
    def save(self, name: str | None = None) -> Path | None:
        """A step checkpoint (every process calls this: it gathers their random states; rank 0 writes), or
        a named one (rank 0 only)."""
        rng = gather(rng_state()) if name is None else [rng_state()]
        if name is None:
            self._saved_step = self.step
        if not self.placement.main:
            if name is None:
                self.call("on_checkpoint", None)
            return None
        state = {"step": self.step, "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                 "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                 "scalers": self.ctx.state_dict(), "rng": rng if len(rng) > 1 else rng[0]}
        if self.best is not None:
            state["best"] = self.best
        if name is None:
            state["callbacks"] = callbacks_state(self.callbacks)
        meta = {"step": self.step, "run_id": self.run_id, "genforge_version": __version__}
        folder = self.out / "checkpoints"
        path = ckpt.write_checkpoint(folder, name or f"{ckpt.PREFIX}{self.step:08d}", self.model.state_dict(), state,
                                     meta, self.ema.state if self.ema else None)
        if name is None:
            ckpt.prune(folder, self.config.keep)
            self.call("on_checkpoint", path)
        return path

    def inference_weights(self):
        """The generator as sampling, evaluation and export will use it: with the EMA weights when EMA is on."""
        return self.ema.applied_to(self.model.generator()) if self.ema is not None else nullcontext()

    def sample_grid(self, path: Path) -> Path:
        z = self.fixed_z.to(self.device)
        labels = self.fixed_labels.to(self.device) if self.fixed_labels is not None else None
        with self.inference_weights():
            images = generate(self.model.generator(), z, labels)
        check_generator_output(get_registry().model(self.config.model), images, self.info,
                               f"the generator's output at step {self.step}")
        nrow = self.info.num_classes if self.model.conditional and self.info.num_classes <= 16 else None
        captions = None
        if self.model.conditional and self.fixed_labels is not None:
            names = list(self.info.class_names or range(self.info.num_classes))
            captions = [str(names[int(label)]) for label in self.fixed_labels]
        return save_grid(images, path, nrow=nrow, captions=captions)

    def _check_finite(self, metrics: dict) -> None:
        values = torch.stack([v.float() for v in metrics.values()])
        if not bool(torch.isfinite(values).all()):
            bad = [k for k, v in metrics.items() if not math.isfinite(float(v))]
            last = ckpt.step_checkpoints(self.out / "checkpoints")
            kept = f"last good checkpoint: {last[-1]}" if last else "no checkpoint was written yet"
            raise TrainingDiverged(f"{', '.join(bad)} became {float(metrics[bad[0]])} at step {self.step + 1}; "
                                   f"training stopped ({kept}); try a lower lr or --precision fp32")

    def fit(self) -> Path:
        """The loop: a batch, the model's training step, the callbacks; a checkpoint at the end. Stops early on
        SIGINT/SIGTERM (with a checkpoint and the resume command) or when a callback sets stop_reason."""
        self.model.train()
        stop = StopSignals()
        try:
            if not self.placement.distributed:
                stop.__enter__()
            self.call("on_fit_start")
            while self.step < self.total_steps and stop.received is None and self.stop_reason is None:
                metrics = self.train_step()
                self.call("on_step_end", metrics)
            stop.__exit__()
            if self._saved_step != self.step:
                self.save()
            if stop.received is not None:
                safe = self.out / "checkpoints" / f"{ckpt.PREFIX}{self.step:08d}"
                raise TrainingInterrupted(f"training stopped by {stop.name} at step {self.step}; checkpoint {safe} "
                                          f"is safe; continue with: genforge train --resume {self.out}",
                                          stop.received)
            self.call("on_fit_end")
        finally:
            stop.__exit__()
            self.call("teardown")
            self.release_lock()
        return self.out

    def train_step(self) -> dict:
        """One step of the model's own training_step on the next batch; returns its metrics."""
        images, labels = self.sampler.batch(self.step)
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        metrics = self.model.training_step(images, labels.to(self.device, non_blocking=True), self.ctx)
        self._check_finite(metrics)
        for scheduler in self.schedulers.values():
            scheduler.step()
        if self.placement.distributed:
            broadcast_state(self.model, buffers_only=True)
        self.step += 1
        return metrics

    def call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def world(self) -> dict:
        return {"world_size": self.placement.world_size} if self.placement.distributed else {}
