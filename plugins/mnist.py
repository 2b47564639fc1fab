"""MNIST and Fashion-MNIST from the standard IDX files (gzipped or not) in --data-dir.

Looked for in DATA_DIR, DATA_DIR/MNIST/raw and DATA_DIR/FashionMNIST/raw (torchvision's
layout). With --download and torchvision installed, torchvision fetches them first.
"""

import gzip
from pathlib import Path

import numpy as np
import torch

from genforge.core.data import DataInfo, ImageTensorDataset, check_split, images_from_array
from genforge.core.errors import UserError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")
IDX_TYPES = {0x08: np.uint8}


def read_idx(path: Path, expected_dims: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"{path} is not a readable IDX file ({exc}); download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES or data[3] != expected_dims:
        raise UserError(f"{path} is not an IDX file with {expected_dims} dimension(s) of uint8; check the file name")
    header = 4 + 4 * expected_dims
    if len(data) < header:
        raise UserError(f"{path} is truncated (header incomplete); download it again")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(expected_dims))
    size = int(np.prod(shape))
    if len(data) - header < size:
        raise UserError(f"{path} is truncated ({len(data) - header} of {size} bytes); download it again")
    return np.frombuffer(data, dtype=np.uint8, count=size, offset=header).reshape(shape).copy()


def find_file(data_dir: Path, stem: str, subdir: str) -> Path | None:
    for folder in (data_dir, data_dir / subdir / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _download(data_dir: Path, dataset_class: str) -> None:
    try:
        import torchvision.datasets as tvd  # lazy: torchvision is an optional extra
    except ImportError:
        raise UserError("--download needs torchvision: pip install 'genforge[vision]'") from None
    for train in (True, False):
        getattr(tvd, dataset_class)(str(data_dir), train=train, download=True)


def _load(name, subdir, classes, split, image_size, channels, data_dir, download):
    check_split(split)
    if data_dir is None:
        raise UserError(f"{name} needs --data-dir: a folder holding {', '.join(FILES[split])} (optionally .gz)")
    data_dir = Path(data_dir).expanduser()
    if download:
        _download(data_dir, subdir)
    image_stem, label_stem = FILES[split]
    image_path, label_path = find_file(data_dir, image_stem, subdir), find_file(data_dir, label_stem, subdir)
    if image_path is None or label_path is None:
        missing = [s for s, p in ((image_stem, image_path), (label_stem, label_path)) if p is None]
        raise UserError(f"{name}: put {' and '.join(missing)} (or .gz) in {data_dir}, or pass --download "
                        "with torchvision")
    images, labels = read_idx(image_path, 3), read_idx(label_path, 1)
    if len(images) != len(labels):
        raise UserError(f"{image_path.name} has {len(images)} images but {label_path.name} has {len(labels)} labels")
    tensor = images_from_array(images, image_size, channels)
    sizes = {split: len(images)}
    info = DataInfo(name, tensor.shape[1], image_size, image_size, 10, classes, sizes)
    return ImageTensorDataset(tensor, torch.from_numpy(labels.astype(np.int64))), info


def load_mnist(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    return _load("mnist", "MNIST", tuple(str(i) for i in range(10)), split, image_size, channels, data_dir, download)


def load_fashion_mnist(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    return _load("fashion-mnist", "FashionMNIST", FASHION_CLASSES, split, image_size, channels, data_dir, download)
