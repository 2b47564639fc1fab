"""The 'template-data' dataset: procedural bars (2 classes), a starting point to replace with yours.

The dataset contract is in genforge's docs/plugins.md: load(...) returns (dataset, DataInfo),
items are (float image in [-1, 1], int label).
"""

import torch

from genforge import DataInfo, ImageTensorDataset, check_split

CLASSES = ("horizontal", "vertical")
SPLIT_SIZES = {"train": 512, "test": 128}


def load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    check_split(split)
    n = SPLIT_SIZES[split]
    generator = torch.Generator().manual_seed(seed * 2 + (split == "test"))
    labels = torch.randint(0, len(CLASSES), (n,), generator=generator)
    width = torch.randint(2, max(3, image_size // 4), (n, 1, 1), generator=generator)
    rows = torch.arange(image_size).view(1, image_size, 1)
    bars = (rows // width % 2).expand(n, image_size, image_size).clone()
    bars[labels == 1] = bars[labels == 1].transpose(1, 2)
    images = (bars * 255).to(torch.uint8)[:, None].repeat(1, channels or 1, 1, 1)
    info = DataInfo("template-data", channels or 1, image_size, image_size, len(CLASSES), CLASSES, dict(SPLIT_SIZES))
    return ImageTensorDataset(images, labels), info
