"""Paired metrics for restoration models: each restored image against the clean image it was degraded from.

psnr and ssim score the restored images and, as the baseline every restoration must beat, the
damaged input shown as an image (`psnr_input`, `ssim_input`). For a model with a mask input (1 where
known, 0 in the hole), psnr_masked and ssim_masked score the hole alone (with their `_input`
baselines), since the known pixels are copied and would flatter the whole-image figures. PSNR is
averaged over images (peak-to-peak 2 for [-1, 1]); SSIM is torchmetrics' (Gaussian window 11, sigma 1.5).
"""

from __future__ import annotations

import torch

from genforge.core.errors import UserError
from genforge.core.evaluation.metrics import EvalInput
from genforge.core.restore import MASK_NAME, hole_of

MIN_MSE = 1e-10  # a perfect restoration scores 100 dB rather than infinity


def paired(data: EvalInput, masked: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(restored, clean, damaged, hole) from an evaluation of a restoration model."""
    if data.clean is None or not data.inputs:
        raise UserError("psnr and ssim need a restoration model (one that declares image inputs and degrade())")
    if masked and MASK_NAME not in data.inputs:
        raise UserError(f"the masked metrics need a model with a {MASK_NAME!r} input; use psnr or ssim")
    restored, clean = data.images.float(), data.clean.float()
    damaged = data.inputs.get("image", next(iter(data.inputs.values())))
    if damaged.shape != clean.shape:
        damaged = torch.nn.functional.interpolate(damaged, size=clean.shape[-2:], mode="bilinear")
    hole = hole_of(data.inputs)
    return restored, clean, damaged.float().clamp(-1, 1), hole


def psnr_per_image(restored: torch.Tensor, clean: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    squared = (restored - clean) ** 2
    if weight is None:
        mse = squared.flatten(1).mean(1)
    else:
        weight = weight.expand_as(squared)
        mse = (squared * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp(min=1)
    return 10 * torch.log10(4.0 / mse.clamp(min=MIN_MSE))


def metric_psnr(data: EvalInput) -> dict:
    restored, clean, damaged, _ = paired(data)
    return {"psnr": float(psnr_per_image(restored, clean).mean()),
            "psnr_input": float(psnr_per_image(damaged, clean).mean())}


def metric_psnr_masked(data: EvalInput) -> dict:
    restored, clean, damaged, hole = paired(data, masked=True)
    return {"psnr_masked": float(psnr_per_image(restored, clean, hole).mean()),
            "psnr_masked_input": float(psnr_per_image(damaged, clean, hole).mean())}


@torch.no_grad()
def ssim_maps(images: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    from torchmetrics.functional.image import structural_similarity_index_measure  # lazy: ~1 s to import

    _, maps = structural_similarity_index_measure(images, clean, data_range=2.0, return_full_image=True,
                                                  reduction="none")
    return maps


def metric_ssim(data: EvalInput) -> dict:
    restored, clean, damaged, _ = paired(data)
    return {"ssim": float(ssim_maps(restored, clean).mean()), "ssim_input": float(ssim_maps(damaged, clean).mean())}


def metric_ssim_masked(data: EvalInput) -> dict:
    restored, clean, damaged, hole = paired(data, masked=True)
    scores = {}
    for name, images in (("ssim_masked", restored), ("ssim_masked_input", damaged)):
        maps = ssim_maps(images, clean)
        weight = hole.expand_as(maps)
        scores[name] = float(((maps * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp(min=1)).mean())
    return scores
