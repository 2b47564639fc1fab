"""Restoration from Python and the CLI: `genforge sample TARGET --input DIR --out DIR` (genforge.restore) restores
every image in a folder; `genforge sample RUN` of a restoration run shows damaged | restored | clean test images.

Each image file in DIR is its `image` input (converted to the model's channels and resized to its size);
each other input X is read from the file beside it named STEM.X.SUFFIX (for a mask: white where the
pixel is known, black in the hole). The restored images are written to --out under their own names as
PNG, each file atomically; a name that is already there is refused unless overwrite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genforge.app.results import Samples
from genforge.core import runtime
from genforge.core.arguments import flag, path_of, whole
from genforge.core.compute import settle
from genforge.core.errors import UserError
from genforge.core.files import IMAGE_SUFFIXES, atomic_path
from genforge.core.limits import MAX_SEED
from genforge.core.restore import MASK_NAME

BATCH = 64


def image_files(folder: Path, other_inputs: list[str]) -> list[Path]:
    """The folder's images in name order, without the files that hold the other inputs (STEM.X.SUFFIX)."""
    if not folder.is_dir():
        raise UserError(f"--input {folder} is not a folder; give a folder of images to restore")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(p.stem.endswith(f".{name}") for name in other_inputs))
    if not found:
        raise UserError(f"--input {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return found


def read_input(path: Path, shape: tuple[int, int, int], is_mask: bool) -> np.ndarray:
    """One file as a (C, H, W) float32 input: an image in [-1, 1], or a mask of 0 and 1."""
    from PIL import Image, UnidentifiedImageError

    channels, height, width = shape
    try:
        with Image.open(path) as picture:
            picture = picture.convert("L" if channels == 1 or is_mask else "RGB")
            resample = Image.NEAREST if is_mask else Image.BICUBIC
            pixels = np.asarray(picture.resize((width, height), resample), dtype=np.float32)
    except (OSError, UnidentifiedImageError) as exc:
        raise UserError(f"cannot read {path} as an image ({type(exc).__name__}); fix or remove it") from None
    pixels = pixels.reshape(height, width, -1).transpose(2, 0, 1)
    return (pixels > 127).astype(np.float32) if is_mask else pixels / 127.5 - 1


def companion(image: Path, name: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        candidate = image.with_name(f"{image.stem}.{name}{suffix}")
        if candidate.is_file():
            return candidate
    what = "white where the pixel is known, black in the hole" if name == MASK_NAME else "the same size"
    raise UserError(f"{image.name} has no {name}: add {image.stem}.{name}.png beside it ({what})")


def restore_folder(generator, folder: Path, out: Path, seed: int = 0, overwrite: bool = False) -> list[Path]:
    """Every image in `folder` restored by `generator` (a runtime) into `out`; the files written."""
    from PIL import Image

    from genforge.core.data import to_uint8

    specs = generator.signature.images
    if not specs:
        raise UserError("--input is for restoration models (image inputs); this generator takes only noise: drop "
                        "--input")
    others = [s.name for s in specs[1:]]
    files = image_files(Path(folder), others)
    out = Path(out)
    targets = [out / f"{f.stem}.png" for f in files]
    if not overwrite:
        taken = [t for t in targets if t.exists()]
        if taken:
            raise UserError(f"{taken[0]} exists ({len(taken)} of the outputs do); pass --overwrite to replace them")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for start in range(0, len(files), BATCH):
        chunk = files[start:start + BATCH]
        named = {spec.name: np.stack([read_input(f if i == 0 else companion(f, spec.name), spec.shape,
                                                 spec.name == MASK_NAME) for f in chunk])
                 for i, spec in enumerate(specs)}
        import torch

        restored = to_uint8(torch.from_numpy(generator.generate(seed=seed + start, **named))).numpy()
        for pixels, target in zip(restored, targets[start:start + BATCH]):
            picture = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
            with atomic_path(target) as tmp:
                picture.save(tmp, format="PNG")
            written.append(target)
    return written


def restoration_samples(generator, target, n: int, seed: int) -> Samples:
    """A restoration run's samples: n of its test images damaged, restored and clean, in three rows."""
    import torch

    from genforge.core.restore import comparison_grid

    loaded = getattr(generator, "loaded", None)
    if loaded is None:
        raise UserError(f"{target} restores images and has none of its own to show: pass input=DIR (--input DIR) "
                        "with the images to restore, or sample its run directory")
    arrays = generator.example_images(n, seed)
    restored = generator.generate(seed=seed, **dict(zip((i.name for i in generator.inputs), arrays)))
    clean = generator.feeds.clean(n, seed)  # the images example_images degraded
    inputs = tuple(torch.from_numpy(a) for a in arrays)
    images, nrow, captions = comparison_grid(loaded.model, inputs, torch.from_numpy(restored), clean)
    return Samples(images.numpy(), None, [], nrow, tile_captions=captions)


def restore(target, input, out, seed: int = 0, checkpoint=None, ema=None, provider: str = "cpu",
            overwrite: bool = False, sampling: dict | None = None, threads: int | None = None) -> list[Path]:
    """A restoration model (run directory, .onnx or .engine) restores every image in the folder `input` into the
    folder `out`, under their own names; its other inputs (a mask) beside each image as NAME.mask.png.
    threads: None for the free cores."""
    target, input, out = path_of(target, "target"), path_of(input, "input"), path_of(out, "out")
    seed, overwrite = whole(seed, "seed", 0, MAX_SEED), flag(overwrite, "overwrite")
    compute = settle(threads)
    generator = runtime.load(target, provider=provider, checkpoint=checkpoint, ema=ema, sampling=sampling,
                             threads=compute.threads)
    return restore_folder(generator, input, out, seed, overwrite)
