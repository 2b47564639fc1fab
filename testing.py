"""genforge.testing: check a plugin against genforge's contract, from its own tests or `genforge plugins check`.

    from genforge.testing import check_model_plugin, check_dataset_plugin

    def test_my_gan_keeps_the_contract():
        check_model_plugin("my-gan", model_options={"hidden": 32})

    def test_stripes_keeps_the_contract():
        check_dataset_plugin("stripes")

Each check runs genforge's real code paths on the CPU in seconds and raises PluginCheckFailed
(an AssertionError, so pytest shows it plainly) with one line saying what the author must
change. The pytest plugin (genforge/pytest_plugin.py, loaded through the `pytest11` entry point)
adds fixtures: `genforge_cli`, `install_plugin` and `genforge_cache`.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from genforge.benchmarks.measure import Settings, run_benchmarks
from genforge.core import runtime
from genforge.core.contract import open_dataset
from genforge.core.data import image_batches
from genforge.core.errors import UserError
from genforge.core.evaluation.scoring import evaluate_run
from genforge.core.inputs import label_problem
from genforge.core.model import capabilities
from genforge.core.numerics import ROUNDING_TOLERANCE, relative_difference, span_outside_range
from genforge.core.precision import REFERENCE, default_exports
from genforge.core.registry import get_registry
from genforge.core.runs.config import TrainConfig
from genforge.core.runs.run_dir import load_run
from genforge.core.training.trainer import Trainer
from genforge.exporters.onnx import export_onnx
from genforge.exporters.precisions import export_file_name

CHECK_IMAGE_SIZE = 16
CHECK_STEPS = 2
CHECK_BATCH = 8


class PluginCheckFailed(AssertionError):
    """A plugin failed one of genforge's checks; the message says what to change."""


@dataclass
class CheckReport:
    """What a check did, step by step (printed by `genforge plugins check`)."""

    plugin: str
    steps: list[str] = field(default_factory=list)

    def passed(self, step: str) -> None:
        self.steps.append(step)


def _fail(what: str, error: Exception | str) -> PluginCheckFailed:
    message = error.message if isinstance(error, UserError) else str(error)
    return PluginCheckFailed(f"{what}: {' '.join(message.split())}")


# -- models ------------------------------------------------------------------------------------------
def check_model_plugin(name: str, dataset: str = "digits", image_size: int | None = None,
                       model_options: dict | None = None, workdir=None, benchmark_s: float = 0.3) -> CheckReport:
    """Build, train (twice, seeded), sample, export (fp32, int8), evaluate and benchmark model plugin `name`.

    dataset: a labelled dataset plugin to train on (conditional models need labels); image_size:
    default 16 where the model makes it, else its smallest size; model_options: small widths
    keep the check fast. Runs are written under `workdir` (default: a temporary folder).
    """
    spec = get_registry().model(name)
    report = CheckReport(f"model {name!r} ({spec.plugin})")
    model_class = spec.load()
    sizes = getattr(model_class, "image_sizes", None)
    size = image_size or (CHECK_IMAGE_SIZE if not sizes or CHECK_IMAGE_SIZE in sizes else min(sizes))
    with tempfile.TemporaryDirectory(prefix="genforge-check-") as tmp:
        work = Path(workdir) if workdir else Path(tmp)
        config = dict(model=name, dataset=dataset, image_size=size, steps=CHECK_STEPS, batch_size=CHECK_BATCH,
                      sample_every=0, checkpoint_every=0, log_every=1, seed=0, model_options=dict(model_options or {}))
        first = _train(work / "run-a", config, report)
        second = _train(work / "run-b", config, report)
        _check_deterministic(first, second)
        report.passed(f"two seeded runs of {CHECK_STEPS} steps end with the same weights (up to rounding)")
        _check_samples(first, report)
        for precision in default_exports():
            _check_export(first, work / export_file_name(name, precision), precision, report)
        _check_evaluation(first, report)
        _check_benchmark(first, work / export_file_name(name, REFERENCE), benchmark_s, report)
    return report


