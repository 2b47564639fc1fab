"""Export with the quality gate: the exporter (exporters/onnx.py) writes and checks the file against PyTorch;
the gate scores the variant against the fp32 PyTorch generator (FD on the same noise and features) and
refuses it past max_fd_increase, so nothing is written.
"""

from __future__ import annotations

import torch

from genforge.core.errors import UserError, ValidationFailed
from genforge.core.evaluation.scoring import frechet_distance_of
from genforge.core.inputs import call_generator, torch_inputs
from genforge.core.runtime.onnx import OnnxRuntime
from genforge.exporters.onnx import ExportReport, export_onnx
from genforge.exporters.precisions import PRECISIONS


def fd_change(path, loaded, n: int) -> dict:
    """FD of the exported variant and of the fp32 PyTorch generator, same noise, same features."""
    variant = OnnxRuntime(path, "cpu")
    z, labels = variant.prepare_inputs(n=n, seed=2024)
    with torch.no_grad():
        reference_images = call_generator(loaded.generator, *torch_inputs(z, labels)).float()
    variant_images = torch.from_numpy(variant.run(z, labels))
    fd_ref = frechet_distance_of(reference_images, loaded.info, loaded.record["train"])
    fd_var = frechet_distance_of(variant_images, loaded.info, loaded.record["train"])
    return {"fd_fp32": fd_ref, "fd_variant": fd_var, "fd_increase": (fd_var - fd_ref) / max(fd_ref, 1e-9), "n": n}


def quality_gate(precision: str, max_fd_increase: float, n: int, force: bool):
    """The check export_onnx runs on the finished file (its `accept`)."""

    def accept(path, loaded) -> dict:
        quality = fd_change(path, loaded, n)
        quality["ok"] = quality["fd_increase"] <= max_fd_increase
        if not quality["ok"] and not force:
            raise ValidationFailed(f"{precision} raises FD from {quality['fd_fp32']:.3g} to "
                                   f"{quality['fd_variant']:.3g} (+{quality['fd_increase']:.1%}, gate "
                                   f"{max_fd_increase:.0%}); nothing written (--force writes it anyway)")
        return quality

    return accept


def export_gated(run_dir, out, precision: str = "fp32", max_fd_increase: float = 0.10, quality_samples: int = 1000,
                 check_quality: bool = True, force: bool = False, **options) -> ExportReport:
    """export_onnx with the quality gate for the precisions that have one (fp16, int8); `options` are
    export_onnx's (checkpoint, opset, batch, ema, rewrite, target)."""
    if isinstance(quality_samples, bool) or not isinstance(quality_samples, int) or not 10 <= quality_samples <= 10**6:
        raise UserError(f"quality_samples {quality_samples!r} must be a whole number from 10 to 1000000")
    gated = check_quality and precision in PRECISIONS and PRECISIONS[precision].quality_gate
    accept = quality_gate(precision, max_fd_increase, quality_samples, force) if gated else None
    return export_onnx(run_dir, out, precision=precision, accept=accept, **options)
