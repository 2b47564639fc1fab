"""The model contract: what every model plugin provides (built-in or third-party).

A model plugin is one class, a subclass of GeneratorModel, registered by a ModelSpec whose
`impl` names it. The class is the one home of every fact about the model; genforge checks
it against this contract when the model is built (core/contract.py) and names the plugin,
the method and what to change when something is off.

Required, on the class:
  Config            a dataclass of the model's options (all with defaults); -o key=value and
                    [model_options] fill it. Its __post_init__ may raise ValueError for bad
                    values; genforge shows the message as a one-line error.
  conditional       bool (default False): the generator takes class labels, and training
                    needs a labelled dataset. A model that is conditional only where the data has
                    labels leaves it False on the class and sets self.conditional in __init__.
  image_sizes       tuple of square image sizes the model makes, or None for any size.

Optional, on the class:
  sampling_options  tuple of Config field names (default ()) that may change after training, at
                    sample, evaluate and export time (`--sampling steps=10`, `sampling={"steps": 10}`):
                    for an iterative sampler, its step count and guidance scale. They reach the
                    model the usual way, through its Config; an export records their values.
  ema_by_default    bool (default False): the trainer keeps an exponential moving average of
                    the generator's weights unless told --no-ema, and sampling, evaluation
                    and export use it. Set it where the averaged weights are the better
                    generator (GANs); leave it off where the generator holds state fitted
                    once, such as a prior fitted after training.
  bf16_by_default   bool (default False): train under bf16 autocast unless told --precision, on devices
                    with native bf16 arithmetic (CUDA with bf16; CPUs with AVX-512 BF16 or AMX); fp32
                    elsewhere. Set it where bf16 was measured to train as well as fp32 (diffusion).
  batch_size_by_default
                    int (default 64): the global batch the model trains with unless told --batch-size.
                    Set it where another batch was measured to train better in the same time (diffusion:
                    32, more steps of the same cost per image).
  augments          bool (default False): the training step shows its discriminator real and
                    generated images through ctx.augment (and reports its raw scores on the
                    reals with ctx.report_real_scores), so `--augment` applies; the default
                    then depends on the dataset's size (core/training/augment.py).

Required, on the instance (set in __init__(self, info: DataInfo, config)):
  latent_shape      tuple of positive ints: the shape of one noise sample, e.g. (100, 1, 1).

Optional, on the instance (restoration models; core/restore.py):
  inputs            tuple of ImageInput(name, (C, H, W), meaning) (default ()): image inputs the generator
                    takes after the noise and labels, e.g. ImageInput("image", (1, 32, 32), "the damaged
                    image") and ImageInput("mask", (1, 32, 32), "1 where known, 0 where to fill"). Each
                    becomes its own ONNX input; `genforge.load(f).generate(image=..., mask=...)` feeds them.
  degrade(clean, seed) -> dict[str, Tensor]   required with inputs: the inputs made from clean images
                    (N, C, H, W) in [-1, 1], the same for the same seed; training grids, evaluation
                    (PSNR, SSIM against the clean image), export checks and int8 calibration use it.
  primary_metric    (class) the metric that judges the model: the best checkpoint, the verdict and the
                    export gate use it (default "fd"; restoration models "psnr" or "psnr_masked").

Required methods:
  optimizers() -> dict[str, torch.optim.Optimizer]           at least one, by name
  training_step(images, labels, ctx) -> dict[str, Tensor]     one update, scalar metrics
      images  float32 (N, C, H, W) in [-1, 1], on the training device
      labels  int64 (N,): class indices for labelled data, -1 where unlabelled
      ctx     core/training/step.py StepContext: ctx.autocast(), ctx.optimize(name, loss),
              ctx.frozen(module), ctx.randn(*shape)
      returns a dict of scalar (0-d or one-element) tensors, e.g. {"d_loss": ..., "g_loss": ...}
  generator() -> nn.Module                                     the inference generator:
      forward(z)          unconditional: z float32 (N, *latent_shape)
      forward(z, labels)  conditional:   labels int32 (N,) in 0..num_classes-1
      forward(z[, labels], *images)  restoration models: their `inputs`, in order, after z (and labels)
      returns float32 (N, C, H, W) images in [-1, 1] (end in Tanh or a clamp). Noise is
      always an input, never drawn inside, so exports are deterministic and portable.

Optional methods (capabilities, detected by the code that needs them; see `capabilities`):
  schedulers(optimizers) -> dict[str, LRScheduler]   stepped once per training step
  negative_elbo(images, noise[, labels]) -> dict      "elbo": per-image averages in nats with
      at least the key "neg_elbo"; noise is (N, *latent_shape) standard normal for the
      reparameterisation; conditional models take labels (int64, (N,)) too
  reconstruct(images[, labels]) -> Tensor             "reconstruct": images through the
      encoder's mean and the decoder, (N, C, H, W) in [-1, 1]
  encode(images[, labels]) -> (mean, log_var)         "encode": the posterior's parameters
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from contextlib import contextmanager

import torch
from torch import nn

from genforge.core.data import DataInfo
from genforge.core.errors import UserError
from genforge.core.inputs import call_generator

OPTIONAL_METHODS = {"elbo": "negative_elbo", "reconstruct": "reconstruct", "encode": "encode"}


class GeneratorModel(nn.Module):
    Config: type = None  # a dataclass of the model's options, beside the model in its file
    conditional: bool = False
    ema_by_default: bool = False
    augments: bool = False
    bf16_by_default: bool = False
    batch_size_by_default: int = 64
    image_sizes: tuple[int, ...] | None = None  # None: any size
    sampling_options: tuple[str, ...] = ()  # Config fields that sample/evaluate/export may change
    latent_shape: tuple[int, ...] = ()
    inputs: tuple = ()  # a restoration model's image inputs (ImageInput), fed after z and labels
    primary_metric: str = "fd"

    def __init__(self, info: DataInfo, config):
        super().__init__()
        self.info = info
        self.config = config

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def schedulers(self, optimizers: dict) -> dict:
        """Learning-rate schedulers, stepped once per training step (optional)."""
        return {}

    def training_step(self, images: torch.Tensor, labels: torch.Tensor, ctx) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def generator(self) -> nn.Module:
        raise NotImplementedError


def capabilities(model_class) -> frozenset[str]:
    """What a model class (or instance) can do beyond the required contract."""
    found = {name for name, method in OPTIONAL_METHODS.items() if callable(getattr(model_class, method, None))}
    if getattr(model_class, "conditional", False):
        found.add("conditional")
    if callable(getattr(model_class, "degrade", None)):
        found.add("restores")
    return frozenset(found)


def call_with_labels(method, *args, labels=None):
    """Call an optional method, with labels last for conditional models (labels not None)."""
    return method(*args) if labels is None else method(*args, labels)


@contextmanager
def eval_mode(module: nn.Module):
    """`module` in eval mode (BatchNorm on its running statistics), its own mode restored after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@torch.no_grad()
