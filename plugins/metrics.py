"""Built-in quality metrics: each takes an EvalInput (core/evaluation/metrics.py) and returns a dict of floats.

fd and kid score in the space of genforge's feature classifier (core/evaluation/features.py), cond_acc
classifies conditional samples, neg_elbo uses a model's optional negative_elbo/reconstruct
(see the model contract in core/model.py), inception uses torch-fidelity's Inception-v3
weights from a file the user supplies.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from genforge.core.data import image_batches
from genforge.core.errors import UserError
from genforge.core.evaluation.features import (
    classifier_of,
    classify_accuracy,
    images_of,
    test_images,
)
from genforge.core.evaluation.metrics import (
    CHUNK,
    EvalInput,
    check_images,
    fd_reference_points,
    frechet_distance,
    kernel_distance,
)
from genforge.core.model import call_with_labels, capabilities
from genforge.core.runs.checkpoint import check_weights_file


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


def check_inception(options: dict) -> str:
    """The Inception-v3 weights file the options name, checked (a plain weights file), and torch-fidelity there."""
    path = options.get("inception_weights") or os.environ.get("GENFORGE_INCEPTION_WEIGHTS")
    if not path:
        raise UserError("inception metrics need --inception-weights FILE (torch-fidelity's Inception-v3 "
                        "weights, pt_inception-2015-12-05); genforge downloads nothing")
    if not Path(path).is_file():
        raise UserError(f"inception weights file {path} does not exist")
    check_weights_file(path, "inception weights file")
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        raise UserError("inception metrics need torch-fidelity: pip install 'genforge[inception]'") from None
    return path


@torch.no_grad()
def metric_inception(data: EvalInput) -> dict:
    """Standard FID, KID and IS on Inception-v3 features, from a weights file the user supplies."""
    path = check_inception(data.options)
    from torchmetrics.image.fid import FrechetInceptionDistance  # lazy: torchmetrics takes about 1 s to import
    from torchmetrics.image.inception import InceptionScore  # lazy: see above
    from torchmetrics.image.kid import KernelInceptionDistance  # lazy: see above

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


