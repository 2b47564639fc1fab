"""What every dataset plugin returns: uint8 images, served as floats in [-1, 1].

A dataset plugin's implementation is a function

    load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0)
        -> (torch.utils.data.Dataset of (image, label), DataInfo)

Each item is (image, label): image float32 (C, H, W) in [-1, 1] with C, H, W as the DataInfo
says; label an int in 0..num_classes-1, or -1 for unlabelled data (num_classes None).
The function is called with keyword arguments; it raises genforge.core.errors.UserError
(one line, what to do) for bad input such as a missing data_dir. genforge checks the
result against this contract when it opens the dataset (core/contract.py).
Built-ins return an ImageTensorDataset, or for image folders a CachedImages
(core/image_cache.py); both serve whole batches at once through batch(indices) (the
trainer's fast path); any other Dataset works item by item.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from genforge.core.errors import UserError
from genforge.core.limits import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, check_channels


@dataclass(frozen=True)
class DataInfo:
    name: str
    channels: int
    height: int
    width: int
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    split_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.num_classes is not None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "channels": self.channels,
            "height": self.height,
            "width": self.width,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names) if self.class_names else None,
            "split_sizes": dict(self.split_sizes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> DataInfo:
        d = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
        d["class_names"] = tuple(d["class_names"]) if d.get("class_names") else None
        return cls(**d)


class ImageTensorDataset(torch.utils.data.Dataset):
    """uint8 NCHW images (and int64 labels, -1 when unlabelled) held in memory."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 NCHW tensor")
        self.images = images.contiguous()
        self.labels = labels.long() if labels is not None else torch.full((len(images),), -1, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        return to_float(self.images[index]), int(self.labels[index])

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return to_float(self.images[indices]), self.labels[indices]


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    return images_u8.float().mul_(2.0 / 255.0).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats to uint8 (for pictures)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def check_image_size(image_size: int) -> int:
    if not MIN_IMAGE_SIZE <= int(image_size) <= MAX_IMAGE_SIZE:
        raise UserError(f"image size {image_size} is not supported; use {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels")
    return int(image_size)


def convert_channels(images: torch.Tensor, channels: int | None) -> torch.Tensor:
    """uint8/float NCHW: 1->3 repeats the grey channel, 3->1 takes ITU-R 601 luma."""
    have = images.shape[1]
    if channels is None or channels == have:
        return images
    check_channels(channels)
    if have == 1 and channels == 3:
        return images.repeat(1, 3, 1, 1)
    if have == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        grey = (images.float() * weights).sum(1, keepdim=True)
        return grey.round().clamp(0, 255).to(images.dtype) if images.dtype == torch.uint8 else grey
    raise UserError(f"cannot convert {have}-channel images to {channels} channels")


def images_from_array(array: np.ndarray, image_size: int, channels: int | None) -> torch.Tensor:
    """uint8 N,H,W or N,H,W,C array (all the same size) -> uint8 NCHW at image_size (square)."""
    images = torch.from_numpy(np.ascontiguousarray(array))
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    images = convert_channels(images, channels)
    if images.shape[-2:] != (image_size, image_size):
        h, w = images.shape[-2:]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        images = images[..., top:top + side, left:left + side]
        resized = F.interpolate(images.float(), size=(image_size, image_size), mode="bilinear",
                                antialias=side > image_size, align_corners=False)
        images = resized.round().clamp(0, 255).to(torch.uint8)
    return images.contiguous()


def batch_of(dataset, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (float, NCHW) and int64 labels of `indices`, from any dataset of (image, label) items."""
    if callable(getattr(dataset, "batch", None)):  # ImageTensorDataset, core/image_cache.CachedImages
        return dataset.batch(indices)
    items = [dataset[int(i)] for i in indices]
    labels = torch.tensor([int(label) for _, label in items], dtype=torch.long)
    return torch.stack([image for image, _ in items]).float(), labels


def image_batches(dataset, size: int = 500):
    """The whole dataset in order, `size` items at a time: (images, labels) pairs (memory bounded)."""
    for start in range(0, len(dataset), size):
        yield batch_of(dataset, torch.arange(start, min(start + size, len(dataset))))


def check_split(split: str, splits=("train", "test")) -> str:
    if split not in splits:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(splits)}")
    return split
