"""Quality metrics that work offline and reproduce.

Features come from a small CNN classifier that genforge trains on the dataset's train
split and caches (GENFORGE_CACHE, default ~/.cache/genforge/classifiers), keyed by dataset,
image size, channels and a fingerprint of the data and the dataset plugin's version, so a
changed dataset gets a new classifier; its test accuracy is reported beside every score.
Datasets are streamed in chunks (any torch Dataset of (image, label) items), so memory
stays bounded whatever their size. Fréchet
distance (FD) and KID are computed by torchmetrics on those features. Every FD comes with
its two reference points, computed the same way: the floor FD(train, test) and the
ceiling FD(uniform noise, test).

With an Inception weights file supplied by the user (--inception-weights, a torchvision
Inception-v3 state dict), standard FID/KID/IS on Inception features; nothing downloads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from genforge.core.contract import open_dataset, plugin_error
from genforge.core.data import DataInfo, ImageTensorDataset, batch_of, image_batches
from genforge.core.errors import UserError
from genforge.core.files import atomic_path, write_json
from genforge.core.inputs import signature_of, torch_inputs
from genforge.core.limits import check_generation
from genforge.core.model import capabilities, eval_mode, generate
from genforge.core.numerics import check_output_values
from genforge.core.registry import get_registry
from genforge.core.run_dir import load_run
from genforge.core.specs import METRIC_REQUIREMENTS

MIN_SAMPLES = 10
CHUNK = 500


class FeatureClassifier(nn.Module):
    """Small CNN: forward() gives 128 features (what torchmetrics consumes); logits() classifies."""

    num_features = 128

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(64 * 16, self.num_features), nn.ReLU())
        self.head = nn.Linear(self.num_features, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images.float())

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward(images))


def cache_dir() -> Path:
    return Path(os.environ.get("GENFORGE_CACHE", Path.home() / ".cache" / "genforge")) / "classifiers"


@dataclass
class Reference:
    """The dataset side of an evaluation: its test split and the feature classifier (None when unlabelled)."""

    info: DataInfo
    test: torch.utils.data.Dataset
    train: torch.utils.data.Dataset
    classifier: FeatureClassifier | None
    accuracy: float | None
    cache_path: Path
    from_cache: bool
    extras: dict = field(default_factory=dict)


@torch.enable_grad()  # callers may be scoring under no_grad
def _train_classifier(train, test, info, seed=0, epochs=10, batch=64) -> tuple[FeatureClassifier, float]:
    torch.manual_seed(seed)
    model = FeatureClassifier(info.channels, info.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(order) - batch + 1 if len(order) >= batch else 1, batch):
            images, labels = batch_of(train, order[start:start + batch])
            images = images + 0.05 * torch.randn_like(images)  # a little noise: features robust to GAN speckle
            loss = nn.functional.cross_entropy(model.logits(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model, classify_accuracy(model, image_batches(test, CHUNK))


@torch.no_grad()
def classify_accuracy(model, batches) -> float:
    """Share of (images, labels) batches classified right."""
    right = total = 0
    for images, labels in batches:
        right += int((model.logits(images).argmax(1) == labels).sum())
        total += len(labels)
    return right / max(total, 1)


def data_fingerprint(spec, datasets) -> str:
    """A short hash of the datasets' images and labels and of the plugin that made them."""
    digest = hashlib.blake2b(f"{spec.plugin} {spec.plugin_version} {spec.impl}".encode(), digest_size=8)
    for dataset in datasets:
        if isinstance(dataset, ImageTensorDataset):
            digest.update(dataset.images.numpy().tobytes())
            digest.update(dataset.labels.numpy().tobytes())
            continue
        for images, labels in image_batches(dataset, CHUNK):
            low, high = float(images.min()), float(images.max())
            if low < -1.001 or high > 1.001:
                raise plugin_error(spec, f"images span {low:.3g}..{high:.3g}; images must be in [-1, 1]")
            digest.update(images.float().numpy().tobytes())
            digest.update(labels.numpy().tobytes())
    return digest.hexdigest()


