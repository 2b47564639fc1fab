"""The runtime base: one generate() API over every kind of generator.

Every runtime (pytorch.py for run directories, onnx.py for .onnx, tensorrt.py for .engine) says
what its generator takes (`signature`) and makes (`image_shape`), and implements `run(z, labels)`.
Inputs are drawn or checked in one place (core/inputs.py), so every runtime gives the same images
for the same seed. load.py picks the runtime for a path.
"""

from __future__ import annotations

import json
import math

import numpy as np

from genforge.core.errors import UserError
from genforge.core.inputs import GeneratorSignature, ImageInput
from genforge.core.limits import MAX_SAMPLE_ELEMENTS, check_generation, check_seed
from genforge.core.numerics import check_output_values

DEVICES = ("cpu", "cuda")


class GeneratorRuntime:
    """What every runtime shares: input checking and noise/label defaults."""

    signature: GeneratorSignature
    image_shape: tuple[int, int, int]
    metadata: dict

    def __repr__(self) -> str:
        """One line: what it runs, what it takes and what it makes (genforge.load's value in a REPL)."""
        classes = f", {self.num_classes} classes" if self.conditional else ""
        loaded = getattr(self, "loaded", None)  # a run directory's runtime: the checkpoint it loaded
        source = loaded.checkpoint if loaded is not None else getattr(self, "path", None)
        takes = "".join(f", {i.name} {tuple(i.shape)}" for i in self.signature.images)
        return (f"{type(self).__name__}({str(source)!r}: noise {tuple(self.latent_shape)}{classes}{takes} -> images "
                f"{tuple(self.image_shape)})")

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return self.signature.latent_shape

    @property
    def num_classes(self) -> int | None:
        return self.signature.num_classes

    @property
    def conditional(self) -> bool:
        return self.signature.conditional

    @property
    def class_names(self) -> list[str]:
        """The classes' names (from the run's data or the file's metadata); numbers when none were recorded."""
        names = getattr(self, "_class_names", None)
        if names is None:
            try:
                names = json.loads(self.metadata.get("class_names") or "[]")
            except (TypeError, ValueError):
                names = []
        if not isinstance(names, list) or len(names) != (self.num_classes or 0):
            names = [str(i) for i in range(self.num_classes or 0)]
        return [str(name) for name in names]

    def prepare_inputs(self, n=None, z=None, labels=None, seed=None) -> tuple[np.ndarray, np.ndarray | None]:
        """Noise and labels drawn (or checked) as everywhere in genforge (core/inputs.py)."""
        return self.signature.inputs(n=n, z=z, labels=labels, seed=seed)

    def generate(self, n=None, z=None, labels=None, seed=None, **images) -> np.ndarray:
        """float32 NCHW images in [-1, 1]: from `n` and `seed`, or from your own `z` (and labels). A restoration
        model takes its image inputs by name too (`generate(image=..., mask=...)`; see `inputs`), and n follows
        them. Requests that cannot fit in memory, and outputs that are NaN, Inf or far outside [-1, 1], are
        one-line errors."""
        if seed is not None and isinstance(seed, int) and not isinstance(seed, bool):
            check_seed(seed)
        if self.signature.restores and n is None and z is None:
            first = images.get(self.signature.images[0].name)
            n = len(first) if first is not None and np.ndim(first) == 4 else 1
        count = len(z) if z is not None and hasattr(z, "__len__") else n
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            check_generation(count, math.prod(self.latent_shape), math.prod(self.image_shape))
        z, labels = self.prepare_inputs(n, z, labels, seed)
        image_inputs = self.signature.image_inputs(images, len(z))
        images = self.run(z, labels, image_inputs)
        check_output_values(images, f"{self.metadata.get('model', 'the generator')}'s images")
        return images

    @property
    def inputs(self) -> tuple:
        """A restoration model's image inputs (ImageInput: name, shape, meaning); () for a noise-only generator."""
        return self.signature.images

    def run(self, z: np.ndarray, labels: np.ndarray | None, images: tuple = ()) -> np.ndarray:
        raise NotImplementedError


def read_generator_metadata(meta: dict, path) -> tuple[GeneratorSignature, tuple[int, int, int]]:
    """The signature and image shape an exported file's genforge metadata declares (ONNX or engine sidecar)."""
    try:
        latent_shape = json.loads(meta["latent_shape"])
        image_shape = json.loads(meta["image_shape"])
        num_classes = int(meta.get("num_classes") or 0) or None
        images = tuple(ImageInput(str(i["name"]), tuple(i["shape"]), str(i.get("meaning", "")))
                       for i in json.loads(meta.get("inputs") or "[]"))  # files from before image inputs: none
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path} has incomplete genforge metadata ({type(exc).__name__}: {exc}); "
                        "export it again") from None
    if not (_positive_ints(latent_shape) and _positive_ints(image_shape) and len(image_shape) == 3
            and (num_classes is None or num_classes >= 1)
            and all(_positive_ints(list(i.shape)) and len(i.shape) == 3 for i in images)):
        raise UserError(f"{path} has malformed genforge metadata (latent_shape {meta.get('latent_shape')}, "
                        f"image_shape {meta.get('image_shape')}, num_classes {meta.get('num_classes')}); "
                        "export it again")
    if max(math.prod(latent_shape), math.prod(image_shape)) > MAX_SAMPLE_ELEMENTS:
        raise UserError(f"{path} declares samples of {latent_shape} noise and {image_shape} images, more than "
                        f"{MAX_SAMPLE_ELEMENTS:,} values each; genforge does not run such files")
    return GeneratorSignature(tuple(latent_shape), num_classes, images), tuple(image_shape)


def _positive_ints(value) -> bool:
    return isinstance(value, list) and bool(value) and all(type(d) is int and d > 0 for d in value)
