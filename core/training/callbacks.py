"""What the training loop delegates: a small callback interface and the built-in callbacks.

The loop (core/training/trainer.py, Trainer.fit) only draws batches, runs the model's training step and calls
the callbacks in order. A callback's state_dict() is saved in every step checkpoint (state.pt,
under "callbacks" and the callback's name) and handed back to load_state_dict() on --resume, so a
callback's counters survive a kill. Setting trainer.stop_reason in a hook ends training after that
step, with a checkpoint.

    class CountSteps(Callback):
        def __init__(self):
            self.seen = 0
        def on_step_end(self, trainer, metrics):
            self.seen += 1
        def state_dict(self):
            return {"seen": self.seen}
        def load_state_dict(self, state):
            self.seen = state.get("seen", 0)

    Trainer(config, out, callbacks=[CountSteps()]).fit()
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

from genforge.core.errors import PluginError, UserError
from genforge.core.evaluation.metrics import check_metric_options
from genforge.core.evaluation.scoring import evaluate_generator
from genforge.core.files import write_atomic
from genforge.core.images import save_loss_curve
from genforge.core.progress import progress
from genforge.core.registry import get_registry
from genforge.core.runs.run_dir import read_metrics
from genforge.core.training.distributed import checksum, gather
from genforge.core.training.loggers import Logger, logger_names, warn


class Callback:
    """Hooks the trainer calls; every one is optional. `name` keys the state in checkpoints."""

    @property
    def name(self) -> str:
        return type(self).__name__

    def check(self, config) -> None:
        """Before anything is built or written: raise UserError if this callback cannot work with the training
        options `config` (a TrainConfig), so a refusal leaves no run folder behind."""

    def on_fit_start(self, trainer) -> None:
        """Before the first step of this fit() (also after a resume)."""

    def on_step_end(self, trainer, metrics: dict) -> None:
        """After every step; trainer.step already counts it. metrics: the step's dict of scalar tensors."""

    def on_checkpoint(self, trainer, path) -> None:
        """After a step checkpoint was written (path: its folder; None on ranks other than 0)."""

    def on_evaluation(self, trainer, scores: dict) -> None:
        """After every evaluation (eval_every steps, rank 0): scores maps metric names to values."""

    def on_fit_end(self, trainer) -> None:
        """After the last step and its checkpoint, when training ended normally (not after a signal or error)."""

    def teardown(self, trainer) -> None:
        """Always, last: release what on_fit_start took (files, progress bars)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """The state saved with the checkpoint being resumed ({} when it had none)."""


class EmaUpdate(Callback):
    """The exponential moving average of the generator's weights (trainer.ema), updated after every step; its
    weights travel in the checkpoint's ema.safetensors."""

    def on_step_end(self, trainer, metrics):
        if trainer.ema is not None:
            trainer.ema.update(trainer.model.generator(), trainer.step - 1)


