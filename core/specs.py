"""What a plugin registers: small frozen records with a lazy reference to the implementation.

Registering imports nothing heavy; `spec.load()` imports the implementation on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field


def import_object(reference: str):
    """Import "package.module:attr" and return attr."""
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise ValueError(f"implementation reference {reference!r} must look like 'package.module:attr'")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Spec:
    name: str
    impl: str
    description: str = ""
    plugin: str = ""  # set by the registry: the distribution (or built-in module) that registered it

    kind = "spec"

    def load(self):
        return import_object(self.impl)


@dataclass(frozen=True)
class ModelSpec(Spec):
    """A generator model. impl names a GeneratorModel subclass (see core/model.py)."""

    family: str = "gan"  # gan | vae
    conditional: bool = False  # the generator takes class labels
    needs_labels: bool = False  # training needs a labelled dataset
    image_sizes: tuple[int, ...] | None = None  # None: any size
    kind = "model"


@dataclass(frozen=True)
class DatasetSpec(Spec):
    """A dataset. impl names a function load(split, image_size, channels, data_dir, download, seed)."""

    labelled: bool = True
    offline: bool = True  # can run with no files and no network
    needs_data_dir: bool = False
    kind = "dataset"


@dataclass(frozen=True)
class MetricSpec(Spec):
    """A quality metric. impl names a function (see core/evaluate.py for its arguments)."""

    applies_to: tuple[str, ...] = field(default=("gan", "vae"))  # families; "conditional" for label metrics
    higher_is_better: bool = False
    kind = "metric"


@dataclass(frozen=True)
class BackendSpec(Spec):
    """A benchmark backend. impl names a class with available(target) and prepare(target, batch)."""

    targets: tuple[str, ...] = field(default=("run",))  # run | onnx | engine
    device: str = "cpu"
    kind = "backend"
