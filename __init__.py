"""genforge: train image generators, export them to ONNX and TensorRT, benchmark them.

The package is made of five folders of the repository, mapped in pyproject.toml: genforge.core (the
kernel), genforge.plugins, genforge.exporters, genforge.benchmarks and genforge.app (the application).

The plugin surface has one front door:

    from genforge import GeneratorModel, DataInfo, ImageTensorDataset, ModelSpec, DatasetSpec, StepContext, \\
        UserError, hookimpl

with, for backend plugins, PreparedCall, load_run, signature_of and torch_inputs; for training,
Callback (core/training/callbacks.py) and Logger (core/training/loggers.py), with LoggerSpec.

The Python API is here too: train, Run, sample, evaluate, export, bench (app/api.py), run_pipeline
(app/pipeline.py), and load (core/runtime/load.py) for any artifact.

Names that need torch are imported on first use (module __getattr__), so `import genforge` and
`genforge --help` stay fast.
"""

__version__ = "0.1.0"

from genforge.core.backend import PreparedCall  # noqa: E402
from genforge.core.errors import GenforgeError, UserError  # noqa: E402
from genforge.core.hookspecs import hookimpl  # noqa: E402
from genforge.core.specs import BackendSpec, DatasetSpec, LoggerSpec, MetricSpec, ModelSpec  # noqa: E402

_LAZY = {  # name -> module that defines it (imports torch)
    "GeneratorModel": "genforge.core.model",
    "make_config": "genforge.core.model",
    "check_options": "genforge.core.model",
    "power_of_two_depth": "genforge.core.model",
    "POW2_SIZES": "genforge.core.model",
    "DataInfo": "genforge.core.data",
    "ImageTensorDataset": "genforge.core.data",
    "check_split": "genforge.core.data",
    "StepContext": "genforge.core.training.step",
    "convert_channels": "genforge.core.data",
    "signature_of": "genforge.core.inputs",
    "torch_inputs": "genforge.core.inputs",
    "ImageInput": "genforge.core.inputs",  # a restoration model's image inputs (core/restore.py)
    "load_run": "genforge.core.runs.run_dir",
    "Callback": "genforge.core.training.callbacks",
    "EarlyStopping": "genforge.core.training.callbacks",
    "LearningRateMonitor": "genforge.core.training.callbacks",
    "Logger": "genforge.core.training.loggers",
    "EvalInput": "genforge.core.evaluation.metrics",  # what a metric plugin's function receives
    "Reference": "genforge.core.evaluation.features",  # EvalInput.reference: the dataset side
    "load": "genforge.core.runtime.load",
    # the Python API (app/api.py): the CLI is a thin layer over it
    "train": "genforge.app.api",
    "Run": "genforge.app.api",
    "sample": "genforge.app.api",
    "restore": "genforge.app.restore_folder",
    "evaluate": "genforge.app.api",
    "export": "genforge.app.api",
    "bench": "genforge.app.api",
    "run_pipeline": "genforge.app.pipeline",
}

__all__ = ["__version__", "hookimpl", "UserError", "GenforgeError", "ModelSpec", "DatasetSpec", "MetricSpec",
           "BackendSpec", "LoggerSpec", "PreparedCall",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genforge' has no attribute {name!r}")
