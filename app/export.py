"""Export with the quality gate: the exporter (exporters/onnx.py) writes and checks the file against PyTorch;
the gate scores the variant against the fp32 PyTorch generator on the same inputs and refuses it, so nothing
is written, past its tolerance: FD (same noise, same features) past max_fd_increase, or for a restoration
model its paired metric (PSNR, SSIM against the clean images) down by more than PAIRED_GATES allows.
"""

from __future__ import annotations

import torch

from genforge.core.compute import check_threads, decide
from genforge.core.errors import UserError, ValidationFailed
from genforge.core.evaluation.metrics import EvalInput, in_plugin
from genforge.core.evaluation.scoring import frechet_distance_of, restoration_inputs
from genforge.core.inputs import torch_inputs
from genforge.core.model import generate
from genforge.core.precision import REFERENCE
from genforge.core.registry import get_registry
from genforge.core.restore import restores
from genforge.core.runtime.onnx import OnnxRuntime
from genforge.exporters.onnx import ExportReport, export_onnx
from genforge.exporters.precisions import GATE_METRICS, PAIRED_GATES, PRECISIONS


def fd_change(path, loaded, n: int, threads: int | None = None) -> dict:
    """FD of the exported variant and of the fp32 PyTorch generator, same noise, same features."""
    variant = OnnxRuntime(path, "cpu", threads)
    z, labels = variant.prepare_inputs(n=n, seed=2024)
    _, inputs = restoration_inputs(loaded.model, loaded.record["train"], n, seed=2024)  # () for noise-only models
    with torch.no_grad():
        reference_images = generate(loaded.generator, *torch_inputs(z, labels), inputs)
    variant_images = torch.from_numpy(variant.run(z, labels, [t.numpy() for t in inputs]))
    fd_ref = frechet_distance_of(reference_images, loaded.info, loaded.record["train"])
    fd_var = frechet_distance_of(variant_images, loaded.info, loaded.record["train"])
    return {"fd_fp32": fd_ref, "fd_variant": fd_var, "fd_increase": (fd_var - fd_ref) / max(fd_ref, 1e-9), "n": n}


def paired_change(path, loaded, n: int, metric: str, threads: int | None = None) -> dict:
    """A restoration model's paired metric for the variant and the fp32 PyTorch generator, same degraded inputs."""
    variant = OnnxRuntime(path, "cpu", threads)
    z, labels = variant.prepare_inputs(n=n, seed=2024)
    clean, inputs = restoration_inputs(loaded.model, loaded.record["train"], n, seed=2024)
    named = dict(zip((i.name for i in variant.inputs), inputs))
    with torch.no_grad():
        reference_images = generate(loaded.generator, *torch_inputs(z, labels), inputs)
    variant_images = torch.from_numpy(variant.run(z, labels, [t.numpy() for t in inputs]))
    spec = get_registry().get("metrics", metric)
    score = spec.load()
    fp32, value = (in_plugin(spec, score, EvalInput(images, None, None, None, {}, clean, named))[metric]
                   for images in (reference_images, variant_images))
    return {"metric": metric, f"{metric}_fp32": fp32, f"{metric}_variant": value, "drop": fp32 - value, "n": n,
            "summary": f"{metric} {value:.4g} against fp32's {fp32:.4g} ({value - fp32:+.3g})"}


def gate_metric_of(loaded, gate_metric: str | None) -> str:
    """The gate's metric: the one asked for, else the model's primary metric where it has a gate, else FD."""
    metric = gate_metric or getattr(loaded.model, "primary_metric", "fd")
    if gate_metric is None and metric not in GATE_METRICS:
        return "fd"
    if metric not in GATE_METRICS:
        raise UserError(f"unknown gate metric {metric!r}; use {', '.join(GATE_METRICS)}")
    if metric != "fd" and not restores(loaded.model):
        raise UserError(f"--gate-metric {metric} needs a restoration model (image inputs and degrade()); use fd")
    return metric


def quality_gate(precision: str, max_fd_increase: float, n: int, force: bool, gate_metric: str | None = None,
                 threads: int | None = None):
    """The check export_onnx runs on the finished file (its `accept`)."""

    def accept(path, loaded) -> dict:
        metric = gate_metric_of(loaded, gate_metric)
        if metric != "fd":
            quality = paired_change(path, loaded, n, metric, threads)
            quality["ok"] = quality["drop"] <= PAIRED_GATES[metric]
            quality["summary"] += f", gate -{PAIRED_GATES[metric]:g}"
            if not quality["ok"] and not force:
                raise ValidationFailed(f"{precision} lowers {quality['summary']}; nothing written (--force writes "
                                       "it anyway)")
            return quality
        quality = fd_change(path, loaded, n, threads)
        quality["ok"] = quality["fd_increase"] <= max_fd_increase
        quality["summary"] = (f"FD {quality['fd_increase']:+.1%} against fp32 ({quality['fd_variant']:.4g} vs "
                              f"{quality['fd_fp32']:.4g}), gate {max_fd_increase:.0%}")
        if not quality["ok"] and not force:
            raise ValidationFailed(f"{precision} raises FD from {quality['fd_fp32']:.3g} to "
                                   f"{quality['fd_variant']:.3g} (+{quality['fd_increase']:.1%}, gate "
                                   f"{max_fd_increase:.0%}); nothing written (--force writes it anyway)")
        return quality

    return accept


def export_gated(run_dir, out, precision: str = REFERENCE, max_fd_increase: float = 0.10, quality_samples: int = 1000,
                 check_quality: bool = True, force: bool = False, gate_metric: str | None = None,
                 threads: int | None = None, **options) -> ExportReport:
    """export_onnx with the quality gate for the precisions that have one (fp16, int8); `options` are
    export_onnx's (checkpoint, opset, batch, ema, rewrite, target); threads: ONNX Runtime's for every check."""
    if isinstance(quality_samples, bool) or not isinstance(quality_samples, int) or not 10 <= quality_samples <= 10**6:
        raise UserError(f"quality_samples {quality_samples!r} must be a whole number from 10 to 1000000")
    gated = check_quality and precision in PRECISIONS and PRECISIONS[precision].quality_gate
    if gate_metric is not None and gate_metric not in GATE_METRICS:
        raise UserError(f"unknown gate metric {gate_metric!r}; use {', '.join(GATE_METRICS)}")
    threads = check_threads(threads) or decide().threads
    accept = quality_gate(precision, max_fd_increase, quality_samples, force, gate_metric, threads) if gated else None
    return export_onnx(run_dir, out, precision=precision, accept=accept, threads=threads, **options)
