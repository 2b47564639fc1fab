"""genforge: train image generators, export them to ONNX and TensorRT, benchmark them.

The package is made of four folders of the repository, mapped in pyproject.toml:
genforge.core, genforge.plugins, genforge.exporters and genforge.benchmarks.
"""

__version__ = "0.1.0"

from genforge.core.hookspecs import hookimpl  # noqa: E402  (plugin authors: `from genforge import hookimpl`)

__all__ = ["__version__", "hookimpl"]