class ProgressBar(Callback):
    """Progress on rank 0 (core/progress.py: a widget in Jupyter, a bar on a terminal, a line per 10% in logs)."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.bar, self.shown = enabled, None, None

    def on_fit_start(self, trainer):
        config = trainer.config
        self.bar = progress(trainer.total_steps, f"{config.model} on {config.dataset}", "step", trainer.step,
                            self.enabled and trainer.placement.main)

    def on_step_end(self, trainer, metrics):
        self.bar.update(1)
        if trainer.last_log is not None and trainer.last_log is not self.shown:
            self.shown = trainer.last_log
            losses = [(k, v) for k, v in trainer.last_log.items() if k not in ("kind", "step", "epoch", "world_size")]
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in losses[:2]})  # a bar that fits 80 columns

    def teardown(self, trainer):
        if self.bar is not None:
            self.bar.close()


class MetricsLog(Callback):
    """Every log_every steps, a record of the step's metrics and images/s for the loggers (metrics.jsonl first);
    at the end, loss.png drawn from metrics.jsonl."""

    def on_fit_start(self, trainer):
        self.window_start, self.window_images = time.perf_counter(), 0

    def on_step_end(self, trainer, metrics):
        self.window_images += trainer.config.batch_size // trainer.placement.world_size
        if not trainer.placement.main or not (trainer.step % trainer.config.log_every == 0
                                              or trainer.step == trainer.total_steps):
            return
        elapsed = time.perf_counter() - self.window_start
        trainer.log({"kind": "train", "step": trainer.step, **trainer.world(),
                     "epoch": trainer.step / trainer.sampler.steps_per_epoch,
                     **{k: round(float(v), 5) for k, v in metrics.items()},
                     "images_per_s": round(self.window_images * trainer.placement.world_size / max(elapsed, 1e-9),
                                           1)})
        self.window_start, self.window_images = time.perf_counter(), 0

    def on_fit_end(self, trainer):
        if trainer.placement.distributed:
            checksums = gather(checksum(trainer.model))
            trainer.log({"kind": "distributed", "step": trainer.step, **trainer.world(), "model_checksums": checksums})
            if trainer.placement.main and len(set(checksums)) != 1:
                raise RuntimeError(f"the processes ended with different weights ({checksums}); this is a bug")
        if trainer.placement.main:
            save_loss_curve(read_metrics(trainer.out), trainer.out / "loss.png",
                            f"{trainer.config.model} on {trainer.config.dataset}: training to step {trainer.step}")


class SampleGrids(Callback):
    """A grid from fixed noise every sample_every steps (samples/step-N.png), and at the end samples.png."""

    def on_step_end(self, trainer, metrics):
        every = trainer.config.sample_every
        if trainer.placement.main and every and trainer.step % every == 0:
            path = trainer.sample_grid(trainer.out / "samples" / f"step-{trainer.step:08d}.png")
            trainer.loggers.log_image("samples", path, trainer.step)

    def on_fit_end(self, trainer):
        if trainer.placement.main:
            last = trainer.sample_grid(trainer.out / "samples" / f"step-{trainer.step:08d}.png")
            write_atomic(trainer.out / "samples.png", last.read_bytes())  # same noise, same weights: one pass


class EvalBest(Callback):
    """Every eval_every steps: score the generator (EMA weights when on), log it, keep checkpoints/best."""

    def check(self, config):
        if config.eval_every:  # a misspelled or unusable metric is refused before the first step
            check_metric_options([config.eval_metric], {})

    def on_step_end(self, trainer, metrics):
        config = trainer.config
        if not (trainer.placement.main and config.eval_every and trainer.step % config.eval_every == 0):
            return
        with trainer.inference_weights():
            scores = evaluate_generator(trainer.model, trainer.info, config, n=config.eval_samples,
                                        metrics=[config.eval_metric], device=trainer.device)
        trainer.log({"kind": "eval", "step": trainer.step, **scores})
        trainer.call("on_evaluation", scores)
        value = scores.get(config.eval_metric)
        spec = get_registry().get("metrics", config.eval_metric)
        if value is None and config.eval_metric not in scores.get("skipped", {}):
            raise PluginError(f"metric {spec.name!r} from plugin {spec.plugin or '?'} returned "
                              f"{', '.join(k for k in scores if k not in ('n', 'classifier_test_accuracy'))} but "
                              f"not {spec.name!r}: a metric must return its own name as a key to keep the best "
                              "checkpoint; fix that plugin or choose another --eval-metric")
        if value is None:
            return
        higher = spec.higher_is_better
        best = trainer.best
        if best is None or (value > best["value"] if higher else value < best["value"]):
            trainer.best = {"metric": config.eval_metric, "value": value, "step": trainer.step}
            trainer.save("best")


class Loggers(Callback):
    """Feeds the run's loggers (rank 0): hyperparameters at the start, each metrics record, each sample grid,
    and samples.png and loss.png at the end. Their state is saved with the checkpoints."""

    def __init__(self, log_to=()):
        self.names = logger_names(log_to)
        self.active: dict[str, Logger] = {}
        self.saved: dict = {}

    def on_fit_start(self, trainer):
        if not trainer.placement.main:
            return
        registry = get_registry()
        hyperparams = {**dataclasses.asdict(trainer.config), "run_id": trainer.run_id}
        for name in self.names:
            logger = registry.get("loggers", name).load()()
            self.active[name] = logger
            self._call(name, "start", trainer.out, hyperparams, trainer.step, self.saved.get(name, {}))

    def log_metrics(self, record: dict) -> None:
        for name in list(self.active):
            self._call(name, "log_metrics", record)

    def log_image(self, name: str, path: Path, step: int) -> None:
        for logger in list(self.active):
            self._call(logger, "log_image", name, path, step)

    def log_artifact(self, path: Path) -> None:
        for name in list(self.active):
            self._call(name, "log_artifact", path)

    def on_fit_end(self, trainer):
        for artifact in ("samples.png", "loss.png"):
            if (trainer.out / artifact).exists():
                self.log_artifact(trainer.out / artifact)

    def teardown(self, trainer):
        for name in list(self.active):
            if hasattr(self.active[name], "finish"):
                self._call(name, "finish", trainer.outcome, trainer.stop_reason)
            self._call(name, "close")
        self.active.clear()

    def state_dict(self) -> dict:
        states = {}
        for name in list(self.active):
            state = self._call(name, "state_dict")
            if state:
                states[name] = state
        return states or dict(self.saved)

    def load_state_dict(self, state):
        self.saved = dict(state)

    def _call(self, name: str, method: str, *args):
        logger = self.active.get(name)
        if logger is None:
            return None
        if logger.required:
            return getattr(logger, method)(*args)
        try:
            return getattr(logger, method)(*args)
        except Exception as exc:  # noqa: BLE001  a logger never costs the run
            del self.active[name]
            warn(name, method, exc)
            return None


class Checkpoints(Callback):
    """A step checkpoint every checkpoint_every steps (every process takes part: it gathers their RNG states)."""

    def on_step_end(self, trainer, metrics):
        every = trainer.config.checkpoint_every
        if every and trainer.step % every == 0:
            trainer.save()


class EarlyStopping(Callback):
    """Stop training when `metric` (default: the run's eval_metric) has not improved by more than `min_delta`
    for `patience` evaluations in a row; the reason is the last line of training and a metrics.jsonl record.
    Needs evaluations (eval_every > 0); the metric's direction comes from its registration."""

    def __init__(self, metric: str | None = None, patience: int = 3, min_delta: float = 0.0):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise UserError(f"EarlyStopping(patience={patience!r}) needs a whole number of evaluations, at least 1")
        if isinstance(min_delta, bool) or not isinstance(min_delta, int | float) or not 0 <= min_delta < math.inf:
            raise UserError(f"EarlyStopping(min_delta={min_delta!r}) needs a finite number, 0 or more")
        if metric is not None and not isinstance(metric, str):
            raise UserError(f"EarlyStopping(metric={metric!r}) needs a metric name such as 'fd'")
        self.metric, self.patience, self.min_delta = metric, patience, float(min_delta)
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad = 0

    def check(self, config):
        if not config.eval_every:
            raise UserError("EarlyStopping needs evaluations during training: set eval_every (--eval-every N)")
        self.metric = self.metric or config.eval_metric
        get_registry().get("metrics", self.metric)

    def on_evaluation(self, trainer, scores):
        value = scores.get(self.metric)
        if value is None:
            return
        higher = get_registry().get("metrics", self.metric).higher_is_better
        gain = (value - self.best if higher else self.best - value) if self.best is not None else math.inf
        if gain > self.min_delta:
            self.best, self.best_step, self.bad = float(value), trainer.step, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            trainer.stop_reason = (f"early stopping: {self.metric} did not improve for {self.patience} "
                                   f"evaluation(s) (best {self.best:.4g} at step {self.best_step})")

    def state_dict(self):
        return {"best": self.best, "best_step": self.best_step, "bad": self.bad}

    def load_state_dict(self, state):
        self.best, self.best_step, self.bad = state.get("best"), state.get("best_step"), state.get("bad", 0)


class LearningRateMonitor(Callback):
    """Every log_every steps, each optimizer's learning rate as a metrics record ({"kind": "lr", "lr_g": ...}),
    for metrics.jsonl and every logger."""

    def on_step_end(self, trainer, metrics):
        if trainer.placement.main and trainer.step % trainer.config.log_every == 0:
            trainer.log({"kind": "lr", "step": trainer.step,
                         **{f"lr_{name}": optimizer.param_groups[0]["lr"]
                            for name, optimizer in trainer.optimizers.items()}})


def callbacks_in_order(progress: bool, extra=(), log_to=()) -> list[Callback]:
    """The trainer's own callbacks and the user's, in the order they run after each step: the checkpoint comes
    last, so it holds every callback's state after that step."""
    return [EmaUpdate(), MetricsLog(), ProgressBar(progress), SampleGrids(), EvalBest(), *extra, Loggers(log_to),
            Checkpoints()]


def _name(callback) -> str:
    return getattr(callback, "name", type(callback).__name__)


def callbacks_state(callbacks) -> dict:
    """Each callback's state_dict() under its name (callbacks written without one have none)."""
    states = {_name(c): c.state_dict() for c in callbacks if hasattr(c, "state_dict")}
    return {name: state for name, state in states.items() if state}


def restore_callbacks(callbacks, state) -> None:
    saved = state if isinstance(state, dict) else {}
    for callback in callbacks:
        if hasattr(callback, "load_state_dict"):
            mine = saved.get(_name(callback))
            callback.load_state_dict(mine if isinstance(mine, dict) else {})
