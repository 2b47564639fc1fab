"""The model contract every model plugin follows (built-in or third-party).

A model builds its networks for a DataInfo and its config dataclass, declares its
optimizers, and implements one training step. The trainer hands the step a StepContext
(core/step.py) that owns backward, optimizer steps, autocast and gradient scaling.

`generator()` returns the inference generator: a plain nn.Module taking noise of shape
(N, *latent_shape) (and, for conditional models, int32 class labels of shape (N,)) and
returning float32 NCHW images in [-1, 1]. Noise is always an input, never drawn inside.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import contextmanager

import torch
from torch import nn

from genforge.core.data import DataInfo
from genforge.core.errors import UserError


class GeneratorModel(nn.Module):
    Config: type = None  # a dataclass of the model's options, beside the model in its file
    conditional: bool = False
    latent_shape: tuple[int, ...] = ()

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

    def sample_noise(self, n: int, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
        return torch.randn((n, *self.latent_shape), generator=generator).to(device)


@contextmanager
def eval_mode(module: nn.Module):
    """`module` in eval mode (BatchNorm on its running statistics), its own mode restored after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def make_config(config_class, options: dict | None):
    """Build a model's config dataclass from a dict, refusing unknown keys with a one-line error."""
    options = dict(options or {})
    names = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise UserError(f"unknown model option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    for key, value in options.items():
        default = names[key].default
        if isinstance(default, bool) and isinstance(value, str):
            options[key] = value.lower() in ("1", "true", "yes", "on")
        elif isinstance(default, (int, float)) and not isinstance(default, bool) and isinstance(value, str):
            try:
                options[key] = type(default)(value)
            except ValueError:
                raise UserError(f"model option {key}={value!r} must be a {type(default).__name__}") from None
    return config_class(**options)


def power_of_two_depth(image_size: int, model_name: str, sizes=(16, 32, 64, 128)) -> int:
    """Number of stride-2 stages between a 4x4 map and the image (a DCGAN-style tower)."""
    if image_size not in sizes:
        raise UserError(f"{model_name} makes images of {', '.join(map(str, sizes))} pixels, not {image_size}; "
                        f"pass --image-size {min(sizes, key=lambda s: abs(s - image_size))}")
    return int(math.log2(image_size)) - 2
