"""What a plugin registers: small frozen records with a lazy reference to the implementation.

Registering imports nothing heavy; `spec.load()` imports the implementation on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from genforge.core.errors import PluginError

# what a metric can ask of the model and data it scores (MetricSpec.applies_to)
METRIC_REQUIREMENTS = {
    "conditional": "a conditional generator",
    "labelled_data": "a labelled dataset (for the feature classifier)",
    "elbo": "a run directory of a model with negative_elbo()",
    "reconstruct": "a run directory of a model with reconstruct()",
    "restores": "a restoration model (image inputs and degrade())",
    "masked": "a restoration model with a mask input",
}
MODEL_KINDS = {"restores", "masked"}  # needs that say what kind of model a metric is for: unmet, not worth a note


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
    plugin_version: str = ""  # set by the registry: that distribution's version

    kind = "spec"

    def load(self):
        """The implementation; an import that fails names the plugin in one line."""
        try:
            return import_object(self.impl)
        except Exception as exc:  # noqa: BLE001  any error in a plugin's module is the plugin's
            raise PluginError(f"{self.kind} {self.name!r} from plugin {self.plugin or '?'} cannot be loaded: "
                              f"{self.impl!r} failed with {type(exc).__name__}: {' '.join(str(exc).split())}; "
                              "fix the plugin's "
                              "implementation reference or reinstall it") from None


@dataclass(frozen=True)
class ModelSpec(Spec):
    """A generator model. impl names a GeneratorModel subclass (see core/model.py).

    The class holds every fact about the model (conditional, image sizes, latent shape,
    capabilities). The optional claims below exist for plugins written before that rule;
    when given, each must agree with the class, or building the model fails naming the plugin.
    """

    family: str | None = None  # "gan" or "vae" (a vae must have negative_elbo)
    conditional: bool | None = None
    needs_labels: bool | None = None
    image_sizes: tuple[int, ...] | None = None
    kind = "model"


@dataclass(frozen=True)
class DatasetSpec(Spec):
    """A dataset. impl names a function load(split, image_size, channels, data_dir, download, seed)."""

    labelled: bool = True
    offline: bool = True  # can run with no files and no network
    kind = "dataset"


@dataclass(frozen=True)
class MetricSpec(Spec):
    """A quality metric. impl names a function taking an EvalInput (core/evaluation/metrics.py), returning floats.

    applies_to lists what the metric needs (keys of METRIC_REQUIREMENTS), all of them; a metric
    whose needs are not met is skipped with a note. default: computed when --metrics is not given.
    check: what the metric needs from its options (a weights file, say), tried before anything is generated.
    """

    applies_to: tuple[str, ...] = field(default=())
    higher_is_better: bool = False
    default: bool = True
    check: str = ""  # "package.module:function" taking the evaluation options, raising UserError before any work
    kind = "metric"

    def check_options(self, options: dict) -> None:
        if self.check:
            import_object(self.check)(options)

    def __post_init__(self):
        unknown = sorted(set(self.applies_to) - set(METRIC_REQUIREMENTS))
        if unknown:
            raise ValueError(f"metric {self.name!r}: applies_to {', '.join(unknown)} is unknown; "
                             f"use {', '.join(METRIC_REQUIREMENTS)}")


@dataclass(frozen=True)
class BackendSpec(Spec):
    """A benchmark backend. impl names a class with skip_reason(target) and prepare(target, batch, threads)."""

    targets: tuple[str, ...] = field(default=("run",))  # run | onnx | engine
    default: bool = True  # timed when --backend is not given (False: only when asked for by name)
    device: str = "cpu"
    kind = "backend"


@dataclass(frozen=True)
class LoggerSpec(Spec):
    """Where training results go. impl names a Logger subclass (core/training/loggers.py).

    requires: the modules it needs (checked before training, with install_hint in the error). files: what it
    writes in the run directory, which --overwrite may then replace with the run.
    """

    requires: tuple[str, ...] = field(default=())
    install_hint: str = ""
    files: tuple[str, ...] = field(default=())
    kind = "logger"
