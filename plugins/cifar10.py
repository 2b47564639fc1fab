"""CIFAR-10 through torchvision (pip install 'genforge[vision]'), from --data-dir or --download."""

from pathlib import Path

import numpy as np
import torch

from genforge.core.data import DataInfo, ImageTensorDataset, check_split, images_from_array
from genforge.core.errors import UserError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    check_split(split)
    try:
        from torchvision.datasets import CIFAR10  # lazy: torchvision is an optional extra
    except ImportError:
        raise UserError("cifar10 needs torchvision: pip install 'genforge[vision]'") from None
    if data_dir is None:
        raise UserError("cifar10 needs --data-dir (the folder holding cifar-10-batches-py, or where --download "
                        "puts it)")
    root = Path(data_dir).expanduser()
    try:
        data = CIFAR10(str(root), train=split == "train", download=download)
    except RuntimeError as exc:
        raise UserError(f"cifar10: {exc} (looked in {root}; pass --download to fetch it)") from None
    images = images_from_array(np.asarray(data.data), image_size, channels)
    labels = torch.tensor(data.targets, dtype=torch.long)
    info = DataInfo("cifar10", images.shape[1], image_size, image_size, 10, CLASSES, {"train": 50000, "test": 10000})
    return ImageTensorDataset(images, labels), info
