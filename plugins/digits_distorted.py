"""scikit-learn's digits made harder, offline: each digit drawn at 28x28 five times under a random affine
distortion (rotation up to 20 degrees, scale 0.8-1.15, shear up to 0.25, shift up to 3 pixels) with a
light blur, a stand-in for real handwriting (thicker and thinner strokes, slanted, off-centre).

Train: the 1,437 train digits x 5 = 7,185 images; test: the 360 test digits x 5 = 1,800 (the digits
split of plugins/digits.py, so no test digit is seen in training). Deterministic: the distortions
come from a fixed seed per split, whatever `seed` the run uses.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from genforge.core.data import DataInfo, ImageTensorDataset, check_split, images_from_array

NATIVE = 28
COPIES = 5


def distort(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """float (N, 1, S, S) in [0, 1] -> the same under one random affine map each, bilinear."""
    n = len(images)

    def uniform(low, high):
        return torch.rand(n, generator=generator) * (high - low) + low

    angle = uniform(-20, 20) * math.pi / 180
    scale = uniform(0.8, 1.15)
    shear = uniform(-0.25, 0.25)
    shift = uniform(-3, 3), uniform(-3, 3)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, shift[0] * 2 / NATIVE], 1),
                         torch.stack([sin, cos, shift[1] * 2 / NATIVE], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    blur = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).view(1, 1, 3, 3) / 16
    return F.conv2d(warped, blur, padding=1).clamp(0, 1)


def load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    from sklearn.datasets import load_digits  # lazy: scikit-learn takes about 0.5 s to import

    check_split(split)
    digits = load_digits()
    test = np.arange(len(digits.images)) % 5 == 0
    keep = test if split == "test" else ~test
    base = torch.from_numpy(digits.images[keep].astype(np.float32) / 16.0).unsqueeze(1)
    base = F.interpolate(base, size=(20, 20), mode="bilinear", align_corners=False)
    base = F.pad(base, (4, 4, 4, 4))  # 20x20 digit in a 28x28 frame, as MNIST is
    generator = torch.Generator().manual_seed(1 if split == "test" else 0)
    images = torch.cat([distort(base, generator) for _ in range(COPIES)])
    pixels = (images.squeeze(1).numpy() * 255).round().astype(np.uint8)
    tensor = images_from_array(pixels, image_size, channels)
    labels = torch.from_numpy(np.tile(digits.target[keep], COPIES).astype(np.int64))
    sizes = {"train": int((~test).sum()) * COPIES, "test": int(test.sum()) * COPIES}
    info = DataInfo("digits-distorted", tensor.shape[1], image_size, image_size, 10, tuple(map(str, range(10))), sizes)
    return ImageTensorDataset(tensor, labels), info
