"""Runtimes: one generate() API over a run directory (pytorch.py), an .onnx (onnx.py) and an .engine
(tensorrt.py); `load(path)` (load.py) picks the one for a path.

    from genforge.core import runtime
    images = runtime.load("model.onnx").generate(n=16, seed=0)
"""

from genforge.core.runtime.load import load

__all__ = ["load"]
