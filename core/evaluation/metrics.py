"""Quality metrics that work offline and reproduce: FD and KID on the feature classifier's features
(torchmetrics), and the metric contract (EvalInput in, a dict of floats out).

Every FD comes with its two reference points, computed the same way: the floor FD(train, test)
and the ceiling FD(uniform noise, test). With an Inception weights file supplied by the user
(--inception-weights, a torchvision Inception-v3 state dict), standard FID/KID/IS on Inception
features (plugins/metrics.py); nothing downloads.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from genforge.core.data import DataInfo
from genforge.core.errors import GenforgeError, PluginError, UserError
from genforge.core.evaluation.features import CHUNK, Reference, images_of, test_images, uniform_noise
from genforge.core.numerics import check_output_values
from genforge.core.registry import get_registry
from genforge.core.specs import METRIC_REQUIREMENTS, MODEL_KINDS

MIN_SAMPLES = 10



def check_images(images: torch.Tensor, info: DataInfo, what: str = "images") -> None:
    expected = (info.channels, info.height, info.width)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise UserError(f"{what} have shape {tuple(images.shape)}; expected (N, {', '.join(map(str, expected))})")
    if len(images) < MIN_SAMPLES:
        raise UserError(f"{len(images)} {what} are too few for FD/KID; use at least {MIN_SAMPLES} (--n)")
    check_generated(images, what)


def check_generated(images: torch.Tensor, what: str = "generated images") -> None:
    """Finite and within [-1, 1] (with rounding slack), or there is nothing honest to score."""
    check_output_values(images, what)


def chunks(images):
    """A tensor of images, or an iterable of image chunks, as chunks."""
    return images.split(CHUNK) if isinstance(images, torch.Tensor) else images


@torch.no_grad()
def frechet_distance(a, b, features: nn.Module) -> float:
    """FD between two sets of images (tensors, or iterables of chunks for streaming)."""
    from torchmetrics.image.fid import FrechetInceptionDistance  # lazy: torchmetrics takes ~1 s to import

    metric = FrechetInceptionDistance(feature=features, normalize=False)
    for chunk in chunks(a):
        metric.update(chunk.float(), real=True)
    for chunk in chunks(b):
        metric.update(chunk.float(), real=False)
    return float(metric.compute())


@torch.no_grad()
def kernel_distance(a, b: torch.Tensor, features: nn.Module, n_real: int | None = None) -> tuple[float, float]:
    """KID between real images `a` (tensor or chunks; n_real items) and generated images `b`."""
    from torchmetrics.image.kid import KernelInceptionDistance  # lazy: torchmetrics takes ~1 s to import

    subset = min(len(a) if n_real is None else n_real, len(b), CHUNK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns that it keeps the features: here at most a few MB
        metric = KernelInceptionDistance(feature=features, subsets=20, subset_size=subset, normalize=False)
    for chunk in chunks(a):
        metric.update(chunk.float(), real=True)
    for chunk in chunks(b):
        metric.update(chunk.float(), real=False)
    with torch.random.fork_rng(devices=[]):  # torchmetrics draws its subsets from the global RNG
        torch.manual_seed(0)
        mean, std = metric.compute()
    return float(mean), float(std)


def fd_reference_points(reference: Reference) -> dict:
    """floor = FD(train, test); ceiling = FD(uniform noise, test)."""
    if "fd_floor" not in reference.extras:
        classifier = reference.classifier
        reference.extras["fd_floor"] = frechet_distance(test_images(reference), images_of(reference.train), classifier)
        reference.extras["fd_ceiling"] = frechet_distance(test_images(reference),
                                                          uniform_noise(reference, len(reference.test)), classifier)
    return {"fd_floor": reference.extras["fd_floor"], "fd_ceiling": reference.extras["fd_ceiling"]}




# -- the metric contract: a metric plugin takes an EvalInput and returns a dict of floats ---------
@dataclass
class EvalInput:
    images: torch.Tensor  # generated, (N, C, H, W) in [-1, 1]
    labels: torch.Tensor | None  # the labels asked for (conditional models)
    reference: Reference
    model: nn.Module | None = None  # the PyTorch model, when evaluating a run directory
    options: dict = field(default_factory=dict)  # e.g. inception_weights
    clean: torch.Tensor | None = None  # a restoration model's clean images, (N, C, H, W), which `images` restore
    inputs: dict = field(default_factory=dict)  # ... and its inputs degraded from them, by name (core/restore.py)


def what_applies(reference: Reference, generator_capabilities) -> set[str]:
    """What the model (its capabilities) and the data offer, in MetricSpec.applies_to terms."""
    offered = set(generator_capabilities)
    if reference.info.labelled:
        offered.add("labelled_data")
    return offered


def chosen_metrics(names: list[str] | None) -> list:
    """The metric specs `names` names (default: every default metric); an unknown name is one line."""
    registry = get_registry()
    return [registry.get("metrics", name) for name in names] if names else [
        spec for spec in registry.specs("metrics").values() if spec.default]


def in_plugin(spec, call, *args):
    """`call(*args)` of a metric plugin: an error that is not genforge's names the plugin it came from."""
    try:
        return call(*args)
    except GenforgeError:
        raise
    except Exception as exc:  # noqa: BLE001  a plugin's bug is the plugin's, not genforge's
        raise PluginError(f"metric {spec.name!r} from plugin {spec.plugin or '?'} failed: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())}; fix or update that plugin") from exc


def check_metric_options(names: list[str] | None, options: dict | None) -> None:
    """Each chosen metric's own check of its options (a weights file, say), before anything is generated."""
    for spec in chosen_metrics(names):
        in_plugin(spec, spec.check_options, options or {})


def run_metrics(names: list[str] | None, data: EvalInput, offered: set[str]) -> dict:
    """The metrics `names` (default: every default metric) that apply; the others skipped with a note.

    scores["skipped"] maps each skipped metric to what it needs.
    """
    specs = chosen_metrics(names)
    scores: dict = {"classifier_test_accuracy": data.reference.accuracy, "n": len(data.images)}
    skipped = {}
    for spec in specs:
        missing = [need for need in spec.applies_to if need not in offered]
        if missing and names is None and set(missing) <= MODEL_KINDS:  # a default metric for another kind of model
            continue
        if missing:
            skipped[spec.name] = f"needs {METRIC_REQUIREMENTS[missing[0]]}"
            continue
        scores.update(in_plugin(spec, spec.load(), data))
    if len(scores) == 2 and skipped:  # nothing could be computed
        if "labelled_data" not in offered:
            raise UserError(f"{data.reference.info.name} has no labels, so genforge has no feature classifier for "
                            "FD, KID or cond_acc; use --metrics inception --inception-weights FILE")
        raise UserError(f"no metric applies: {'; '.join(f'{k} {v}' for k, v in skipped.items())}")
    if skipped:
        scores["skipped"] = skipped
    return scores


