"""The plugin contract, checked where a plugin is built.

`build_model` and `open_dataset` are the only ways genforge makes a model or opens a dataset
from a plugin. Each checks what the plugin gave against its contract (models: core/model.py;
datasets: core/data.py) on a tiny batch, before anything is written, and a plugin that breaks
it fails with one line naming the plugin, the method and what to change (ContractError,
exit 2). The checks cost one generator call on two samples (the trainer adds one training step on a copy
of the model: core/training/step.py).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from genforge.core.data import DataInfo, ImageTensorDataset, batch_of, check_image_size
from genforge.core.errors import ContractError, UserError
from genforge.core.inputs import call_generator, label_problem, signature_of, torch_inputs
from genforge.core.limits import check_channels
from genforge.core.model import GeneratorModel, capabilities, eval_mode, make_config
from genforge.core.numerics import ROUNDING_TOLERANCE, relative_difference, span_outside_range
from genforge.core.registry import Registry, get_registry
from genforge.core.restore import check_declared_inputs, degraded_inputs, example_clean
from genforge.core.runs.config import TrainConfig
from genforge.core.specs import DatasetSpec, ModelSpec

ITEMS_CHECKED = 8  # dataset items read to check them against their DataInfo
PROBE_IMAGES = 4  # images in the training-step probe
PROBABLY_UNIT_RANGE = 0.25  # outputs all >= 0 with at least this mean: a Sigmoid, [0, 1] images (untrained Tanh
#                             generators sit near 0 and may be all positive by chance: the built-in VAE is)


def plugin_error(spec, message: str) -> ContractError:
    """The one-line error for a plugin that breaks the contract (whitespace of quoted errors folded)."""
    message = " ".join(message.split())
    return ContractError(f"{spec.kind} plugin {spec.name!r} ({spec.plugin or 'unregistered'}): {message}")


# -- models ----------------------------------------------------------------------------------------
def with_batch_size(config: TrainConfig) -> TrainConfig:
    """`config` with its global batch settled: --batch-size if given, else the model's
    GeneratorModel.batch_size_by_default."""
    if config.batch_size is not None:
        return config
    spec = get_registry().model(config.model)
    model_class = spec.load()
    check_model_class(spec, model_class)
    return dataclasses.replace(config, batch_size=model_class.batch_size_by_default)


def build_model(model: str | ModelSpec, info: DataInfo, options: dict | None, probe: tuple | None = None
                ) -> GeneratorModel:
    """The model plugin `model` (its name or its spec) built for `info`, checked against the contract.

    probe: (images, labels) from the dataset: a restoration model's degrade() is checked on its images
    (the trainer then runs one training step on them: core/training/step.py check_training_step).
    """
    spec = model if isinstance(model, ModelSpec) else get_registry().model(model)
    model_class = spec.load()
    check_model_class(spec, model_class)
    check_model_fits_data(spec, model_class, info)
    try:
        model = model_class(info, make_config(model_class.Config, options))
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001  the plugin's constructor is the plugin's
        raise plugin_error(spec, f"__init__(info, config) raised {type(exc).__name__}: {exc}") from None
    check_model(spec, model, info, probe)
    return model


def check_model_class(spec: ModelSpec, model_class) -> None:
    """The class side of the contract, and the spec's claims against the class."""
    if not (isinstance(model_class, type) and issubclass(model_class, GeneratorModel)):
        raise plugin_error(spec, f"{spec.impl} is {model_class!r}, not a GeneratorModel subclass; "
                                 "subclass genforge.core.model.GeneratorModel")
    if not dataclasses.is_dataclass(model_class.Config):
        raise plugin_error(spec, f"{model_class.__name__}.Config is {model_class.Config!r}, not a dataclass; "
                                 "add `Config = MyConfig` where MyConfig is a @dataclass of the model's options")
    for method in ("optimizers", "training_step", "generator"):
        if getattr(model_class, method) is getattr(GeneratorModel, method):
            raise plugin_error(spec, f"{model_class.__name__} does not implement {method}(); "
                                     "see the model contract in genforge/core/model.py")
    for flag in ("conditional", "ema_by_default", "augments", "bf16_by_default"):
        if not isinstance(getattr(model_class, flag), bool):
            raise plugin_error(spec, f"{model_class.__name__}.{flag} is {getattr(model_class, flag)!r}; "
                                     "set it to True or False")
    batch = model_class.batch_size_by_default
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise plugin_error(spec, f"{model_class.__name__}.batch_size_by_default is {batch!r}; "
                                 "set it to a whole number, 1 or more (or leave it out: 64)")
    sizes = model_class.image_sizes
    if sizes is not None and not (isinstance(sizes, tuple) and sizes and all(isinstance(s, int) for s in sizes)):
        raise plugin_error(spec, f"{model_class.__name__}.image_sizes is {sizes!r}; "
                                 "use a tuple of ints such as (32, 64), or None for any size")
    claims = {"conditional": model_class.conditional, "needs_labels": model_class.conditional,
              "image_sizes": sizes}
    for field, truth in claims.items():
        claim = getattr(spec, field)
        if claim is not None and (tuple(claim) if field == "image_sizes" else claim) != truth:
            raise plugin_error(spec, f"its ModelSpec says {field}={claim!r} but {model_class.__name__} says "
                                     f"{truth!r}; the class is the one source: fix the class or drop "
                                     f"{field} from the ModelSpec")
    if spec.family not in (None, "gan", "vae"):
        raise plugin_error(spec, f"ModelSpec family={spec.family!r} is unknown; drop it (capabilities come "
                                 "from the class)")
    if spec.family == "vae" and "elbo" not in capabilities(model_class):
        raise plugin_error(spec, f"its ModelSpec says family='vae' but {model_class.__name__} has no "
                                 "negative_elbo(images, noise); add it or drop family from the ModelSpec")


