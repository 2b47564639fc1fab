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


def same_up_to_rounding(a, b, tolerance: float = ROUNDING_TOLERANCE) -> bool:
    return relative_difference(a, b) <= tolerance