def load_reference(train_config: dict) -> Reference:
    """Test split and feature classifier for a run's dataset (trained once, then cached)."""
    name, size = train_config["dataset"], train_config["image_size"]
    kwargs = dict(image_size=size, channels=train_config.get("channels"), data_dir=train_config.get("data_dir"),
                  seed=train_config.get("seed", 0))
    train, info = open_dataset(name, "train", **kwargs)
    test, _ = open_dataset(name, "test", **kwargs)
    key = f"{name}-{size}px-{info.channels}ch-{data_fingerprint(get_registry().dataset(name), (train, test))}"
    if not info.num_classes:  # no labels, no feature classifier: only the inception metric can run
        return Reference(info, test, train, None, None, cache_dir() / f"{key}.safetensors", False)
    path = cache_dir() / f"{key}.safetensors"
    cached = _read_cached_classifier(path, info)
    if cached is not None:
        return Reference(info, test, train, cached[0], cached[1], path, True)
    classifier, accuracy = _train_classifier(train, test, info)
    try:
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in classifier.state_dict().items()}, str(tmp))
        write_json(path.with_suffix(".json"), {"test_accuracy": accuracy, "dataset": key, "created": time.time()})
    except OSError as exc:  # a read-only or full cache costs the next run the training, not this one its scores
        warnings.warn(f"genforge could not cache the feature classifier in {path.parent} ({exc.strerror}); it will "
                      "be trained again next time (set GENFORGE_CACHE to a writable folder)", stacklevel=2)
    return Reference(info, test, train, classifier, accuracy, path, False)


def _read_cached_classifier(path: Path, info: DataInfo) -> tuple[FeatureClassifier, float] | None:
    """The cached classifier and its accuracy; None when missing or damaged (then it is trained again)."""
    if not (path.is_file() and path.with_suffix(".json").is_file()):
        return None
    try:
        classifier = FeatureClassifier(info.channels, info.num_classes)
        classifier.load_state_dict(load_file(str(path)))
        accuracy = json.loads(path.with_suffix(".json").read_text())["test_accuracy"]
        if isinstance(accuracy, bool) or not isinstance(accuracy, int | float) or not 0 <= accuracy <= 1:
            return None
    except Exception:  # noqa: BLE001  a damaged cache file of any kind is rebuilt, never fatal
        return None
    return classifier.eval(), float(accuracy)


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


def images_of(dataset):
    """A dataset's images, streamed in chunks."""
    return (images for images, _ in image_batches(dataset, CHUNK))


def test_images(reference: Reference):
    return images_of(reference.test)


def uniform_noise(reference: Reference, n: int):
    """n images of uniform noise in [-1, 1] (the FD ceiling), in chunks, the same every time."""
    generator = torch.Generator().manual_seed(0)
    info = reference.info
    for start in range(0, n, CHUNK):
        yield torch.rand(min(CHUNK, n - start), info.channels, info.height, info.width, generator=generator) * 2 - 1


def fd_reference_points(reference: Reference) -> dict:
    """floor = FD(train, test); ceiling = FD(uniform noise, test)."""
    if "fd_floor" not in reference.extras:
        classifier = reference.classifier
        reference.extras["fd_floor"] = frechet_distance(test_images(reference), images_of(reference.train), classifier)
        reference.extras["fd_ceiling"] = frechet_distance(test_images(reference),
                                                          uniform_noise(reference, len(reference.test)), classifier)
    return {"fd_floor": reference.extras["fd_floor"], "fd_ceiling": reference.extras["fd_ceiling"]}


_references: dict[str, Reference] = {}


def reference_for(train_config: dict) -> Reference:
    key = json.dumps([train_config["dataset"], train_config["image_size"], train_config.get("channels"),
                      train_config.get("data_dir")])
    if key not in _references:
        _references[key] = load_reference(train_config)
    return _references[key]


def classifier_of(reference: Reference) -> FeatureClassifier:
    if reference.classifier is None:
        raise UserError(f"{reference.info.name} has no labels, so genforge has no feature classifier for FD, KID "
                        "or cond_acc; use --metrics inception --inception-weights FILE")
    return reference.classifier


