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

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genforge.core.contract import open_dataset, plugin_error
from genforge.core.data import DataInfo, ImageTensorDataset, batch_of, image_batches
from genforge.core.errors import UserError
from genforge.core.model import call_with_labels, capabilities
from genforge.core.registry import get_registry
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
    from safetensors.torch import load_file, save_file

    name, size = train_config["dataset"], train_config["image_size"]
    kwargs = dict(image_size=size, channels=train_config.get("channels"), data_dir=train_config.get("data_dir"),
                  seed=train_config.get("seed", 0))
    train, info = open_dataset(name, "train", **kwargs)
    test, _ = open_dataset(name, "test", **kwargs)
    key = f"{name}-{size}px-{info.channels}ch-{data_fingerprint(get_registry().dataset(name), (train, test))}"
    if not info.num_classes:  # no labels, no feature classifier: only the inception metric can run
        return Reference(info, test, train, None, None, cache_dir() / f"{key}.safetensors", False)
    path = cache_dir() / f"{key}.safetensors"
    if path.exists():
        classifier = FeatureClassifier(info.channels, info.num_classes)
        classifier.load_state_dict(load_file(str(path)))
        classifier.eval()
        accuracy = json.loads(path.with_suffix(".json").read_text())["test_accuracy"]
        return Reference(info, test, train, classifier, accuracy, path, True)
    classifier, accuracy = _train_classifier(train, test, info)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({k: v.contiguous() for k, v in classifier.state_dict().items()}, str(tmp))
    path.with_suffix(".json").write_text(json.dumps({"test_accuracy": accuracy, "dataset": key,
                                                     "created": time.time()}))
    os.replace(tmp, path)
    return Reference(info, test, train, classifier, accuracy, path, False)


def check_images(images: torch.Tensor, info: DataInfo, what: str = "images") -> None:
    expected = (info.channels, info.height, info.width)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise UserError(f"{what} have shape {tuple(images.shape)}; expected (N, {', '.join(map(str, expected))})")
    if len(images) < MIN_SAMPLES:
        raise UserError(f"{len(images)} {what} are too few for FD/KID; use at least {MIN_SAMPLES} (--n)")


def chunks(images):
    """A tensor of images, or an iterable of image chunks, as chunks."""
    return images.split(CHUNK) if isinstance(images, torch.Tensor) else images


