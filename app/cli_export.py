"""`genforge export onnx` and `genforge export tensorrt`.

The exporters import torch and onnx, so they are imported inside the commands (see app/cli.py).
"""

from __future__ import annotations

from pathlib import Path

import click

from genforge.app.params import FiniteRange, OutputFile, sampling_of, sampling_option, threads_option
from genforge.core.errors import UserError
from genforge.core.files import check_distinct_outputs, write_json
from genforge.core.limits import MAX_BATCH, check_batch_text
from genforge.core.precision import REFERENCE
from genforge.exporters.precisions import DEFAULT_OPSET, GATE_METRICS, INT8_TARGETS, OPSETS, PRECISIONS


def refuse_existing(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")


@click.group()
def export():
    """Export a trained generator (ONNX; TensorRT engines build from the ONNX)."""


@export.command("onnx")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--checkpoint", help="latest (default), best, a step number or a folder.")
@click.option("--out", required=True, type=OutputFile("ONNX file", (".onnx",)), help="The .onnx file to write.")
@click.option("--opset", default=DEFAULT_OPSET, show_default=True, type=int,
              help=f"ONNX opset, {OPSETS[0]} to {OPSETS[-1]}.")
@click.option("--batch", default="dynamic", show_default=True, help="'dynamic' or a fixed batch size.")
@click.option("--precision", default=REFERENCE, show_default=True, type=click.Choice(list(PRECISIONS)),
              help="; ".join(f"{p.name}: {p.summary}" for p in PRECISIONS.values()) + ".")
@click.option("--target", default="cpu", show_default=True, type=click.Choice(list(INT8_TARGETS)),
              help="Where an int8 file will run. " + "; ".join(f"{t.name}: {t.summary}" for t in INT8_TARGETS.values())
              + ".")
@click.option("--ema/--no-ema", default=None,
              help="Export the EMA weights (--no-ema: the raw ones). Default: EMA when the checkpoint has it.")
@click.option("--max-fd-increase", default=0.10, show_default=True, type=FiniteRange(-1, 1000),
              help="Quality gate: refuse a variant whose FD exceeds fp32's by more than this fraction.")
@click.option("--gate-metric", type=click.Choice(GATE_METRICS),
              help="What the quality gate compares with fp32: fd (relative increase, --max-fd-increase), or for a "
                   "restoration model psnr/psnr_masked (at most 0.5 dB lower) or ssim/ssim_masked (at most 0.01 "
                   "lower). Default: the model's primary metric (fd; psnr_masked for inpaint).")
@click.option("--quality-samples", default=1000, show_default=True, type=click.IntRange(10, 1_000_000))
@click.option("--force", is_flag=True, help="Write a variant that fails the quality gate anyway.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--rewrite/--no-rewrite", default=None,
              help="Rewrite ConvTranspose exactly into Convs (faster on ONNX Runtime CPU). "
                   "Default: on for fp32 and int8, off for fp16.")
@click.option("--json", "json_out", type=OutputFile("export report"), help="Write the export report as JSON.")
@sampling_option
@threads_option
def export_onnx_command(run_dir, checkpoint, out, opset, batch, precision, target, ema, max_fd_increase,
                        gate_metric, quality_samples, force, overwrite, rewrite, json_out, sampling, threads):
    """Export RUN_DIR's generator to a validated, self-describing ONNX file."""
    from genforge.app.api import export_onnx_file

    refuse_existing(out, overwrite)
    check_distinct_outputs({"--out": out, "--json": json_out}, {"the run directory": run_dir})
    if batch != "dynamic":
        check_batch_text(batch)
    gated = PRECISIONS[precision].quality_gate
    click.echo(f"exporting {precision}: ONNX, checks against PyTorch"
               + (f", then the quality gate on {quality_samples} samples (about a minute on a CPU)" if gated else ""))
    report = export_onnx_file(run_dir, out, precision, target, overwrite=True, checkpoint=checkpoint, opset=opset,
                              batch=batch, ema=ema, force=force, max_fd_increase=max_fd_increase,
                              gate_metric=gate_metric, quality_samples=quality_samples, rewrite=rewrite,
                              sampling=sampling_of(sampling), threads=threads)
    for check in report.checks:
        click.echo(f"batch {check['batch']}: max abs error {check['max_abs_error']:.3g}, "
                   f"PSNR {check['psnr_db']:.1f} dB vs the PyTorch generator")
    if report.quality:
        q = report.quality
        verdict = "passed" if q["ok"] else "FAILED (written because of --force)"
        click.echo(f"{precision}: {q['summary']}: {verdict}")
    if report.float_layers:
        click.echo(f"{precision}: {len(report.float_layers)} nodes kept in float to pass the checks (the first and "
                   "last layers and attention; listed in the metadata's int8_float_layers)")
    click.echo(f"wrote {out} ({precision}, opset {opset}, {report.size_bytes / 1e6:.2f} MB, "
               f"{report.rewritten_layers} layers rewritten)")
    if json_out:
        write_json(json_out, report.as_dict())


@export.command("tensorrt")
@click.argument("onnx_file", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=OutputFile("engine file", (".engine", ".plan")),
              help="The .engine file to write.")
@click.option("--min-batch", default=1, show_default=True, type=int)
@click.option("--opt-batch", default=16, show_default=True, type=int)
@click.option("--max-batch", default=64, show_default=True, type=int)
@click.option("--workspace-gib", default=4.0, show_default=True, type=FiniteRange(0, 1024, min_open=True))
@click.option("--timing-cache", type=click.Path(path_type=Path), help="Reuse and update this timing cache file.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out engine.")
def export_tensorrt_command(onnx_file, out, min_batch, opt_batch, max_batch, workspace_gib, timing_cache, overwrite):
    """Build a TensorRT engine (strongly typed: precision from the ONNX) with a JSON sidecar."""
    from genforge.exporters.tensorrt import build_engine

    refuse_existing(out, overwrite)
    check_distinct_outputs({"--out": out, "--timing-cache": timing_cache}, {"the ONNX file": onnx_file})
    if not 1 <= min_batch <= opt_batch <= max_batch <= MAX_BATCH:
        raise UserError(f"batches must satisfy 1 <= --min-batch <= --opt-batch <= --max-batch <= {MAX_BATCH}")

    sidecar = build_engine(onnx_file, out, min_batch, opt_batch, max_batch, workspace_gib, timing_cache)
    click.echo(f"wrote {out} (TensorRT {sidecar['tensorrt_version']}, {sidecar['gpu']}, "
               f"batch {min_batch}..{max_batch}, {sidecar['precision']})")
