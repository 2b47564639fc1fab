"""Digits behind a plain torch Dataset (installed as acme_data by tests/core/test_contract.py)."""
import torch

from genforge import DataInfo


class ListDataset(torch.utils.data.Dataset):
    """A plain Dataset (not genforge's ImageTensorDataset): items built on access."""

    def __init__(self, split, size, shift):
        from genforge.plugins.digits import load

        self.digits, _ = load(split=split, image_size=size)
        self.shift = shift

    def __len__(self):
        return len(self.digits)

    def __getitem__(self, index):
        image, label = self.digits[index]
        return (image * (1 - self.shift)).clamp(-1, 1), label


def load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    import os

    dataset = ListDataset(split, image_size, float(os.environ.get("ACME_SHIFT", "0")))
    info = DataInfo("acme-digits", 1, image_size, image_size, 10, tuple(map(str, range(10))))
    return dataset, info