def check_model_fits_data(spec: ModelSpec, model_class, info: DataInfo) -> None:
    """What the user chose (dataset, image size) against what the model can make."""
    if model_class.conditional and not info.labelled:
        raise UserError(f"{spec.name} needs a labelled dataset (it is conditional), and {info.name} has no labels; "
                        "use an unconditional model or give the images class subfolders")
    sizes = model_class.image_sizes
    if sizes and (info.height not in sizes or info.width != info.height):
        nearest = min(sizes, key=lambda s: abs(s - info.height))
        raise UserError(f"{spec.name} makes images of {', '.join(map(str, sizes))} pixels, not "
                        f"{info.height}x{info.width}; pass --image-size {nearest}")


def check_model(spec: ModelSpec, model: GeneratorModel, info: DataInfo, probe: tuple | None = None) -> None:
    """The instance side: latent shape, the generator's output, a restoration model's inputs."""
    shape = model.latent_shape
    if not (isinstance(shape, (tuple, list)) and shape and all(isinstance(d, int) and d > 0 for d in shape)):
        raise plugin_error(spec, f"latent_shape is {shape!r}; set self.latent_shape in __init__ to the shape of "
                                 "one noise sample, e.g. (latent_dim, 1, 1)")
    generator = generator_of(spec, model)
    z, labels = torch_inputs(*signature_of(model).inputs(n=2, seed=0))
    inputs = check_restoration(spec, model, probe[0][:2] if probe is not None else None)
    images = run_generator(spec, generator, z, labels, inputs)
    check_generator_output(spec, images, info, "generator() output")
    if float(images.min()) >= 0 and float(images.mean()) >= PROBABLY_UNIT_RANGE:
        raise plugin_error(spec, f"generator() output never goes below 0 on {len(images)} samples "
                                 f"({float(images.min()):.3g}..{float(images.max()):.3g}, mean "
                                 f"{float(images.mean()):.2g}); it probably makes images in "
                                 "[0, 1], and genforge's images are in [-1, 1]: return images * 2 - 1, or end with "
                                 "Tanh instead of Sigmoid")
    difference = relative_difference(images, run_generator(spec, generator, z, labels, inputs))
    if difference > ROUNDING_TOLERANCE:
        raise plugin_error(spec, f"generator() gives different images for the same noise (they differ by "
                                 f"{difference:.2g} of their range, rounding allows {ROUNDING_TOLERANCE:g}); noise "
                                 "must be an input, never drawn inside forward() (no torch.randn or dropout in the "
                                 "generator)")


def generator_of(spec: ModelSpec, model: GeneratorModel) -> nn.Module:
    try:
        generator = model.generator()
    except Exception as exc:  # noqa: BLE001
        raise plugin_error(spec, f"generator() raised {type(exc).__name__}: {exc}; return the inference "
                                 "nn.Module") from None
    if not isinstance(generator, nn.Module):
        raise plugin_error(spec, f"generator() returned {type(generator).__name__}; return an nn.Module")
    return generator


