"""The one training loop: any model plugin on any dataset plugin, on CPU or CUDA.

The trainer owns devices, precision, data order (batches.py) and checkpoints; the model's
training_step owns its own updates through the StepContext; everything optional (EMA, logging,
progress, sample grids, evaluation, checkpoint cadence) is a callback (callbacks.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch

from genforge.core.compute import settle
from genforge.core.contract import build_model, check_generator_output, open_dataset, probe_batch, with_batch_size
from genforge.core.data import batch_of
from genforge.core.errors import TrainingDiverged, TrainingInterrupted, UserError
from genforge.core.folders import (
    LOCK,
    MARKER,
    acquire_run_lock,
    make_owned_folder,
    removal_refusal,
    remove_owned_folder,
    run_lock,
)
from genforge.core.images import save_grid
from genforge.core.inputs import signature_of, torch_inputs
from genforge.core.model import GeneratorModel, generate, make_config
from genforge.core.registry import get_registry
from genforge.core.restore import comparison_grid, restore, restores
from genforge.core.runs import checkpoint as ckpt
from genforge.core.runs import run_dir
from genforge.core.runs.checkpoint import rng_state, set_rng_state
from genforge.core.runs.config import (
    TrainConfig,
    check_config,
    check_precision,
    default_precision,
    resolve_device,
    training_length,
)
from genforge.core.signals import StopSignals
from genforge.core.training.augment import Augmentation, resolve_mode
from genforge.core.training.batches import BatchSampler, HeldOutSampler
from genforge.core.training.callbacks import Callback, Loggers, callbacks_in_order, callbacks_state, restore_callbacks
from genforge.core.training.distributed import (
    barrier,
    broadcast_state,
    check_placement,
    gather,
    placement_from_environment,
    start,
)
from genforge.core.training.ema import EMA
from genforge.core.training.loggers import check_loggers
from genforge.core.training.step import StepContext, check_training_step

GRID_RESTORED = 8  # clean images a restoration model's grids show restored


def fixed_inputs(model: GeneratorModel, seed: int, n: int = 64):
    """The same noise (and labels) for every sample grid of a run, so grids compare over time."""
    return torch_inputs(*signature_of(model).inputs(n=n, seed=seed + 12345))


class Trainer:
    def __init__(self, config: TrainConfig, out: Path, resume: bool = False, overwrite: bool = False,
                 progress: bool = True, callbacks: list[Callback] | None = None):
        check_config(config)
        if config.eval_metric is None:  # the model's own measure of quality judges its best checkpoint
            model_class = get_registry().model(config.model).load()
            config = dataclasses.replace(config, eval_metric=getattr(model_class, "primary_metric", "fd"))
        self.config, self.out = config, Path(out)
        self.callbacks = callbacks_in_order(progress, callbacks or (), config.log_to)
        for callback in self.callbacks:
            if hasattr(callback, "check"):  # hooks added after a callback was written are optional
                callback.check(config)
        self.loggers = next(c for c in self.callbacks if isinstance(c, Loggers))
        self.stop_reason: str | None = None  # a callback sets it to end training after the current step
        self.outcome = "FAILED"  # how fit() ended, for the loggers' teardown: FINISHED, KILLED (a signal) or FAILED
        self.last_log: dict | None = None  # the latest metrics.jsonl record, for the progress bar
        self.placement = placement_from_environment()
        threads = settle(config.threads, self.placement.world_size).threads
        # recorded in config.json, so a resumed run computes with the same count: CPU kernels split their sums by
        # thread, and bit-exact resumption needs the same split (--threads on --resume changes it knowingly)
        self.config = config = with_batch_size(dataclasses.replace(config, threads=threads))
        self.device = resolve_device(config.device)
        if config.precision is not None:
            check_precision(config.precision, self.device)
        check_placement(self.placement, config, self.device)
        self.device = start(self.placement, self.device.type, config.dist_timeout_s) or self.device
        check_loggers(config.log_to)
        self._check_run_dir(resume, overwrite)
        dataset, self.info = open_dataset(config.dataset, "train", config.image_size, config.channels,
                                          config.data_dir, seed=config.seed)
        self.sampler = BatchSampler(dataset, config.batch_size, config.seed, self.placement)
        torch.manual_seed(config.seed)
        self.spec = get_registry().model(config.model)
        probe = probe_batch(dataset)
        self.model = build_model(self.spec, self.info, config.model_options, probe=probe)
        check_training_step(self.spec, self.model, probe)
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
        if config.precision is None:
            self.config = config = dataclasses.replace(
                config, precision=default_precision(type(self.model), self.device))
        augment = resolve_mode(config.augment, type(self.model), self.info.split_sizes.get("train"))
        self.config = config = dataclasses.replace(config, augment=augment)
        self.ctx = StepContext(self.optimizers, self.device, config.precision, Augmentation(augment))
        if augment == "adaptive" and self.info.split_sizes.get("test"):
            held_out = HeldOutSampler(open_dataset(config.dataset, "test", config.image_size, config.channels,
                                                   config.data_dir, seed=config.seed)[0],
                                      self.sampler.batch_size, config.seed, self.placement)
            self.ctx.augmentation.held_out = lambda: self._on_device(*held_out.batch(self.step))
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
                    remove_owned_folder(self.out, "run", run_dir.run_files(), run_dir.OVERWRITE_FIX)
            make_owned_folder(self.out, "run")
            self.release_lock = acquire_run_lock(self.out, "train it")
            self._check_still_empty()
            run_dir.write_run_config(self.out, self.run_id, self.config, self.model, self.info)
        barrier()
        self.total_steps = training_length(config, self.sampler.steps_per_epoch)
        self.fixed_z, self.fixed_labels = fixed_inputs(self.model, config.seed)
        if restores(self.model):  # the same clean images for every grid: damaged | restored | clean
            self.fixed_clean = batch_of(dataset, torch.arange(min(GRID_RESTORED, len(dataset))))[0]
            self.fixed_z, self.fixed_labels = fixed_inputs(self.model, config.seed, len(self.fixed_clean))

    # -- run directory -------------------------------------------------------------------
    def _check_run_dir(self, resume: bool, overwrite: bool) -> None:
        """Refuse to touch what the user has; nothing is written until the model is built."""
        if resume:
            return
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            if not overwrite:
                raise UserError(f"{self.out} already exists; pass --resume {self.out} to continue it, "
                                "--overwrite to replace it, or another --out")
            refusal = removal_refusal(self.out, "run", run_dir.run_files())
            if refusal:
                raise UserError(f"{refusal}; refusing to overwrite it: {run_dir.OVERWRITE_FIX}")

    def _check_still_empty(self) -> None:
        """Under the lock: nothing but genforge's marker and lock. Another process that checked the same new
        folder at the same moment and took the lock first (then finished) has filled it: refuse."""
        others = sorted(p.name for p in self.out.iterdir() if p.name not in (LOCK, MARKER.format(kind="run")))
        if others:
            self.release_lock()
            raise UserError(f"{self.out} was filled by another genforge process while this one started "
                            f"({', '.join(others[:3])}); choose another --out, or --resume {self.out}")

    def _restore(self) -> None:
        record = run_dir.read_run_config(self.out)
        self._check_model_config(record["model_config"])
        self.run_id = record["run_id"]
        ckpt.remove_stale_temporaries(self.out / "checkpoints")
        found = ckpt.step_checkpoints(self.out / "checkpoints")
        if not found:
            if self.placement.main:
                self._truncate_log(0)
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
            self._truncate_log(self.step)

    def _check_model_config(self, recorded: dict) -> None:
        """config.json's model_config is what sample, evaluate and export will build: it must be the model this
        resume trains, checked now rather than after training."""
        path = run_dir.config_path(self.out)
        try:
            config = make_config(type(self.model.config), recorded)
        except UserError as exc:
            raise UserError(f"{path} is damaged ({exc.message}); the run cannot be resumed: restore config.json or "
                            "train again") from None
        recorded_values, built = _as_json(config), _as_json(self.model.config)  # tuples and lists alike, as stored
        if recorded_values != built:
            differing = sorted(k for k in built if recorded_values.get(k) != built[k])
            raise UserError(f"{path} is damaged: its model_config ({', '.join(differing[:3])}) disagrees with its "
                            "train model_options; the run cannot be resumed: restore config.json or train again")

    def _truncate_log(self, step: int) -> None:
        """metrics.jsonl back to `step`; damaged lines are said once, before training, as they are dropped."""
        damaged = run_dir.truncate_log(self.out, step)
        if damaged:
            shown = ", ".join(map(str, damaged[:5])) + (f" and {len(damaged) - 5} more" if len(damaged) > 5 else "")
            warnings.warn(f"{run_dir.metrics_path(self.out)}: line(s) {shown} were damaged (not JSON records) and were "
                          "dropped; the loss curve will lack those steps", stacklevel=2)

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
        meta = {"step": self.step, "run_id": self.run_id}
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
            if restores(self.model):
                clean = self.fixed_clean.to(self.device)
                inputs, images = restore(self.model, self.model.generator(), clean, self.config.seed, z, labels)
            else:
                images = generate(self.model.generator(), z, labels)
        check_generator_output(self.spec, images, self.info,
                               f"the generator's output at step {self.step}")
        if restores(self.model):
            grid, nrow, captions = comparison_grid(self.model, inputs, images, clean)
            return save_grid(grid, path, nrow=nrow, captions=captions)
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
            if self.stop_reason is not None and self.placement.main:
                self.log({"kind": "stop", "step": self.step, "reason": self.stop_reason})
            if self._saved_step != self.step:
                self.save()
            if stop.received is not None:
                self.outcome = "KILLED"
                safe = self.out / "checkpoints" / f"{ckpt.PREFIX}{self.step:08d}"
                raise TrainingInterrupted(f"training stopped by {stop.name} at step {self.step}; checkpoint {safe} "
                                          f"is safe; continue with: genforge train --resume {self.out}",
                                          stop.received)
            self.call("on_fit_end")
            self.outcome = "FINISHED"
        except KeyboardInterrupt:
            self.outcome = "KILLED"
            raise
        finally:
            stop.__exit__()
            self.call("teardown")
            self.release_lock()
        return self.out

    def train_step(self) -> dict:
        """One step of the model's own training_step on the next batch; returns its metrics."""
        images, labels = self._on_device(*self.sampler.batch(self.step))
        metrics = self.model.training_step(images, labels, self.ctx)
        if self.ctx.augmentation.active:
            self.ctx.augmentation.end_step(images.shape[0])
            metrics["augment_p"] = torch.tensor(self.ctx.augmentation.p)
            if self.ctx.augmentation.signal is not None:
                metrics["augment_signal"] = torch.tensor(self.ctx.augmentation.signal)
        self._check_finite(metrics)
        for scheduler in self.schedulers.values():
            scheduler.step()
        if self.placement.distributed:
            broadcast_state(self.model, buffers_only=True)
        self.step += 1
        return metrics

    def _on_device(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return images, labels.to(self.device, non_blocking=True)

    def log(self, record: dict) -> None:
        """A metrics record ({"kind", "step", ...}) to every logger of the run (rank 0)."""
        if record.get("kind") == "train":
            self.last_log = record
        self.loggers.log_metrics(record)

    def call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook, None)  # hooks added after a callback was written are optional
            if method is not None:
                method(self, *args)

    def world(self) -> dict:
        return {"world_size": self.placement.world_size} if self.placement.distributed else {}


def _as_json(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))
