"""Restoration models: generators that take images (core/inputs.py ImageInput: an image to restore, a mask, ...)
and are judged against the clean image they came from.

A restoration model declares its image inputs (`inputs`) and how a clean image becomes them
(`degrade(clean, seed) -> {name: tensor}`, see core/model.py). This module is the one place that
calls `degrade` and checks what it returns, so that every tool feeds degraded real images, never
noise in place of an image: the build check, training grids (damaged | restored | clean),
evaluation's paired metrics, the export's parity check and int8 calibration.

Masks are 1 where the pixel is known and 0 where it is to be filled.
"""

from __future__ import annotations

import numpy as np
import torch

from genforge.core.errors import ContractError, GenforgeError
from genforge.core.inputs import RESERVED_INPUT_NAMES, ImageInput, shape_text

MASK_NAME = "mask"


def restores(model) -> bool:
    return bool(getattr(model, "inputs", ()))


def check_declared_inputs(inputs, where: str) -> None:
    """A model's `inputs`: a tuple of ImageInput with distinct names that are not z, labels or step."""
    if not isinstance(inputs, tuple) or not all(isinstance(i, ImageInput) for i in inputs):
        raise ContractError(f"{where}: inputs is {inputs!r}; set it to a tuple of genforge.ImageInput(name, "
                            "(C, H, W), meaning)")
    names = [i.name for i in inputs]
    bad = [n for n in names if not n.isidentifier() or n in RESERVED_INPUT_NAMES]
    if bad or len(set(names)) != len(names):
        raise ContractError(f"{where}: input names {names} must be distinct identifiers other than "
                            f"{', '.join(RESERVED_INPUT_NAMES)}")
    for spec in inputs:
        shape = spec.shape
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape)):
            raise ContractError(f"{where}: input {spec.name!r} has shape {shape!r}; use (C, H, W) positive ints")


def degraded_inputs(model, clean: torch.Tensor, seed: int) -> tuple[torch.Tensor, ...]:
    """The model's image inputs made from `clean` images by its degrade(clean, seed), checked, in call order."""
    name = type(model).__name__
    try:
        made = model.degrade(clean, seed)
    except GenforgeError:
        raise
    except Exception as exc:  # noqa: BLE001  the plugin's degradation is the plugin's
        raise ContractError(f"{name}.degrade(clean, seed) raised {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None
    if not isinstance(made, dict):
        raise ContractError(f"{name}.degrade(clean, seed) returned {type(made).__name__}; return a dict of "
                            f"its inputs by name ({', '.join(i.name for i in model.inputs)})")
    found = []
    for spec in model.inputs:
        value = made.get(spec.name)
        expected = (len(clean), *spec.shape)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != expected:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ContractError(f"{name}.degrade(clean, seed)[{spec.name!r}] is {got}; return a float tensor of "
                                f"shape {shape_text(spec.shape)} for each input")
        if not bool(torch.isfinite(value).all()):
            raise ContractError(f"{name}.degrade(clean, seed)[{spec.name!r}] holds NaN or Inf values")
        found.append(value.float())
    return tuple(found)


def example_clean(model, n: int) -> torch.Tensor:
    """Clean stand-in images (smooth ramps in [-1, 1]) for checks that need only shapes, where no data is at hand."""
    info = model.info
    ramp = torch.linspace(-1, 1, info.width).expand(info.height, info.width)
    return torch.stack([(ramp * (1 - 0.3 * i / max(n, 1))).expand(info.channels, -1, -1) for i in range(n)])


def hole_of(inputs: dict) -> torch.Tensor | None:
    """The pixels to fill (1 there, 0 where known) from a mask input, or None for a model without one."""
    mask = inputs.get(MASK_NAME)
    return None if mask is None else (mask < 0.5).float()


def numpy_inputs(inputs: tuple[torch.Tensor, ...]) -> tuple[np.ndarray, ...]:
    return tuple(t.detach().cpu().float().numpy() for t in inputs)



@torch.no_grad()
def restore(model, generator, clean: torch.Tensor, seed: int, z: torch.Tensor, labels=None) -> tuple:
    """(inputs, restored): the model's inputs degraded from `clean` and the generator's output on them."""
    from genforge.core.model import generate  # lazy: core/model.py imports this module's neighbours

    inputs = tuple(t.to(clean.device) for t in degraded_inputs(model, clean, seed))
    return inputs, generate(generator, z, labels, inputs)


def damaged_view(model, inputs: tuple[torch.Tensor, ...], like: torch.Tensor) -> torch.Tensor:
    """What to show as the damaged image: the first input shaped like the clean images (resized to them)."""
    for spec, value in zip(model.inputs, inputs):
        if spec.shape[0] == like.shape[1]:
            if value.shape[-2:] != like.shape[-2:]:
                value = torch.nn.functional.interpolate(value, size=like.shape[-2:], mode="nearest")
            return value.clamp(-1, 1)
    return torch.zeros_like(like)


def comparison_grid(model, inputs, restored: torch.Tensor, clean: torch.Tensor):
    """(images, nrow, captions) for a grid of damaged | restored | clean rows, one column per image."""
    rows = [damaged_view(model, inputs, clean), restored.to(clean.device), clean]
    captions = [kind for kind in ("damaged", "restored", "clean") for _ in range(len(clean))]
    return torch.cat(rows), len(clean), captions
