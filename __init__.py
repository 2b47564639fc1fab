"""genforge: train image generators, export them to ONNX and TensorRT, benchmark them.

The package is made of four folders of the repository, mapped in pyproject.toml:
genforge.core, genforge.plugins, genforge.exporters and genforge.benchmarks.

The plugin surface has one front door:

    from genforge import GeneratorModel, DataInfo, ImageTensorDataset, ModelSpec, DatasetSpec, StepContext, \\
        UserError, hookimpl

Names that need torch are imported on first use (module __getattr__), so `import genforge` and
`genforge --help` stay fast.
"""

__version__ = "0.1.0"

from genforge.core.errors import UserError  # noqa: E402
from genforge.core.hookspecs import hookimpl  # noqa: E402
from genforge.core.specs import BackendSpec, DatasetSpec, MetricSpec, ModelSpec  # noqa: E402

_LAZY = {  # name -> module that defines it (imports torch)
    "GeneratorModel": "genforge.core.model",
    "make_config": "genforge.core.model",
    "check_options": "genforge.core.model",
    "power_of_two_depth": "genforge.core.model",
    "POW2_SIZES": "genforge.core.model",
    "DataInfo": "genforge.core.data",
    "ImageTensorDataset": "genforge.core.data",
    "check_split": "genforge.core.data",
    "StepContext": "genforge.core.step",
}

__all__ = ["__version__", "hookimpl", "UserError", "ModelSpec", "DatasetSpec", "MetricSpec", "BackendSpec",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genforge' has no attribute {name!r}")