def _train(out: Path, values: dict, report: CheckReport) -> Path:
    try:
        trainer = Trainer(TrainConfig(**values), out, overwrite=True, progress=False)
        trainer.fit()
    except UserError as exc:
        raise _fail("building or training the model", exc) from None
    if not report.steps:
        report.passed(f"builds for {values['dataset']} at {values['image_size']}px and keeps the model contract")
    return trainer.out


def _check_deterministic(first: Path, second: Path) -> None:
    a, b = load_run(first).model.state_dict(), load_run(second).model.state_dict()
    differences = {key: relative_difference(a[key], b[key]) for key in a if a[key].is_floating_point()}
    differences.update({key: 0.0 if torch.equal(a[key], b[key]) else math.inf
                        for key in a if not a[key].is_floating_point()})
    different = sorted((key for key, d in differences.items() if d > ROUNDING_TOLERANCE), key=differences.get)
    if different:
        worst = different[-1]
        raise PluginCheckFailed(f"two training runs with the same seed ended with different weights ({worst} differs "
                                f"by {differences[worst]:.2g} of its size, rounding allows {ROUNDING_TOLERANCE:g}; "
                                f"{len(different)} tensors); draw randomness only from ctx.randn or torch's seeded "
                                "generator, never from time, os.urandom, Python's or numpy's unseeded random")


def _image_inputs(run: Path, n: int, seed: int) -> dict:
    """A restoration model's image inputs, degraded from its run's test images by its degrade(); {} otherwise."""
    generator = runtime.load(run)
    return dict(zip((i.name for i in generator.inputs), generator.example_images(n, seed)))


def _check_samples(run: Path, report: CheckReport) -> None:
    generator = runtime.load(run)
    images = generator.generate(n=8, seed=1, **_image_inputs(run, 8, 1))
    if images.shape != (8, *generator.image_shape) or images.dtype != np.float32:
        raise PluginCheckFailed(f"samples are {images.shape} {images.dtype}; expected (8, "
                                f"{', '.join(map(str, generator.image_shape))}) float32")
    if not np.isfinite(images).all() or span_outside_range(images) is not None:
        raise PluginCheckFailed(f"samples span {images.min():.3g}..{images.max():.3g}; the generator must output "
                                "[-1, 1] (end it with Tanh)")
    again = generator.generate(n=8, seed=1, **_image_inputs(run, 8, 1))
    difference = relative_difference(images, again)
    if difference > ROUNDING_TOLERANCE:
        raise PluginCheckFailed(f"the same seed gave different samples (they differ by {difference:.2g} of their "
                                f"range, rounding allows {ROUNDING_TOLERANCE:g}); the generator must not draw noise "
                                "itself")
    report.passed("samples: float32, the dataset's shape, in [-1, 1], the same for the same seed")


def _check_export(run: Path, out: Path, precision: str, report: CheckReport) -> None:
    try:
        export = export_onnx(run, out, precision=precision)
    except Exception as exc:  # noqa: BLE001  any failure here is what the author needs to see
        raise _fail(f"{precision} ONNX export", exc) from None
    loaded = load_run(run)
    meta = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    info = loaded.info
    expected = {"model": loaded.model_name, "plugin": loaded.spec.plugin,
                "latent_shape": str(list(loaded.model.latent_shape)),
                "image_shape": str([info.channels, info.height, info.width]),
                "num_classes": str(info.num_classes if loaded.model.conditional else 0), "precision": precision,
                "dataset": loaded.record["train"]["dataset"]}
    wrong = {k: (meta.get(k), v) for k, v in expected.items() if meta.get(k, "").replace(" ", "") != v.replace(" ", "")}
    if wrong:
        key, (got, want) = next(iter(wrong.items()))
        raise PluginCheckFailed(f"{precision} export metadata says {key}={got!r}, but the model has {want!r}")
    exported = runtime.load(out).generate(n=4, seed=3, **_image_inputs(run, 4, 3))
    reference = runtime.load(run).generate(n=4, seed=3, **_image_inputs(run, 4, 3))
    worst = max(c["max_abs_error"] for c in export.checks)
    if exported.shape != reference.shape:
        raise PluginCheckFailed(f"{precision} export gives {exported.shape}, the run {reference.shape}")
    report.passed(f"{precision} ONNX: ONNX Runtime matches PyTorch (max abs error {worst:.2g}), metadata right")


