"""Scoring a generator: a PyTorch model, a run directory, or an exported .onnx/.engine, through the same
metric code (`genforge evaluate`, eval-every during training, the export quality gate).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from genforge.core import runtime
from genforge.core.contract import run_test_images
from genforge.core.data import DataInfo
from genforge.core.errors import UserError
from genforge.core.evaluation.features import classifier_of, reference_for, test_images
from genforge.core.evaluation.metrics import (
    CHUNK,
    EvalInput,
    check_generated,
    check_images,
    check_metric_options,
    frechet_distance,
    run_metrics,
    what_applies,
)
from genforge.core.inputs import signature_of, torch_inputs
from genforge.core.limits import check_generation
from genforge.core.model import capabilities, eval_mode, generate
from genforge.core.restore import MASK_NAME, degraded_inputs, restores
from genforge.core.runs.run_dir import load_run, read_run_config
from genforge.core.targets import classify_target


def frechet_distance_of(images: torch.Tensor, info: DataInfo, train_config: dict) -> float:
    reference = reference_for(train_config)
    classifier_of(reference)
    check_images(images, info)
    return frechet_distance(test_images(reference), images, reference.classifier)


@torch.no_grad()
def evaluate_generator(model, info: DataInfo, train_config, n: int = 1000, metrics=None, device="cpu",
                       seed: int = 0, options: dict | None = None) -> dict:
    """Score a PyTorch model: `metrics` by name (default: every default metric that applies)."""
    config = dataclasses.asdict(train_config) if dataclasses.is_dataclass(train_config) else dict(train_config)
    check_metric_options(metrics, options)
    check_generation(n, math.prod(model.latent_shape), info.channels * info.height * info.width, "scoring")
    z, labels = torch_inputs(*signature_of(model).inputs(n=n, seed=seed), device=device)
    clean, inputs = restoration_inputs(model, config, n, seed)
    images = in_chunks(lambda zc, lc, ic: generate(model.generator(), zc, lc, [t.to(device) for t in ic]).cpu(),
                       z, labels, inputs)
    check_generated(images, f"the {config.get('model', 'model')} generator's images")
    reference = reference_for(config)
    data = EvalInput(images, labels.cpu().long() if labels is not None else None, reference, model, options or {},
                     clean, dict(zip((i.name for i in model.inputs), inputs)))
    with eval_mode(model):
        return run_metrics(metrics, data, what_applies(reference, capabilities(model) | masked(data.inputs)))


def restoration_inputs(model, train: dict, n: int, seed: int) -> tuple:
    """A restoration model's clean test images and its inputs degraded from them (seeded); (None, ()) otherwise."""
    if not restores(model):
        return None, ()
    clean = run_test_images(train, n)
    chunks = [degraded_inputs(model, clean[i:i + CHUNK], seed + i) for i in range(0, n, CHUNK)]
    return clean, tuple(torch.cat(parts) for parts in zip(*chunks))


def masked(inputs: dict) -> set:
    return {"masked"} if MASK_NAME in inputs else set()


def evaluate_run(run_dir, checkpoint=None, ema=None, n: int = 2000, metrics=None, seed: int = 0,
                 options: dict | None = None, sampling: dict | None = None) -> dict:
    """Score a run directory's generator (one checkpoint, latest by default)."""
    loaded = load_run(run_dir, checkpoint, ema=ema, sampling=sampling)
    return evaluate_generator(loaded.model, loaded.info, loaded.record["train"], n, metrics, seed=seed,
                              options=options)


def in_chunks(generate_fn, z, labels, images=(), size: int = CHUNK) -> torch.Tensor:
    """Generate from noise (and labels, and a restoration model's image inputs) a chunk at a time; the images
    concatenated."""
    return torch.cat([generate_fn(z[i:i + size], None if labels is None else labels[i:i + size],
                                  [t[i:i + size] for t in images]) for i in range(0, len(z), size)])


def evaluate_target(target, checkpoint=None, ema=None, n=2000, metrics=None, dataset_from=None, seed=0,
                    options=None, sampling=None, threads: int | None = None) -> dict:
    """Scores of a run directory (or checkpoint folder), an .onnx or an .engine; metrics by name, comma-separated;
    threads: ONNX Runtime's count for an .onnx (None: the free cores)."""
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    check_metric_options(names, options)
    found = classify_target(target)
    if found.kind == "run":
        return evaluate_run(found.path, checkpoint or found.checkpoint, ema, n, names, seed, options, sampling)
    generator = runtime.load(found.path, sampling=sampling, threads=threads)
    if dataset_from is not None:
        record = read_run_config(dataset_from)
    elif generator.metadata.get("dataset"):  # an exported file names its dataset, size and channels
        channels, size, _ = generator.image_shape
        record = {"train": {"dataset": generator.metadata["dataset"], "image_size": size, "channels": channels,
                            "data_dir": None}}
    else:
        raise UserError(f"{found.path} names no dataset in its metadata; pass --dataset-from RUN_DIR")
    reference = reference_for(record["train"])
    z, labels = generator.prepare_inputs(n=n, seed=seed)
    clean, inputs = None, ()
    if generator.signature.restores:
        if dataset_from is None:
            raise UserError(f"{found.path} restores images, and scoring it degrades clean images the way its run "
                            "does: pass --dataset-from RUN_DIR (the run it was exported from)")
        loaded = load_run(dataset_from)
        if signature_of(loaded.model).images != generator.signature.images:
            raise UserError(f"{dataset_from} takes other image inputs than {found.path}; pass the run it was "
                            "exported from")
        clean, inputs = restoration_inputs(loaded.model, record["train"], n, seed)
    images = in_chunks(lambda zc, lc, ic: torch.from_numpy(generator.run(zc, lc, [t.numpy() for t in ic])),
                       z, labels, inputs)
    data = EvalInput(images, torch.from_numpy(labels).long() if labels is not None else None, reference, None,
                     options or {}, clean, dict(zip((i.name for i in generator.inputs), inputs)))
    offered = {"conditional"} if generator.conditional else set()  # an export has no encoder
    offered |= {"restores"} | masked(data.inputs) if inputs else set()
    return run_metrics(names, data, what_applies(reference, offered))