def frechet_distance_of(images: torch.Tensor, info: DataInfo, train_config: dict) -> float:
    reference = reference_for(train_config)
    classifier_of(reference)
    check_images(images, info)
    return frechet_distance(test_images(reference), images, reference.classifier)


# -- the metric contract: a metric plugin takes an EvalInput and returns a dict of floats ---------
@dataclass
class EvalInput:
    images: torch.Tensor  # generated, (N, C, H, W) in [-1, 1]
    labels: torch.Tensor | None  # the labels asked for (conditional models)
    reference: Reference
    model: nn.Module | None = None  # the PyTorch model, when evaluating a run directory
    options: dict = field(default_factory=dict)  # e.g. inception_weights


def what_applies(reference: Reference, generator_capabilities) -> set[str]:
    """What the model (its capabilities) and the data offer, in MetricSpec.applies_to terms."""
    offered = set(generator_capabilities)
    if reference.info.labelled:
        offered.add("labelled_data")
    return offered


def run_metrics(names: list[str] | None, data: EvalInput, offered: set[str]) -> dict:
    """The metrics `names` (default: every default metric) that apply; the others skipped with a note.

    scores["skipped"] maps each skipped metric to what it needs.
    """
    registry = get_registry()
    specs = [registry.get("metrics", name) for name in names] if names else [
        spec for spec in registry.specs("metrics").values() if spec.default]
    scores: dict = {"classifier_test_accuracy": data.reference.accuracy, "n": len(data.images)}
    skipped = {}
    for spec in specs:
        missing = [need for need in spec.applies_to if need not in offered]
        if missing:
            skipped[spec.name] = f"needs {METRIC_REQUIREMENTS[missing[0]]}"
            continue
        scores.update(spec.load()(data))
    if len(scores) == 2 and skipped:  # nothing could be computed
        if "labelled_data" not in offered:
            raise UserError(f"{data.reference.info.name} has no labels, so genforge has no feature classifier for "
                            "FD, KID or cond_acc; use --metrics inception --inception-weights FILE")
        raise UserError(f"no metric applies: {'; '.join(f'{k} {v}' for k, v in skipped.items())}")
    if skipped:
        scores["skipped"] = skipped
    return scores


@torch.no_grad()
def evaluate_generator(model, info: DataInfo, train_config, n: int = 1000, metrics=None, device="cpu",
                       seed: int = 0, options: dict | None = None) -> dict:
    """Score a PyTorch model: `metrics` by name (default: every default metric that applies)."""
    config = dataclasses.asdict(train_config) if dataclasses.is_dataclass(train_config) else dict(train_config)
    check_generation(n, math.prod(model.latent_shape), info.channels * info.height * info.width, "scoring")
    z, labels = torch_inputs(*signature_of(model).inputs(n=n, seed=seed), device=device)
    images = in_chunks(lambda zc, lc: generate(model.generator(), zc, lc).cpu(), z, labels)
    check_generated(images, f"the {config.get('model', 'model')} generator's images")
    reference = reference_for(config)
    data = EvalInput(images, labels.cpu().long() if labels is not None else None, reference, model, options or {})
    with eval_mode(model):
        return run_metrics(metrics, data, what_applies(reference, capabilities(model)))


def evaluate_run(run_dir, checkpoint=None, ema=None, n: int = 2000, metrics=None, seed: int = 0,
                 options: dict | None = None) -> dict:
    """Score a run directory's generator (one checkpoint, latest by default)."""
    loaded = load_run(run_dir, checkpoint, ema=ema)
    return evaluate_generator(loaded.model, loaded.info, loaded.record["train"], n, metrics, seed=seed,
                              options=options)


def in_chunks(generate_fn, z, labels, size: int = 500) -> torch.Tensor:
    """Generate from noise (and labels) a chunk at a time; the images concatenated."""
    return torch.cat([generate_fn(z[i:i + size], None if labels is None else labels[i:i + size])
                      for i in range(0, len(z), size)])
