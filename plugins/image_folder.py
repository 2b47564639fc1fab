"""Your own images: a folder of PNG, JPEG, WebP or BMP files.

Class subfolders become labels (sorted by name); a flat folder is unlabelled. Each image
is resized (shorter side) and centre-cropped to a square. Channels default to 3 unless
the first images are greyscale. The folder is decoded once, in worker processes, into a
uint8 cache that later commands read a batch at a time (core/image_cache.py): memory does
not grow with the image count. Unreadable files are skipped and reported once, when the
cache is built. The split is deterministic: every tenth file (sorted order) is the test
split when there are 20 or more.
"""

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from genforge.core.data import DataInfo, check_split
from genforge.core.errors import UserError
from genforge.core.image_cache import decode_files, file_tasks, files_key, open_cache, split_of

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def image_files(folder: Path, recursive: bool) -> list[str]:
    """The image files in `folder` (and below it) in path order, found with scandir (no stat call per file)
    and kept as strings (100,000 Path objects cost a second)."""
    found, pending = [], [str(folder)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if recursive and entry.is_dir():
                    pending.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in EXTENSIONS and entry.is_file():
                    found.append(entry.path)
    return sorted(found, key=lambda p: p.split(os.sep))  # Path's order


def find_images(root: Path):
    if not root.exists():
        raise UserError(f"data folder {root} does not exist; pass --data-dir pointing at a folder of images")
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass --data-dir pointing at a folder of images")
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders:
        classes = [d.name for d in subfolders]
        files = [(f, i) for i, d in enumerate(subfolders) for f in image_files(d, recursive=True)]
    else:
        classes = None
        files = [(f, -1) for f in image_files(root, recursive=False)]
    if not files:
        raise UserError(f"no images (PNG, JPEG, WebP, BMP) found in {root}")
    return files, classes


WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # 16-bit, 32-bit integer and float greyscale


def to_8_bit(image: Image.Image) -> Image.Image:
    """Greyscale of more than 8 bits scaled to 0..255 (PIL's convert would clip it: nearly white images)."""
    if image.mode not in WIDE_MODES:
        return image
    values = np.asarray(image, dtype=np.float64)
    top = 1.0 if image.mode == "F" and values.max(initial=0) <= 1.0 else 65535.0 if image.mode != "F" else values.max()
    return Image.fromarray(np.clip(np.round(values / max(top, 1e-12) * 255), 0, 255).astype(np.uint8), "L")


def read_square(path: Path, image_size: int, mode: str | None):
    with Image.open(path) as image:
        image.load()
        image = to_8_bit(ImageOps.exif_transpose(image))
        if mode is None:
            mode = "L" if image.mode in ("L", "LA", "1", "I;16", "I") else "RGB"
        return np.asarray(ImageOps.fit(image.convert(mode), (image_size, image_size), Image.Resampling.BICUBIC))


def load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    check_split(split)
    if data_dir is None:
        raise UserError("image-folder needs --data-dir pointing at a folder of images")
    root = Path(data_dir).expanduser()
    files, classes = find_images(root)
    if split == "test" and len(files) < 20:
        raise UserError(f"{root} has too few images for a test split (20 or more are needed)")
    mode = {1: "L", 3: "RGB", None: None}[channels]
    if mode is None:
        mode = "L" if all(_is_grey(f) for f, _ in files[:16]) else "RGB"
    folder, cached = open_cache(files_key(files, image_size, mode), file_tasks(files, image_size, mode, read_square),
                               decode_files, len(files), str(root))
    if not cached["count"]:
        raise UserError(f"none of the {len(files)} images in {root} could be read")
    split_test = len(files) >= 20
    dataset = split_of(folder, cached, lambda index: (index % 10 == 9) == (split == "test") if split_test
                       else np.ones(len(index), dtype=bool))
    n_test = len(split_of(folder, cached, lambda index: index % 10 == 9)) if split_test else 0
    if not len(dataset):
        raise UserError(f"no readable image is left for the {split} split of {root}")
    info = DataInfo("image-folder", dataset.shape[0], image_size, image_size, len(classes) if classes else None,
                    tuple(classes) if classes else None, {"train": cached["count"] - n_test, "test": n_test})
    return dataset, info


def _is_grey(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            return image.mode in ("L", "LA", "1", "I;16", "I")
    except Exception:  # noqa: BLE001  unreadable files are reported by the loader
        return True
