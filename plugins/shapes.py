"""Procedural coloured shapes on a dark background: 4 classes, any size, deterministic by seed.

Class = shape (circle, square, triangle, cross); colour, size and position vary.
Train has 2,048 images, test 512; the test split uses a different seed stream.
"""

import numpy as np
import torch

from genforge.core.data import DataInfo, ImageTensorDataset, check_split, convert_channels

CLASSES = ("circle", "square", "triangle", "cross")
SPLIT_SIZES = {"train": 2048, "test": 512}


def render(n: int, image_size: int, rng: np.random.Generator):
    labels = rng.integers(0, len(CLASSES), n)
    radius = rng.uniform(0.18, 0.32, n)[:, None, None]
    cx = rng.uniform(0.35, 0.65, n)[:, None, None]
    cy = rng.uniform(0.35, 0.65, n)[:, None, None]
    colour = rng.uniform(0.35, 1.0, (n, 3))
    background = rng.uniform(0.0, 0.15, (n, 3))
    grid = (np.arange(image_size) + 0.5) / image_size
    x, y = grid[None, None, :] - cx, grid[None, :, None] - cy
    masks = np.stack([
        x**2 + y**2 <= radius**2,
        np.maximum(abs(x), abs(y)) <= radius * 0.85,
        (y <= radius * 0.8) & (y >= -radius) & (abs(x) <= (y + radius) * 0.6),
        (np.minimum(abs(x), abs(y)) <= radius * 0.3) & (np.maximum(abs(x), abs(y)) <= radius),
    ])
    mask = masks[labels, np.arange(n)]
    pixels = np.where(mask[..., None], colour[:, None, None, :], background[:, None, None, :])
    images = (pixels * 255).round().astype(np.uint8).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64))


def load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    check_split(split)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    images, labels = render(SPLIT_SIZES[split], image_size, rng)
    images = convert_channels(images, channels or 3)
    info = DataInfo("shapes", images.shape[1], image_size, image_size, len(CLASSES), CLASSES, dict(SPLIT_SIZES))
    return ImageTensorDataset(images, labels), info