@torch.no_grad()
def frechet_distance(a, b, features: nn.Module) -> float:
    """FD between two sets of images (tensors, or iterables of chunks for streaming)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=features, normalize=False)
    for chunk in chunks(a):
        metric.update(chunk.float(), real=True)
    for chunk in chunks(b):
        metric.update(chunk.float(), real=False)
    return float(metric.compute())


@torch.no_grad()
def kernel_distance(a, b: torch.Tensor, features: nn.Module, n_real: int | None = None) -> tuple[float, float]:
    """KID between real images `a` (tensor or chunks; n_real items) and generated images `b`."""
    import warnings

    from torchmetrics.image.kid import KernelInceptionDistance

    subset = min(len(a) if n_real is None else n_real, len(b), CHUNK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns that it keeps the features: here at most a few MB
        metric = KernelInceptionDistance(feature=features, subsets=20, subset_size=subset, normalize=False)
    for chunk in chunks(a):
        metric.update(chunk.float(), real=True)
    for chunk in chunks(b):
        metric.update(chunk.float(), real=False)
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


# -- metric plugins: each takes an EvalInput and returns a dict of floats -------------------------
@dataclass
class EvalInput:
    images: torch.Tensor  # generated, (N, C, H, W) in [-1, 1]
    labels: torch.Tensor | None  # the labels asked for (conditional models)
    reference: Reference
    model: nn.Module | None = None  # the PyTorch model, when evaluating a run directory
    options: dict = field(default_factory=dict)  # e.g. inception_weights


def metric_fd(data: EvalInput) -> dict:
    check_images(data.images, data.reference.info)
    fd = frechet_distance(test_images(data.reference), data.images, classifier_of(data.reference))
    points = fd_reference_points(data.reference)
    return {"fd": fd, **points, "fd_over_floor": fd / max(points["fd_floor"], 1e-12)}


def metric_kid(data: EvalInput) -> dict:
    check_images(data.images, data.reference.info)
    mean, std = kernel_distance(test_images(data.reference), data.images, classifier_of(data.reference),
                                n_real=len(data.reference.test))
    return {"kid": mean, "kid_std": std}


@torch.no_grad()
def metric_cond_acc(data: EvalInput) -> dict:
    if data.labels is None:
        raise UserError("cond_acc needs a conditional model (one that takes labels)")
    batches = zip(data.images.split(CHUNK), data.labels.long().split(CHUNK))
    return {"cond_acc": classify_accuracy(classifier_of(data.reference), batches)}


@torch.no_grad()
def metric_vae(data: EvalInput) -> dict:
    """Test -ELBO through the model's negative_elbo, reconstruction PSNR through reconstruct, streamed.

    Conditional models get the test labels as the last argument of both (see core/model.py).
    """
    model = data.model
    if model is None or not {"elbo", "reconstruct"} <= capabilities(model):
        raise UserError("neg_elbo needs a run directory of a model with negative_elbo() and reconstruct()")
    conditional = bool(model.conditional)
    rng = np.random.default_rng(0)
    total = elbo_sum = recon_sq = mean_sq = 0.0
    mean_image = sum(images.sum(0) for images in images_of(data.reference.train)) / len(data.reference.train)
    for images, labels in image_batches(data.reference.test, CHUNK):
        noise = torch.from_numpy(rng.standard_normal((len(images), *model.latent_shape), dtype=np.float32))
        labels = labels if conditional else None
        terms = call_with_labels(model.negative_elbo, images, noise, labels=labels)
        recon = call_with_labels(model.reconstruct, images, labels=labels)
        elbo_sum += float(terms["neg_elbo"]) * len(images)
        recon_sq += float(((images - recon.float()) ** 2).sum())
        mean_sq += float(((images - mean_image) ** 2).sum())
        total += len(images)
    pixels = total * data.reference.info.channels * data.reference.info.height * data.reference.info.width
    return {"neg_elbo": elbo_sum / total, "recon_psnr": _psnr_from_mse(recon_sq / pixels),
            "mean_image_psnr": _psnr_from_mse(mean_sq / pixels)}


def _inception_uint8(images: torch.Tensor) -> torch.Tensor:
    images = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images


@torch.no_grad()
def metric_inception(data: EvalInput) -> dict:
    """Standard FID, KID and IS on Inception-v3 features, from a weights file the user supplies."""
    path = data.options.get("inception_weights") or os.environ.get("GENFORGE_INCEPTION_WEIGHTS")
    if not path:
        raise UserError("inception metrics need --inception-weights FILE (torch-fidelity's Inception-v3 "
                        "weights, pt_inception-2015-12-05); genforge downloads nothing")
    if not Path(path).is_file():
        raise UserError(f"inception weights file {path} does not exist")
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        raise UserError("inception metrics need torch-fidelity: pip install 'genforge[inception]'") from None
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    check_images(data.images, data.reference.info)
    fake = _inception_uint8(data.images)
    fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(path))
    kid = KernelInceptionDistance(feature=2048, subset_size=min(len(data.reference.test), len(fake), 1000),
                                  feature_extractor_weights_path=str(path))
    inception_score = InceptionScore(feature_extractor_weights_path=str(path))
    for real in test_images(data.reference):
        for metric in (fid, kid):
            metric.update(_inception_uint8(real), real=True)
    for chunk in fake.split(200):
        for metric in (fid, kid):
            metric.update(chunk, real=False)
        inception_score.update(chunk)
    kid_mean, kid_std = kid.compute()
    is_mean, is_std = inception_score.compute()
    return {"fid": float(fid.compute()), "kid_inception": float(kid_mean), "kid_inception_std": float(kid_std),
            "inception_score": float(is_mean), "inception_score_std": float(is_std)}


def _psnr_from_mse(mse: float) -> float:
    return float("inf") if mse == 0 else 10 * float(np.log10(4.0 / mse))


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
                       seed: int = 0) -> dict:
    """Score a PyTorch model's generator (used by the trainer's --eval-every)."""
    import dataclasses

    from genforge.core.inputs import signature_of, torch_inputs
    from genforge.core.model import eval_mode
    from genforge.core.trainer import generate

    config = dataclasses.asdict(train_config) if dataclasses.is_dataclass(train_config) else dict(train_config)
    z, labels = torch_inputs(*signature_of(model).inputs(n=n, seed=seed), device=device)
    images = in_chunks(lambda zc, lc: generate(model.generator(), zc, lc).cpu(), z, labels)
    reference = reference_for(config)
    data = EvalInput(images, labels.cpu().long() if labels is not None else None, reference, model)
    with eval_mode(model):
        return run_metrics(metrics or ["fd"], data, what_applies(reference, capabilities(model)))


def evaluate_target(target, checkpoint=None, ema=False, n=2000, metrics=None, dataset_from=None, seed=0,
                    options=None) -> dict:
    """`genforge evaluate`: a run directory or an .onnx, through the same code."""
    from genforge.core.run import read_run_config
    from genforge.exporters import runtime

    target = Path(target)
    generator = runtime.load(target, checkpoint=checkpoint, ema=ema)
    if target.is_dir():
        record, model = read_run_config(target), generator.loaded.model
        offered = capabilities(model)
    else:  # an exported generator has no encoder: only what its inputs say
        model, offered = None, {"conditional"} if generator.conditional else set()
        if dataset_from is not None:
            record = read_run_config(dataset_from)
        elif generator.metadata.get("dataset"):  # an exported file names its dataset, size and channels
            channels, size, _ = generator.image_shape
            record = {"train": {"dataset": generator.metadata["dataset"], "image_size": size,
                                "channels": channels, "data_dir": None}}
        else:
            raise UserError(f"{target} names no dataset in its metadata; pass --dataset-from RUN_DIR")
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    for name in names or ():
        get_registry().get("metrics", name)
    reference = reference_for(record["train"])
    z, labels = generator.prepare_inputs(n=n, seed=seed)
    images = in_chunks(lambda zc, lc: torch.from_numpy(generator.run(zc, lc)), z, labels)
    data = EvalInput(images, torch.from_numpy(labels).long() if labels is not None else None, reference, model,
                     options or {})
    return run_metrics(names, data, what_applies(reference, offered))


def in_chunks(generate_fn, z, labels, size: int = 500) -> torch.Tensor:
    """Generate from noise (and labels) a chunk at a time; the images concatenated."""
    return torch.cat([generate_fn(z[i:i + size], None if labels is None else labels[i:i + size])
                      for i in range(0, len(z), size)])