def check_restoration(spec: ModelSpec, model: GeneratorModel, clean: torch.Tensor | None) -> tuple:
    """A restoration model's declared inputs and its degrade() on two clean images (the probe's, else ramps):
    the image inputs to check the generator with; () for a noise-only model."""
    has_inputs, has_degrade = bool(model.inputs), callable(getattr(model, "degrade", None))
    if has_inputs != has_degrade:
        fix = "add degrade(clean, seed)" if has_inputs else "set self.inputs to its ImageInputs in __init__"
        raise plugin_error(spec, f"{type(model).__name__} has {'inputs' if has_inputs else 'degrade()'} but not "
                                 f"{'degrade()' if has_inputs else 'inputs'}; {fix} (see core/model.py)")
    if not has_inputs:
        return ()
    try:
        check_declared_inputs(model.inputs, type(model).__name__)
        return degraded_inputs(model, clean if clean is not None else example_clean(model, 2), seed=0)
    except ContractError as exc:
        raise plugin_error(spec, str(exc)) from None


@torch.no_grad()
def run_generator(spec, generator: nn.Module, z: torch.Tensor, labels: torch.Tensor | None, images=()
                  ) -> torch.Tensor:
    try:
        with eval_mode(generator):
            images = call_generator(generator, z, labels, images)
    except Exception as exc:  # noqa: BLE001
        if labels is not None:
            raise plugin_error(spec, f"generator()(z, labels) failed on noise {tuple(z.shape)} and int32 labels: "
                                     f"{type(exc).__name__}: {str(exc).splitlines()[0]}; labels arrive as int32 "
                                     "(call labels.long() before nn.Embedding or one_hot)") from None
        raise plugin_error(spec, f"generator()(z) failed on noise of shape {tuple(z.shape)}: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    if not isinstance(images, torch.Tensor):
        raise plugin_error(spec, f"the generator returned {type(images).__name__}; return a tensor of images")
    return images


def check_generator_output(spec, images: torch.Tensor, info: DataInfo, what: str) -> None:
    """float32 (N, C, H, W) for the dataset, finite, in [-1, 1]."""
    expected = (info.channels, info.height, info.width)
    if tuple(images.shape[1:]) != expected or images.ndim != 4:
        if images.ndim == 4 and images.shape[1] != info.channels:
            fix = f"make the last layer output {info.channels} channel(s)"
        else:
            fix = f"make it output {info.height}x{info.width} images"
        raise plugin_error(spec, f"{what} has shape {tuple(images.shape)}; expected "
                                 f"(N, {', '.join(map(str, expected))}) for {info.name} at "
                                 f"{info.height}x{info.width}: {fix}")
    if images.dtype != torch.float32:
        raise plugin_error(spec, f"{what} is {images.dtype}; return float32 images (call .float())")
    if not bool(torch.isfinite(images).all()):
        raise plugin_error(spec, f"{what} holds NaN or Inf values")
    span = span_outside_range(images)
    if span is not None:
        low, high = span
        raise plugin_error(spec, f"{what} spans {low:.3g}..{high:.3g}, outside [-1, 1]; end the generator with "
                                 "Tanh (or clamp to [-1, 1])")


def probe_batch(dataset, n: int = PROBE_IMAGES) -> tuple[torch.Tensor, torch.Tensor]:
    """The first few images and int64 labels of a dataset, as training_step receives them."""
    return batch_of(dataset, torch.arange(min(n, len(dataset))))


def check_implementations(registry: Registry) -> None:
    """Import every registered implementation (model classes checked too); problems go to their plugins."""
    for spec in registry.all_specs():
        try:
            implementation = spec.load()
            if isinstance(spec, ModelSpec):
                check_model_class(spec, implementation)
        except UserError as exc:
            registry.record_problem(spec, exc.message)


# -- datasets --------------------------------------------------------------------------------------
def open_dataset(name: str, split: str = "train", image_size: int = 32, channels: int | None = None,
                 data_dir=None, download: bool = False, seed: int = 0):
    """Look a dataset plugin up by name, load one split, check it against its DataInfo."""
    spec = get_registry().dataset(name)
    check_image_size(image_size)
    check_channels(channels)
    load = spec.load()
    try:
        result = load(split=split, image_size=image_size, channels=channels, data_dir=data_dir,
                      download=download, seed=seed)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise plugin_error(spec, f"load(split={split!r}, ...) raised {type(exc).__name__}: {exc}") from None
    return check_dataset(spec, result, image_size, channels)


def run_test_split(train: dict):
    """A run's test split (its config.json "train" record), opened."""
    return open_dataset(train["dataset"], "test", train["image_size"], train.get("channels"), train.get("data_dir"))[0]


def cycled_images(dataset, n: int, start: int = 0) -> torch.Tensor:
    """n clean images of `dataset` from `start`, cycling through it: what a restoration model's checks degrade."""
    return batch_of(dataset, (start + torch.arange(n)) % len(dataset))[0]


def run_test_images(train: dict, n: int, start: int = 0) -> torch.Tensor:
    return cycled_images(run_test_split(train), n, start)


def check_dataset(spec: DatasetSpec, result, image_size: int, channels: int | None):
    """(dataset, DataInfo) whose items match the DataInfo: shape, range, labels."""
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], DataInfo)):
        raise plugin_error(spec, f"load() returned {type(result).__name__}; return (dataset, DataInfo(...)) "
                                 "(see genforge/core/data.py)")
    dataset, info = result
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise plugin_error(spec, f"load() returned a {type(dataset).__name__} as the dataset; return a "
                                 "torch.utils.data.Dataset with __len__ and __getitem__")
    if len(dataset) == 0:
        raise plugin_error(spec, "the dataset holds no images")
    if info.name != spec.name:
        raise plugin_error(spec, f"DataInfo name is {info.name!r}, not the registered name {spec.name!r}; exports "
                                 "record this name to find the dataset again: use the registered name")
    if (info.height, info.width) != (image_size, image_size):
        raise plugin_error(spec, f"DataInfo says {info.height}x{info.width} images but {image_size}x{image_size} "
                                 "were asked for; resize to image_size")
    if channels is not None and info.channels != channels:
        raise plugin_error(spec, f"DataInfo says {info.channels} channel(s) but {channels} were asked for; "
                                 "convert with genforge.core.data.convert_channels")
    if info.num_classes is not None and (not isinstance(info.num_classes, int) or info.num_classes < 1):
        raise plugin_error(spec, f"DataInfo num_classes is {info.num_classes!r}; use a positive int, or None "
                                 "for unlabelled data")
    if info.class_names is not None and info.num_classes and len(info.class_names) != info.num_classes:
        raise plugin_error(spec, f"DataInfo has {len(info.class_names)} class_names for {info.num_classes} classes")
    indices = torch.linspace(0, len(dataset) - 1, min(ITEMS_CHECKED, len(dataset))).long().unique().tolist()
    for index in indices:
        check_item(spec, dataset, index, info)
    if isinstance(dataset, ImageTensorDataset):
        check_labels(spec, dataset.labels, info)
    return dataset, info