def generate(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor | None, images=()) -> torch.Tensor:
    """Images from an inference generator in eval mode, as float32 (images: a restoration model's inputs)."""
    with eval_mode(generator):
        return call_generator(generator, z, labels, images).float()


TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def with_sampling(model_class, model_config: dict, sampling: dict | None) -> dict:
    """A trained model's options with `sampling` (values for the class's sampling_options) laid over them."""
    if not sampling:
        return dict(model_config)
    if not isinstance(sampling, dict):
        raise UserError(f"sampling must be a table of option = value, not {type(sampling).__name__}")
    allowed = tuple(getattr(model_class, "sampling_options", ()))
    unknown = sorted(set(sampling) - set(allowed))
    if unknown:
        known = f"it has {', '.join(allowed)}" if allowed else "it has none"
        raise UserError(f"{', '.join(unknown)} is not a sampling option of this model ({known})")
    return {**model_config, **sampling}


def option_type(config_class, field: dataclasses.Field):
    """The type a model option must have, from the Config's annotation (X | None gives X), else its default."""
    try:
        hint = typing.get_type_hints(config_class).get(field.name)
    except Exception:  # noqa: BLE001  an annotation that cannot be resolved: fall back to the default's type
        hint = None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args and typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    if hint in (bool, int, float, str):
        return hint
    default = field.default
    return type(default) if isinstance(default, bool | int | float | str) else None


def convert_option(key: str, value, kind):
    """A value as the user wrote it (text from -o, or a TOML value) converted to the option's type, strictly."""
    if kind is None:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise UserError(f"model option {key}={value!r} must be true or false (also 1/0, yes/no)")
    if isinstance(value, str) and kind is not str:
        try:
            value = kind(value.strip())
        except ValueError:
            article = "an" if kind is int else "a"
            raise UserError(f"model option {key}={value!r} must be {article} {kind.__name__}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise UserError(f"model option {key}={value!r} must be {kind.__name__}, not {type(value).__name__}")
    if kind is float and not math.isfinite(value):
        raise UserError(f"model option {key} = {value!r} must be a finite number")
    return value


def make_config(config_class, options: dict | None):
    """Build a model's config dataclass from a dict: unknown keys refused, each value converted to the type the
    Config's annotation names (booleans strictly), all with one-line errors."""
    options = dict(options or {})
    names = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise UserError(f"unknown model option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    for key, value in options.items():
        options[key] = convert_option(key, value, option_type(config_class, names[key]))
    try:
        return config_class(**options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"model options rejected by {config_class.__name__}: {exc}") from None


def check_options(config, positive_ints=(), positive_numbers=(), fractions=()) -> None:
    """For a Config's __post_init__: named fields must be whole numbers >= 1, finite numbers > 0, or in [0, 1)."""
    for name in positive_ints:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} = {value!r} must be a whole number, at least 1")
    for name in positive_numbers:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} = {value!r} must be a finite number above 0")
    for name in fractions:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"{name} = {value!r} must be a number from 0 up to (not including) 1")


POW2_SIZES = (16, 32, 64, 128)


def power_of_two_depth(image_size: int, model_name: str, sizes=POW2_SIZES) -> int:
    """Number of stride-2 stages between a 4x4 map and the image (a DCGAN-style tower)."""
    if image_size not in sizes:
        raise UserError(f"{model_name} makes images of {', '.join(map(str, sizes))} pixels, not {image_size}; "
                        f"pass --image-size {min(sizes, key=lambda s: abs(s - image_size))}")
    return int(math.log2(image_size)) - 2
