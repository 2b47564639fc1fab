"""Quality metrics that work offline and reproduce.

Features come from a small CNN classifier that genforge trains on the dataset's train
split and caches (GENFORGE_CACHE, default ~/.cache/genforge/classifiers), keyed by dataset,
image size and channels; its test accuracy is reported beside every score. Fréchet
distance (FD) and KID are computed by torchmetrics on those features. Every FD comes with
its two reference points, computed the same way: the floor FD(train, test) and the
ceiling FD(uniform noise, test).

With an Inception weights file supplied by the user (--inception-weights, a torchvision
Inception-v3 state dict), standard FID/KID/IS on Inception features; nothing downloads.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from genforge.core.data import DataInfo, ImageTensorDataset, open_dataset
from genforge.core.errors import UserError

MIN_SAMPLES = 10


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
    test: ImageTensorDataset
    train: ImageTensorDataset
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
            images, labels = train.batch(order[start:start + batch])
            images = images + 0.05 * torch.randn_like(images)  # a little noise: features robust to GAN speckle
            loss = nn.functional.cross_entropy(model.logits(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model, classify_accuracy(model, test.batch(torch.arange(len(test))))


@torch.no_grad()
def classify_accuracy(model, batch) -> float:
    images, labels = batch
    predictions = torch.cat([model.logits(chunk).argmax(1) for chunk in images.split(512)])
    return float((predictions == labels).float().mean())


def load_reference(train_config: dict) -> Reference:
    """Test split and feature classifier for a run's dataset (trained once, then cached)."""
    from safetensors.torch import load_file, save_file

    name, size = train_config["dataset"], train_config["image_size"]
    kwargs = dict(image_size=size, channels=train_config.get("channels"), data_dir=train_config.get("data_dir"),
                  seed=train_config.get("seed", 0))
    train, info = open_dataset(name, "train", **kwargs)
    test, _ = open_dataset(name, "test", **kwargs)
    if not isinstance(test, ImageTensorDataset):
        raise UserError(f"evaluation needs a dataset held in memory (ImageTensorDataset); {name} is not one")
    key = f"{name}-{size}px-{info.channels}ch"
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


@torch.no_grad()
def frechet_distance(a: torch.Tensor, b: torch.Tensor, features: nn.Module) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=features, normalize=False)
    for chunk in a.split(500):
        metric.update(chunk.float(), real=True)
    for chunk in b.split(500):
        metric.update(chunk.float(), real=False)
    return float(metric.compute())


@torch.no_grad()
def kernel_distance(a: torch.Tensor, b: torch.Tensor, features: nn.Module) -> tuple[float, float]:
    from torchmetrics.image.kid import KernelInceptionDistance

    import warnings

    subset = min(len(a), len(b), 500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns that it keeps the features: here at most a few MB
        metric = KernelInceptionDistance(feature=features, subsets=20, subset_size=subset, normalize=False)
    for chunk in a.split(500):
        metric.update(chunk.float(), real=True)
    for chunk in b.split(500):
        metric.update(chunk.float(), real=False)
    mean, std = metric.compute()
    return float(mean), float(std)


def test_images(reference: Reference) -> torch.Tensor:
    return reference.test.batch(torch.arange(len(reference.test)))[0]


def fd_reference_points(reference: Reference) -> dict:
    """floor = FD(train, test); ceiling = FD(uniform noise, test)."""
    if "fd_floor" not in reference.extras:
        test = test_images(reference)
        train = reference.train.batch(torch.arange(len(reference.train)))[0]
        noise = torch.rand(len(test), *test.shape[1:], generator=torch.Generator().manual_seed(0)) * 2 - 1
        reference.extras["fd_floor"] = frechet_distance(test, train, reference.classifier)
        reference.extras["fd_ceiling"] = frechet_distance(test, noise, reference.classifier)
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
    mean, std = kernel_distance(test_images(data.reference), data.images, classifier_of(data.reference))
    return {"kid": mean, "kid_std": std}


@torch.no_grad()
def metric_cond_acc(data: EvalInput) -> dict:
    if data.labels is None:
        raise UserError("cond_acc needs a conditional model (one that takes labels)")
    return {"cond_acc": classify_accuracy(classifier_of(data.reference), (data.images, data.labels.long()))}


@torch.no_grad()
def metric_vae(data: EvalInput) -> dict:
    model = data.model
    if model is None or not hasattr(model, "negative_elbo"):
        raise UserError("neg_elbo needs a VAE run directory (it uses the encoder)")
    test = test_images(data.reference)
    noise = torch.randn((len(test), model.config.latent_dim), generator=torch.Generator().manual_seed(0))
    terms = model.negative_elbo(test, noise)
    recon = torch.cat([model.reconstruct(chunk) for chunk in test.split(500)])
    mean_image = data.reference.train.batch(torch.arange(len(data.reference.train)))[0].mean(0, keepdim=True)
    return {"neg_elbo": float(terms["neg_elbo"]), "recon_psnr": _psnr(test, recon),
            "mean_image_psnr": _psnr(test, mean_image.expand_as(test))}


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
    real, fake = _inception_uint8(test_images(data.reference)), _inception_uint8(data.images)
    fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(path))
    kid = KernelInceptionDistance(feature=2048, subset_size=min(len(real), len(fake), 1000),
                                  feature_extractor_weights_path=str(path))
    inception_score = InceptionScore(feature_extractor_weights_path=str(path))
    for metric in (fid, kid):
        for chunk in real.split(200):
            metric.update(chunk, real=True)
        for chunk in fake.split(200):
            metric.update(chunk, real=False)
    for chunk in fake.split(200):
        inception_score.update(chunk)
    kid_mean, kid_std = kid.compute()
    is_mean, is_std = inception_score.compute()
    return {"fid": float(fid.compute()), "kid_inception": float(kid_mean), "kid_inception_std": float(kid_std),
            "inception_score": float(is_mean), "inception_score_std": float(is_std)}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(torch.log10(torch.tensor(4.0 / mse)))


