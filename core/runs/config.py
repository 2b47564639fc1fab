"""The training options (TrainConfig) and their rules, checked before any work (one-line errors); what a
resumed run may change; the device and autocast mode asked for. Light: the CLI reads it at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from genforge.core.compute import THREADS_RULE, valid_threads
from genforge.core.errors import UserError
from genforge.core.limits import CHANNELS, MAX_IMAGE_SIZE, MAX_SEED, MIN_IMAGE_SIZE
from genforge.core.precision import REFERENCE, TABLE, bfloat16_precision, training_precisions

if TYPE_CHECKING:
    import torch

AUTOCAST_MODES = training_precisions()  # rows of the precision table (core/precision.py) that train
DEVICES = ("auto", "cpu", "cuda")
AUGMENT_MODES = ("none", "fixed", "adaptive")  # what the discriminator sees: core/training/augment.py


@dataclass
class TrainConfig:
    model: str = "dcgan"
    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int = 32
    channels: int | None = None
    epochs: int | None = None  # neither epochs nor steps: DEFAULT_EPOCHS, and at least DEFAULT_MIN_STEPS steps
    steps: int | None = None
    batch_size: int | None = None  # None: the model's choice (GeneratorModel.batch_size_by_default, 64 for most)
    precision: str | None = None  # None: the model's choice (GeneratorModel.bf16_by_default), else fp32
    device: str = "auto"
    channels_last: bool = False
    seed: int = 0
    ema: bool | None = None  # None: the model's choice (GeneratorModel.ema_by_default)
    augment: str | None = None  # none | fixed | adaptive; None: by the dataset's size (core/training/augment.py)
    ema_decay: float = 0.999  # the most it reaches; it warms up as min(ema_decay, (1 + step) / (10 + step))
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 500
    keep: int = 3
    eval_every: int = 0  # 0: never during training (see genforge evaluate)
    eval_metric: str | None = None  # None: the model's primary metric (GeneratorModel.primary_metric: fd, psnr...)
    eval_samples: int = 1000
    model_options: dict = field(default_factory=dict)
    sync_batchnorm: bool = False  # with several CUDA processes: BatchNorm statistics over all of them
    dist_timeout_s: int = 300  # with several processes: a collective that waits longer ends the run
    threads: int | None = None  # None: the free cores of this machine, shared over the processes (core/compute.py)
    log_to: list = field(default_factory=list)  # loggers besides metrics.jsonl: csv, tensorboard, mlflow, plugins'


# what each option must be: (type, check, what it must be); one line per option
OPTION_RULES = {
    "model": (str, None, "a model name"),
    "dataset": (str, None, "a dataset name"),
    "data_dir": ((str, type(None)), None, "a folder"),
    "image_size": (int, lambda v: MIN_IMAGE_SIZE <= v <= MAX_IMAGE_SIZE, f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}"),
    "channels": ((int, type(None)), lambda v: v is None or v in CHANNELS, "1 or 3"),
    "epochs": ((int, type(None)), lambda v: v is None or v >= 1, "at least 1"),
    "steps": ((int, type(None)), lambda v: v is None or v >= 1, "at least 1"),
    "batch_size": ((int, type(None)), lambda v: v is None or v >= 1, "at least 1"),
    "precision": ((str, type(None)), lambda v: v is None or v in AUTOCAST_MODES, " or ".join(AUTOCAST_MODES)),
    "augment": ((str, type(None)), lambda v: v is None or v in AUGMENT_MODES, ", ".join(AUGMENT_MODES)),
    "device": (str, lambda v: v in DEVICES, " or ".join(DEVICES)),
    "channels_last": (bool, None, "true or false"),
    "seed": (int, lambda v: 0 <= v <= MAX_SEED, "a whole number from 0 to 2^63 - 1"),
    "ema": ((bool, type(None)), None, "true or false"),
    "ema_decay": ((float, int), lambda v: 0 < v < 1, "between 0 and 1"),
    "log_every": (int, lambda v: v >= 1, "at least 1"),
    "sample_every": (int, lambda v: v >= 0, "0 (never) or more"),
    "checkpoint_every": (int, lambda v: v >= 0, "0 (only at the end) or more"),
    "keep": (int, lambda v: v >= 1, "at least 1"),
    "eval_every": (int, lambda v: v >= 0, "0 (never) or more"),
    "eval_metric": ((str, type(None)), None, "a metric name"),
    "eval_samples": (int, lambda v: v >= 10, "at least 10"),
    "model_options": (dict, lambda v: all(isinstance(k, str) for k in v), "a table of model options"),
    "sync_batchnorm": (bool, None, "true or false"),
    "dist_timeout_s": (int, lambda v: v >= 10, "seconds, at least 10"),
    "threads": ((int, type(None)), lambda v: v is None or valid_threads(v), f"{THREADS_RULE} (default: free cores)"),
    "log_to": (list, lambda v: all(isinstance(name, str) and name for name in v), "a list of logger names"),
}


TYPE_WORDS = {int: "a whole number", str: "text", bool: "true or false", float: "a number", dict: "a table",
              list: "a list"}


DEFAULT_EPOCHS = 5
DEFAULT_MIN_STEPS = 1000  # a few hundred images make a handful of steps per epoch, far too few for any model


def training_length(config: TrainConfig, steps_per_epoch: int) -> int:
    """The run's steps: --steps, else --epochs passes, else DEFAULT_EPOCHS passes but at least DEFAULT_MIN_STEPS."""
    if config.steps is not None:
        return config.steps
    if config.epochs is not None:
        return config.epochs * steps_per_epoch
    return max(DEFAULT_EPOCHS * steps_per_epoch, DEFAULT_MIN_STEPS)


