"""The feature classifier behind FD, KID and cond_acc, and the reference data it is scored against.

genforge trains a small CNN classifier on the dataset's train split and caches it (GENFORGE_CACHE,
default ~/.cache/genforge/classifiers), keyed by dataset, image size, channels and a fingerprint of
the data and the dataset plugin's version, so a changed dataset gets a new classifier; its test
accuracy is reported beside every score. Datasets are streamed in chunks (any torch Dataset of
(image, label) items), so memory stays bounded whatever their size.
"""

from __future__ import annotations

import hashlib
import json
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
from genforge.core.files import atomic_path, genforge_cache_dir, write_json
from genforge.core.numerics import span_outside_range
from genforge.core.progress import progress
from genforge.core.registry import get_registry

CHUNK = 500  # images per step when streaming a dataset or scoring


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
    return genforge_cache_dir() / "classifiers"


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
    bar = progress(epochs, f"first use of {info.name} at {info.height}px: training genforge's feature classifier",
                   "epoch")
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(order) - batch + 1 if len(order) >= batch else 1, batch):
            images, labels = batch_of(train, order[start:start + batch])
            images = images + 0.05 * torch.randn_like(images)  # a little noise: features robust to GAN speckle
            loss = nn.functional.cross_entropy(model.logits(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        bar.update(1)
    bar.close()
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
        if getattr(dataset, "fingerprint", None):  # a cache names its own contents (core/image_cache.py)
            digest.update(dataset.fingerprint.encode())
            continue
        if isinstance(dataset, ImageTensorDataset):
            digest.update(dataset.images.numpy().tobytes())
            digest.update(dataset.labels.numpy().tobytes())
            continue
        for images, labels in image_batches(dataset, CHUNK):
            span = span_outside_range(images)
            if span is not None:
                low, high = span
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


_references: dict[str, Reference] = {}  # loaded once per process


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