def check_item(spec, dataset, index: int, info: DataInfo) -> None:
    item = dataset[index]
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise plugin_error(spec, f"dataset[{index}] is {type(item).__name__}; items must be (image, label) pairs")
    image, label = item
    expected = (info.channels, info.height, info.width)
    if not isinstance(image, torch.Tensor) or tuple(image.shape) != expected or not image.is_floating_point():
        got = f"{tuple(image.shape)} {image.dtype}" if isinstance(image, torch.Tensor) else type(image).__name__
        raise plugin_error(spec, f"dataset[{index}] image is {got}; the DataInfo says float "
                                 f"({', '.join(map(str, expected))})")
    if not bool(torch.isfinite(image).all()) or span_outside_range(image) is not None:
        low, high = float(image.min()), float(image.max())
        raise plugin_error(spec, f"dataset[{index}] image spans {low:.3g}..{high:.3g}; images must be in [-1, 1] "
                                 "(uint8 x: x / 127.5 - 1)")
    check_labels(spec, torch.as_tensor([int(label)]), info, f"dataset[{index}] label {int(label)}")


def check_labels(spec, labels: torch.Tensor, info: DataInfo, what: str = "labels") -> None:
    problem = label_problem(labels, info.num_classes if info.labelled else None)
    if problem:
        raise plugin_error(spec, f"{what} {problem} (the DataInfo has {info.num_classes or 'no'} classes)")