def config_from_dict(values: dict) -> TrainConfig:
    """A TrainConfig from options as a config file or the CLI gives them, each checked (one-line errors)."""
    if not isinstance(values, dict):
        raise UserError(f"training options must be a table of option = value, not {type(values).__name__}")
    unknown = sorted(set(values) - set(OPTION_RULES))
    if unknown:
        raise UserError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTION_RULES))}")
    _check_values(values)
    return TrainConfig(**values)


def check_config(config: TrainConfig) -> None:
    """The rules of config_from_dict for a TrainConfig built in Python, so it is refused before any work."""
    if not isinstance(config, TrainConfig):
        raise UserError(f"the training config must be a TrainConfig, not {type(config).__name__}")
    _check_values({name: getattr(config, name) for name in OPTION_RULES})


def _check_values(values: dict) -> None:
    for name, value in values.items():
        kind, check, must = OPTION_RULES[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise UserError(f"training option {name} = {value!r} must be {TYPE_WORDS[kinds[0]]} ({must})")
        if (check is not None and not check(value)) or (isinstance(value, float) and value != value):
            raise UserError(f"training option {name} = {value!r} is out of range; it must be {must}")
    if values.get("epochs") is not None and values.get("steps") is not None:
        raise UserError("give either epochs or steps, not both")


RESUMABLE_CHANGES = {"steps", "epochs", "device", "log_every", "sample_every", "checkpoint_every", "keep", "threads",
                     "dist_timeout_s", "log_to"}


def resumed_config(record: dict, changes: dict) -> TrainConfig:
    """The config of a run to resume (its config.json record) with `changes`, which may only be RESUMABLE_CHANGES.

    A new --steps replaces the run's --epochs and the other way round.
    """
    # a run from before augmentation trained without it; one from before model precisions in fp32
    values = {"augment": "none", "precision": REFERENCE, **record["train"]}
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
    import torch  # lazy: the CLI reads this module's rules before torch is needed

    if name not in DEVICES:
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return torch.device(name)


def default_precision(model_class, device: torch.device) -> str:
    """bf16 for a model that trains well under it (bf16_by_default) on a device with native bf16 arithmetic
    (CUDA with bf16, or a CPU with AVX-512 BF16 or AMX: elsewhere bf16 is emulated and slower); else fp32."""
    import torch

    from genforge.core.hardware import cpu_has_bf16

    if not getattr(model_class, "bf16_by_default", False):
        return REFERENCE
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_bf16()
    return bfloat16_precision() if native else REFERENCE


def check_precision(precision: str, device: torch.device) -> None:
    """One of AUTOCAST_MODES, and fp16 only where gradient scaling runs (CUDA)."""
    if precision not in AUTOCAST_MODES:
        raise UserError(f"unknown precision {precision!r}; use {', '.join(AUTOCAST_MODES)}")
    if TABLE[precision].training_needs_cuda and device.type != "cuda":
        others = " or ".join(p for p in AUTOCAST_MODES if not TABLE[p].training_needs_cuda)
        raise UserError(f"{precision} training needs CUDA (gradient scaling); use --precision {others} on the CPU")
