"""Export a run's generator to ONNX (fp32, fp16, int8), self-describing and validated.

    genforge export onnx RUN_DIR --out model.onnx [--precision fp32|fp16|int8]

* One self-contained file (weights inside), opset 18 by default, a dynamic batch axis,
  exported from an example batch of 2 with the dynamo exporter. Inputs: "z" float32
  (N, *latent_shape) and, for conditional models, "labels" int32 (N,). Output: "images"
  float32 (N, C, H, W) in [-1, 1].
* fp16: the graph converted to float16 with float32 inputs and outputs kept
  (onnxruntime.transformers.float16); Tanh and the output stay float32.
* int8: static Q/DQ quantization (onnxruntime.quantization), per-channel int8 weights,
  uint8 activations, calibrated on the generator's own inputs (N(0, 1) noise, uniform
  labels).
* fp32 and int8 graphs are built from an exact rewrite of the generator (exporters/rewrite.py):
  each stride-2 ConvTranspose with 8+ output channels becomes four 2x2 Convs whose output
  phases are interleaved, the latent 1x1 -> kxk ConvTranspose a Gemm, BatchNorm folded in.
  ONNX Runtime's CPU provider has no int8 ConvTranspose and runs these Convs faster in fp32
  too (its NCHWc kernels). fp16
  (meant for GPUs) keeps ConvTranspose; `rewrite=False` (`--no-rewrite`) keeps it everywhere.
  The metadata's "rewrite" says which was done.
* Every export is checked: onnx.checker (full), then ONNX Runtime CPU against the PyTorch
  generator at two batch sizes (max abs error, PSNR on the [-1, 1] range). A miss fails with
  exit 1 and leaves no file. Quality (FD) is the application's gate (app/export.py), handed in
  as `accept`: exporters import no metric.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch.export import Dim

from genforge import __version__
from genforge.core.compute import check_threads, decide
from genforge.core.contract import check_generator_output
from genforge.core.errors import UserError, ValidationFailed
from genforge.core.feeds import GeneratorFeeds
from genforge.core.files import atomic_path
from genforge.core.flops import count_macs
from genforge.core.folders import remove_dead_temporaries, run_lock
from genforge.core.inputs import signature_of
from genforge.core.numerics import psnr
from genforge.core.precision import REFERENCE
from genforge.core.runs.run_dir import load_run
from genforge.exporters.precisions import DEFAULT_OPSET, INT8_TARGETS, OPSETS, PRECISIONS
from genforge.exporters.qdq import tensorrt_qdq_problems
from genforge.exporters.rewrite import max_difference, rewrite_generator
from genforge.exporters.unroll import STEP_INPUT, is_iterative, repeat_step, step_constants, step_module

CHECK_BATCHES = (2, 7)
METADATA_VERSION = "1"
# compute in int8, and keep data movement between them in uint8 (4x less memory traffic)


@dataclass
class ExportReport:
    path: str
    precision: str
    opset: int
    rewritten_layers: int
    checks: list[dict] = field(default_factory=list)
    quality: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    float_layers: list[str] = field(default_factory=list)  # int8 nodes left in float to pass the checks
    size_bytes: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class ExportWrapper(torch.nn.Module):
    """The generator with a float32 output, called with its inputs in call order (z, labels, image inputs)."""

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, *inputs):
        return self.generator(*inputs).float()


def build_metadata(loaded, precision: str, opset: int, batch) -> dict:
    info = loaded.info
    return {
        "genforge_metadata_version": METADATA_VERSION,
        "genforge_version": __version__,
        "model": loaded.model_name,
        "plugin": loaded.spec.plugin,
        "latent_shape": json.dumps(list(loaded.model.latent_shape)),
        "inputs": json.dumps([i.as_dict() for i in signature_of(loaded.model).images]),
        "num_classes": str(info.num_classes if loaded.model.conditional else 0),
        "class_names": json.dumps(list(info.class_names) if loaded.model.conditional and info.class_names else []),
        "label_dtype": "int32" if loaded.model.conditional else "",
        "image_shape": json.dumps([info.channels, info.height, info.width]),
        "output_range": "[-1, 1]",
        "precision": precision,
        "opset": str(opset),
        "batch": str(batch),
        "training_step": str(loaded.step),
        "run_id": loaded.record.get("run_id", ""),
        "dataset": info.name,
        "ema": "1" if loaded.ema else "0",
        "macs_per_image": str(_macs(loaded)),
        "sampling": json.dumps({name: getattr(loaded.model.config, name)
                                for name in getattr(loaded.model, "sampling_options", ())}),
        "model_options": json.dumps(dataclasses.asdict(loaded.model.config)),
    }


def _macs(loaded) -> int:

    return count_macs(loaded.generator, GeneratorFeeds.of_run(loaded).tensors(1))


def export_fp32(module: torch.nn.Module, inputs: tuple, names: list[str], path: Path, opset: int, batch) -> None:
    """The wrapped generator as an fp32 ONNX file; an iterative one as one step repeated (exporters/unroll.py)."""
    generator = module.generator
    if not is_iterative(generator):
        trace_to_onnx(module, inputs, names, path, opset, batch)
        return
    if set(names) - {"z", "labels"}:
        raise UserError("an iterative sampler that takes image inputs cannot be exported yet; export a model "
                        "without image inputs, or a one-pass restoration model")
    schedule = step_constants(generator)
    step_file = path.with_name(f"step-{path.name}")
    step_inputs = (*inputs, torch.from_numpy(schedule[0]))
    names = ["z", "labels"][: len(inputs)] + [STEP_INPUT]
    trace_to_onnx(step_module(generator, len(inputs) == 2), step_inputs, names, step_file, opset, batch)
    repeat_step(step_file, path, schedule)
    step_file.unlink()


def trace_to_onnx(module: torch.nn.Module, inputs: tuple, names: list[str], path: Path, opset: int, batch) -> None:
    dynamic = None
    if batch == "dynamic":
        n = Dim("batch", min=1, max=4096)
        dynamic = tuple(None if name == STEP_INPUT else {0: n} for name in names)
        if any(p.kind is p.VAR_POSITIONAL for p in inspect.signature(module.forward).parameters.values()):
            dynamic = (dynamic,)  # ExportWrapper.forward(*inputs): one argument holding them all

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, inputs, dynamo=True, input_names=names, output_names=["images"],
                                    dynamic_shapes=dynamic, opset_version=opset, external_data=False,
                                    optimize=True, verbose=False)
    program.save(str(path), external_data=False)
    written = {o.domain: o.version for o in onnx.load(str(path), load_external_data=False).opset_import}.get("")
    if written != opset:
        raise ValidationFailed(f"the exporter wrote opset {written}, not the {opset} asked for; use opset {written}")


def write_metadata(path: Path, metadata: dict) -> None:

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    model.producer_name, model.producer_version = "genforge", __version__
    onnx.save(model, str(path))


def check_against_torch(path: Path, reference: torch.nn.Module, feeds: GeneratorFeeds, precision: str,
                        batches=CHECK_BATCHES, threads: int | None = None):
    import onnxruntime as ort  # lazy: onnxruntime is an extra (cpu or gpu build)

    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path)).graph
    for node in graph.node:
        if node.op_type == "BatchNormalization" and any(a.name == "training_mode" and a.i == 1 for a in node.attribute):
            raise ValidationFailed(f"{path.name}: BatchNormalization exported in training mode")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or decide().threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    policy = PRECISIONS[precision]
    checks = []
    for batch in batches:
        feed = feeds.feed(batch, seed=100 + batch)
        with torch.no_grad():
            expected = reference(*(torch.from_numpy(a) for a in feed.values())).numpy()
        got = session.run(["images"], feed)[0]
        if got.shape != expected.shape or got.dtype != np.float32:
            raise ValidationFailed(f"{path.name}: output {got.shape} {got.dtype}, expected {expected.shape} float32")
        check = {"batch": batch, "max_abs_error": float(np.abs(got - expected).max()), "psnr_db": psnr(expected, got)}
        check["ok"] = check["psnr_db"] >= policy.min_psnr_db and check["max_abs_error"] <= policy.max_abs_error
        checks.append(check)
    return checks


def export_onnx(run_dir, out, checkpoint=None, opset: int = DEFAULT_OPSET, batch="dynamic", precision: str = REFERENCE,
                ema: bool | None = None, rewrite: bool | None = None, target: str = "cpu",
                accept=None, sampling: dict | None = None, threads: int | None = None) -> ExportReport:
    """Export, check and (only if every check passes) write `out` atomically.

    sampling: new values for the model's sampling options (core/model.py), recorded in the metadata.
    threads: ONNX Runtime's count for the checks (None: the free cores; core/compute.py).
    accept: an optional further check, called as accept(path, loaded) on the finished file before it is
    written (the application's quality gate); what it returns is kept as report.quality, and it raises
    ValidationFailed to refuse the file.
    """
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
    if target not in INT8_TARGETS:
        raise UserError(f"unknown int8 target {target!r}; use {', '.join(INT8_TARGETS)}")
    if batch != "dynamic":
        try:
            batch = int(batch)
        except ValueError:
            raise UserError(f"--batch must be 'dynamic' or a number, not {batch!r}") from None
        if batch < 1:
            raise UserError("--batch must be at least 1")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise UserError(f"opset {opset} is not supported; use {OPSETS[0]} to {OPSETS[-1]} ({DEFAULT_OPSET} is the "
                        "default)")
    threads = check_threads(threads) or decide().threads
    out = Path(out)
    if out.suffix != ".onnx":
        raise UserError(f"--out must end in .onnx, not {out.name!r}")
    with run_lock(run_dir, "export it", read_only_ok=True):
        loaded = load_run(run_dir, checkpoint, ema=ema, sampling=sampling)
    return _export(loaded, out, opset, batch, precision, rewrite, target, accept, threads)


def _export(loaded, out: Path, opset, batch, precision, rewrite, target, accept, threads) -> ExportReport:
    policy = PRECISIONS[precision]
    feeds = GeneratorFeeds.of_run(loaded)
    reference = ExportWrapper(loaded.generator).eval()
    check_trained_output(loaded, reference, feeds)
    module, rewritten = reference, 0
    if rewrite is None:
        rewrite = policy.rewrite
    if rewrite:
        example = feeds.tensors(4, seed=7)
        rewritten_generator, rewritten = rewrite_generator(loaded.generator, example,
                                                           interleave=policy.interleave)
        module = ExportWrapper(rewritten_generator).eval()
        difference = max_difference(reference, module, example)
        if difference > 1e-4:
            raise ValidationFailed(f"the exact ConvTranspose rewrite differs by {difference:.2e}; export refused")
    metadata = build_metadata(loaded, precision, opset, batch)
    if policy.has_targets:
        metadata["int8_target"] = target
    metadata["rewrite"] = f"{rewritten} ConvTranspose layers" if rewritten else "none"
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(out.parent, TEMPORARY_PREFIX)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f"{TEMPORARY_PREFIX}{os.getpid()}-") as tmp:
        tmp = Path(tmp)
        fp32_path = tmp / "fp32.onnx"
        export_inputs = feeds.tensors(2 if batch == "dynamic" else batch)
        export_fp32(module, export_inputs, feeds.signature.input_names, fp32_path, opset, batch)
        attempts = (False, True) if policy.float_retry else (False,)
        for keep_float in attempts:
            try:
                final, report = _variant(fp32_path, tmp, loaded, reference, feeds, precision, target,
                                         keep_float, accept, batch, threads, ExportReport(str(out), precision, opset,
                                                                                          rewritten, metadata=metadata))
                break
            except ValidationFailed:
                if keep_float or len(attempts) == 1:
                    raise
        with atomic_path(out) as destination:
            os.replace(final, destination)
    report.size_bytes = out.stat().st_size
    return report


def _variant(fp32_path: Path, tmp: Path, loaded, reference, feeds, precision: str, target: str,
             keep_float: bool, accept, batch, threads: int, report: ExportReport) -> tuple[Path, ExportReport]:
    """The precision's file made from the fp32 one, checked against PyTorch and by `accept`; keep_float: int8
    with the layers that take it worst (first, last, attention) left in float, named in the report."""
    policy, final = PRECISIONS[precision], fp32_path
    if policy.convert:
        final = tmp / "final.onnx"
        kept = policy.converter()(fp32_path, final, feeds, target, keep_float=keep_float)
        if kept:
            report.float_layers = kept
            report.metadata = {**report.metadata, "int8_float_layers": json.dumps(kept)}
    problems = tensorrt_qdq_problems(onnx.load(str(final))) if policy.has_targets and target == "tensorrt" else []
    if problems:
        raise ValidationFailed(f"the int8 file for TensorRT breaks its Q/DQ rules ({problems[0]}; "
                               f"{len(problems)} in all); nothing written")
    write_metadata(final, report.metadata)
    report.checks = check_against_torch(final, reference, feeds, precision,
                                        CHECK_BATCHES if batch == "dynamic" else (batch,), threads)
    failed = [c for c in report.checks if not c["ok"]]
    if failed:
        c = failed[0]
        raise ValidationFailed(f"{precision} export missed its tolerance at batch {c['batch']}: PSNR "
                               f"{c['psnr_db']:.1f} dB (min {policy.min_psnr_db}), max abs error "
                               f"{c['max_abs_error']:.3g} (max {policy.max_abs_error}); nothing written")
    if accept is not None:
        report.quality = accept(final, loaded)
    return final, report


CHECKED_SAMPLES = 64
TEMPORARY_PREFIX = ".genforge-export-"  # + pid: folders of killed exports are removed by the next export


def check_trained_output(loaded, reference: torch.nn.Module, feeds: GeneratorFeeds) -> None:
    """The metadata to be written (image shape, output range) against the trained generator's real output."""

    with torch.no_grad():
        images = reference(*feeds.tensors(CHECKED_SAMPLES, seed=11))
    check_generator_output(loaded.spec, images, loaded.info,
                           f"the trained generator's output (checkpoint {loaded.checkpoint})")
