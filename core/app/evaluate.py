"""`genforge evaluate`: score a run directory or an exported file through the same metric code.

The orchestration sits in the application layer because an exported target is opened through
exporters/runtime.py; the metrics, references and feature classifier are core/evaluation.py's.
"""

from __future__ import annotations

import torch

from genforge.core.errors import UserError
from genforge.core.evaluation import EvalInput, evaluate_run, in_chunks, reference_for, run_metrics, what_applies
from genforge.core.registry import get_registry
from genforge.core.run_dir import read_run_config
from genforge.core.targets import classify_target
from genforge.exporters import runtime


def evaluate_target(target, checkpoint=None, ema=None, n=2000, metrics=None, dataset_from=None, seed=0,
                    options=None) -> dict:
    """Scores of a run directory (or checkpoint folder), an .onnx or an .engine; metrics by name, comma-separated."""
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    for name in names or ():
        get_registry().get("metrics", name)
    found = classify_target(target)
    if found.kind == "run":
        return evaluate_run(found.path, checkpoint or found.checkpoint, ema, n, names, seed, options)
    generator = runtime.load(found.path)
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
    images = in_chunks(lambda zc, lc: torch.from_numpy(generator.run(zc, lc)), z, labels)
    data = EvalInput(images, torch.from_numpy(labels).long() if labels is not None else None, reference, None,
                     options or {})
    offered = {"conditional"} if generator.conditional else set()  # an export has no encoder
    return run_metrics(names, data, what_applies(reference, offered))
