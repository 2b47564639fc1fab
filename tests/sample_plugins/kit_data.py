"""The kit's dataset, into which the tests plant faults by text replacement."""
import torch

from genforge import DataInfo, ImageTensorDataset, check_split


def load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    check_split(split)
    n = 64 if split == "train" else 32
    generator = torch.Generator().manual_seed(seed + (split == "test"))
    images = torch.randint(0, 256, (n, channels or 1, image_size, image_size), generator=generator,
                           dtype=torch.uint8)
    labels = torch.arange(n) % 4
    return ImageTensorDataset(images, labels), DataInfo("kit-data", channels or 1, image_size, image_size, 4)