def default_metrics(conditional: bool, family: str) -> list[str]:
    names = ["fd", "kid"]
    if conditional:
        names.append("cond_acc")
    if family == "vae":
        names.append("neg_elbo")
    return names


def run_metrics(names: list[str], data: EvalInput) -> dict:
    from genforge.core.registry import get_registry

    registry = get_registry()
    scores: dict = {"classifier_test_accuracy": data.reference.accuracy, "n": len(data.images)}
    for name in names:
        scores.update(registry.get("metrics", name).load()(data))
    return scores


@torch.no_grad()
def evaluate_generator(model, info: DataInfo, train_config, n: int = 1000, metrics=None, device="cpu",
                       seed: int = 0) -> dict:
    """Score a PyTorch model's generator (used by the trainer's --eval-every)."""
    import dataclasses

    from genforge.core.model import eval_mode
    from genforge.core.trainer import generate

    config = dataclasses.asdict(train_config) if dataclasses.is_dataclass(train_config) else dict(train_config)
    metrics = metrics or ["fd"]
    z = model.sample_noise(n, torch.Generator().manual_seed(seed)).to(device)
    labels = (torch.arange(n, dtype=torch.int32) % info.num_classes).to(device) if model.conditional else None
    images = in_chunks(lambda zc, lc: generate(model.generator(), zc, lc).cpu(), z, labels)
    data = EvalInput(images, labels.cpu() if labels is not None else None, reference_for(config), model)
    with eval_mode(model):
        return run_metrics(metrics, data)


def evaluate_target(target, checkpoint=None, ema=False, n=2000, metrics=None, dataset_from=None, seed=0,
                    options=None) -> dict:
    """`genforge evaluate`: a run directory or an .onnx, through the same code."""
    from genforge.core.registry import get_registry
    from genforge.core.run import read_run_config
    from genforge.exporters import runtime

    target = Path(target)
    generator = runtime.load(target, checkpoint=checkpoint, ema=ema)
    if target.is_dir():
        record, model = read_run_config(target), generator.loaded.model
        family = get_registry().model(record["train"]["model"]).family
    else:  # no encoder in an exported generator, so no ELBO: GAN-style metrics only
        model, family = None, "gan"
        if dataset_from is not None:
            record = read_run_config(dataset_from)
        else:  # an exported file names its dataset, size and channels in its metadata
            channels, size, _ = generator.image_shape
            record = {"train": {"dataset": generator.metadata.get("dataset", "digits"), "image_size": size,
                                "channels": channels, "data_dir": None}}
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else default_metrics(
        generator.conditional, family)
    for name in names:
        get_registry().get("metrics", name)
    reference = reference_for(record["train"])
    z, labels = generator.prepare_inputs(n=n, seed=seed)
    images = in_chunks(lambda zc, lc: torch.from_numpy(generator.run(zc, lc)), z, labels)
    data = EvalInput(images, torch.from_numpy(labels).long() if labels is not None else None, reference, model,
                     options or {})
    return run_metrics(names, data)


def in_chunks(generate_fn, z, labels, size: int = 500) -> torch.Tensor:
    """Generate from noise (and labels) a chunk at a time; the images concatenated."""
    return torch.cat([generate_fn(z[i:i + size], None if labels is None else labels[i:i + size])
                      for i in range(0, len(z), size)])
