"""Comparing float results that the hardware computes with rounding that may change from call to call.

CPU kernels (oneDNN, MKL) and GPUs may sum in a different order from one call to the next, so two runs
on the same inputs can differ in the last bits. genforge separates rounding (differences of order 1e-6
of the values' size) from randomness (differences of order 1) with a tolerance scaled to the values.
Bit-exactness is only demanded where genforge itself guarantees it: resuming from a checkpoint on the
same machine.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from genforge.core.errors import UserError

ROUNDING_TOLERANCE = 1e-3  # relative difference above which two results are different, not rounded


def relative_difference(a, b) -> float:
    """max |a - b| over the larger of max |a| and max |b| (0 for two zero tensors; inf on shape or NaN mismatch)."""
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).detach().double()
    b = torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b).detach().double()
    if a.shape != b.shape:
        return math.inf
    if a.numel() == 0:
        return 0.0
    if not torch.equal(torch.isnan(a), torch.isnan(b)):
        return math.inf
    a, b = torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0)
    scale = max(a.abs().max().item(), b.abs().max().item())
    if scale == 0:
        return 0.0
    return (a - b).abs().max().item() / scale


RANGE_TOLERANCE = 1e-3  # images (data, a PyTorch generator's output) may overshoot [-1, 1] by float rounding
OUTPUT_SLACK = 0.05  # exported variants (int8, fp16) may overshoot [-1, 1] by their rounding, not more


def as_array(values) -> np.ndarray:
    return values.detach().float().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def span_outside_range(images, slack: float = RANGE_TOLERANCE) -> tuple[float, float] | None:
    """(min, max) of `images` when they leave the image range [-1, 1] by more than `slack`, else None: the one
    place the range is checked (NaN is the callers' own check)."""
    values = as_array(images)
    low, high = float(values.min(initial=0)), float(values.max(initial=0))
    return (low, high) if low < -1 - slack or high > 1 + slack else None


def check_output_values(images, what: str) -> None:
    """Generated images must be finite and within [-1, 1] (with rounding slack) before anyone uses them."""
    values = as_array(images)
    if not np.isfinite(values).all():
        raise UserError(f"{what} contain NaN or Inf: the weights or file are broken; nothing was written (use an "
                        "earlier checkpoint, or export again)")
    span = span_outside_range(values, OUTPUT_SLACK)
    if span is not None:
        low, high = span
        raise UserError(f"{what} span {low:.3g}..{high:.3g}, not [-1, 1]: the weights or file are broken; nothing "
                        "was written (use an earlier checkpoint, or export again)")


def psnr(reference, test, peak: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB for images in [-1, 1] (peak-to-peak 2)."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(peak**2 / mse)