def _check_evaluation(run: Path, report: CheckReport) -> None:
    try:
        scores = evaluate_run(run, n=100)
    except UserError as exc:
        raise _fail("evaluation", exc) from None
    model = load_run(run).model
    wanted = {"fd", "kid"} | ({"cond_acc"} if model.conditional else set()) | (
        {"neg_elbo"} if {"elbo", "reconstruct"} <= capabilities(model) else set()) | (
        {"psnr", "ssim"} if "restores" in capabilities(model) else set())
    missing = wanted - set(scores)
    if missing:
        raise PluginCheckFailed(f"evaluation gave no {', '.join(sorted(missing))} ({scores.get('skipped')})")
    report.passed(f"evaluation: {', '.join(sorted(wanted))}")


def _check_benchmark(run: Path, onnx_file: Path, seconds: float, report: CheckReport) -> None:
    settings = Settings(batches=(1,), warmup_s=0.05, min_iters=3, duration_s=seconds)
    bench = run_benchmarks([run, onnx_file], ["torch", "ort-cpu"], settings)
    bad = [r for r in bench["rows"] if r["status"] != "ok"]
    if bad:
        raise PluginCheckFailed(f"benchmark {bad[0]['backend']} on {bad[0]['target']}: {bad[0].get('reason')}")
    report.passed("benchmark: torch and ONNX Runtime rows at batch 1")


# -- datasets ----------------------------------------------------------------------------------------
def check_dataset_plugin(name: str, image_size: int = CHECK_IMAGE_SIZE, data_dir=None) -> CheckReport:
    """Open both splits of dataset plugin `name` and check every item against its DataInfo; check the bad-path error."""
    spec = get_registry().dataset(name)
    report = CheckReport(f"dataset {name!r} ({spec.plugin})")
    for split in ("train", "test"):
        for channels in (None, 1, 3):
            try:
                dataset, info = open_dataset(name, split, image_size, channels, data_dir)
            except UserError as exc:
                raise _fail(f"opening the {split} split with channels={channels}", exc) from None
            if channels is None:
                _check_every_item(dataset, info, split)
                expected = info.split_sizes.get(split)
                if expected is not None and expected != len(dataset):
                    raise PluginCheckFailed(f"DataInfo split_sizes says {split} has {expected} items, the dataset "
                                            f"holds {len(dataset)}")
        report.passed(f"{split}: every item matches the DataInfo (shape, [-1, 1], labels); channels 1 and 3 convert")
    if not spec.offline:
        missing = Path(tempfile.gettempdir()) / "genforge-check-no-such-folder"
        try:
            open_dataset(name, "train", image_size, None, missing)
        except UserError:
            report.passed("a missing --data-dir is a one-line error")
        except Exception as exc:  # noqa: BLE001
            raise PluginCheckFailed(f"a missing data_dir raised {type(exc).__name__}: {exc}; raise "
                                    "genforge.core.errors.UserError saying which folder to pass") from None
        else:
            raise PluginCheckFailed("a data_dir that does not exist was accepted; raise UserError for it")
    return report


def _check_every_item(dataset, info, split: str) -> None:
    for images, labels in image_batches(dataset, 256):
        span = span_outside_range(images)
        if span is not None:
            low, high = span
            raise PluginCheckFailed(f"{split} images span {low:.3g}..{high:.3g}; they must be in [-1, 1]")
        problem = label_problem(labels, info.num_classes if info.labelled else None)
        if problem:
            raise PluginCheckFailed(f"{split} labels {problem} (the DataInfo has {info.num_classes or 'no'} classes)")


def check_plugin(name: str, **options) -> CheckReport:
    """check_model_plugin or check_dataset_plugin, whichever kind `name` is."""
    registry = get_registry()
    if name in registry.specs("models"):
        return check_model_plugin(name, **options)
    if name in registry.specs("datasets"):
        return check_dataset_plugin(name, **options)
    raise UserError(f"no model or dataset plugin named {name!r}; see `genforge models` and `genforge datasets`")
