"""One runtime API for every artifact: a run directory, an .onnx file or a TensorRT .engine.

    import genforge
    g = genforge.load("model.onnx")           # or a run directory, or model.engine
    images = g.generate(n=16, seed=0)         # float32 NCHW numpy array in [-1, 1]

Noise is drawn as everywhere in genforge (core/inputs.py: standard normal from `seed`) unless
`z` is given; labels default to 0, 1, 2, ... modulo the number of classes for conditional
generators, so a run directory and its export give the same images for the same seed.
Loading an .onnx or .engine needs only its metadata: no model-plugin code is imported.
"""

from __future__ import annotations

from genforge.core.arguments import flag, options_dict, path_of, text
from genforge.core.errors import UserError
from genforge.core.precision import REFERENCE
from genforge.core.runtime.base import GeneratorRuntime
from genforge.core.runtime.pytorch import TorchRuntime
from genforge.core.targets import classify_target


def load(path, provider: str = "cpu", checkpoint=None, ema=None, device="cpu", precision=REFERENCE,
         sampling=None, threads: int | None = None) -> GeneratorRuntime:
    """Open a run directory (or one of its checkpoints), an .onnx or an .engine for generation. A run directory
    also runs in bf16 (precision="bf16") where the CPU has AVX-512 BF16 or AMX, or on CUDA, and takes new
    values for its model's sampling options (sampling={"steps": 10}). threads: ONNX Runtime's thread count
    (None: the free cores; a run directory computes with torch's, which `compute.settle()` sets)."""
    path = path_of(path, "path", optional=True)  # None: classify_target says what to give
    checkpoint = str(path_of(checkpoint, "checkpoint")) if checkpoint is not None else None
    ema = flag(ema, "ema", optional=True)
    text(provider, "provider"), text(precision, "precision")
    sampling = options_dict(sampling, "sampling")
    target = classify_target(path)
    if target.kind == "run":
        return TorchRuntime(target.path, checkpoint or target.checkpoint, ema, device, precision, sampling)
    if sampling:
        raise UserError(f"{path} carries its sampling options inside (they were fixed at export); export the run "
                        "again with --sampling to change them")
    if precision != REFERENCE:
        inside = "the ONNX graph" if target.kind == "onnx" else "the engine"
        raise UserError(f"{path} carries its precision inside ({inside}); precision={precision!r} applies to run "
                        "directories only")
    if target.kind == "onnx":
        from genforge.core.runtime.onnx import OnnxRuntime  # lazy: onnxruntime is a heavy optional import

        return OnnxRuntime(target.path, provider, threads)
    from genforge.core.runtime.tensorrt import EngineRuntime  # lazy: TensorRT is optional and GPU-only

    return EngineRuntime(target.path)
