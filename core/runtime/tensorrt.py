"""Run a TensorRT .engine behind the runtime API, from its JSON sidecar alone (TensorRT 10 and 11).

An engine runs only on the TensorRT version and GPU that built it; the sidecar (written by
exporters/tensorrt.py) records both, and a mismatch is refused with the command to rebuild.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genforge.core.errors import UserError
from genforge.core.files import read_json
from genforge.core.runtime.base import GeneratorRuntime, read_generator_metadata


def sidecar_path(engine: Path) -> Path:
    return engine.with_suffix(engine.suffix + ".json")


def read_sidecar(engine: Path) -> dict:
    path = sidecar_path(Path(engine))
    if not path.exists():
        raise UserError(f"{engine} has no sidecar {path.name}; build engines with `genforge export tensorrt`")
    sidecar = read_json(path, "engine sidecar", "rebuild the engine")
    if not isinstance(sidecar, dict) or not all(isinstance(k, str) for k in sidecar):
        raise UserError(f"engine sidecar {path} is damaged (not a table of settings); rebuild the engine")
    for key in ("tensorrt_version", "gpu", "latent_shape", "image_shape"):
        if key in sidecar and not isinstance(sidecar[key], str):
            raise UserError(f"engine sidecar {path} is damaged ({key} is {sidecar[key]!r}); rebuild the engine")
    profile = sidecar.get("profile", {})
    if not (isinstance(profile, dict) and all(isinstance(v, list) and v and all(type(d) is int and d > 0 for d in v)
                                              for v in profile.values())):
        raise UserError(f"engine sidecar {path} is damaged (its profile is not lists of sizes); rebuild the engine")
    return sidecar


def check_compatible(sidecar: dict, trt_version: str, gpu_name: str) -> None:
    """An engine runs only on the TensorRT version and GPU that built it."""
    if sidecar.get("tensorrt_version") != trt_version:
        raise UserError(f"engine built with TensorRT {sidecar.get('tensorrt_version')}, this is {trt_version}; "
                        "rebuild it with `genforge export tensorrt`")
    if sidecar.get("gpu") != gpu_name:
        raise UserError(f"engine built on {sidecar.get('gpu')}, this GPU is {gpu_name}; rebuild it here")


def engine_profile(path: Path) -> dict | None:
    """The optimization profile recorded in an engine's JSON sidecar (no TensorRT needed)."""
    if not sidecar_path(path).exists():
        return None
    return read_sidecar(path).get("profile")


def tensorrt_module():
    try:
        import tensorrt as trt  # lazy: TensorRT is optional and GPU-only
    except ImportError:
        raise UserError("TensorRT is not installed: pip install 'genforge[gpu]' on a machine with an "
                        "NVIDIA GPU") from None
    if not torch.cuda.is_available():
        raise UserError("TensorRT needs a CUDA GPU, and none is available here")
    return trt


class EngineRuntime(GeneratorRuntime):
    """A TensorRT engine behind the same generate() API; I/O through torch CUDA tensors."""

    def __init__(self, path):
        path = Path(path)
        if not path.exists():
            raise UserError(f"{path} does not exist")
        self.metadata = read_sidecar(path)
        trt = tensorrt_module()
        check_compatible(self.metadata, trt.__version__, torch.cuda.get_device_name(0))
        self.torch, self.path = torch, path
        self.signature, self.image_shape = read_generator_metadata(self.metadata, path)
        self.profile = self.metadata["profile"]
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise UserError(f"{path} could not be deserialized (corrupt, or another TensorRT version); rebuild it")
        self.context = self.engine.create_execution_context()
        self.bound = None

    def check_batch(self, batch: int) -> None:
        low, high = self.profile["min"][0], self.profile["max"][0]
        if not low <= batch <= high:
            raise UserError(f"{self.path.name}'s profile covers batch {low} to {high}, not {batch}")

    def bind(self, z: np.ndarray, labels: np.ndarray | None, images=()) -> None:
        torch = self.torch
        self.check_batch(len(z))
        zt = torch.from_numpy(z).cuda()
        out = torch.empty((len(z), *self.image_shape), dtype=torch.float32, device="cuda")
        self.context.set_input_shape("z", tuple(zt.shape))
        self.context.set_tensor_address("z", zt.data_ptr())
        tensors = [zt, out]
        if labels is not None:
            lt = torch.from_numpy(labels.astype(np.int32)).cuda()
            self.context.set_input_shape("labels", tuple(lt.shape))
            self.context.set_tensor_address("labels", lt.data_ptr())
            tensors.append(lt)
        for spec, value in zip(self.signature.images, images):  # a restoration model's image inputs
            it = torch.from_numpy(value).cuda()
            self.context.set_input_shape(spec.name, tuple(it.shape))
            self.context.set_tensor_address(spec.name, it.data_ptr())
            tensors.append(it)
        self.context.set_tensor_address("images", out.data_ptr())
        self.bound = (tensors, out)

    def execute_bound(self) -> None:
        stream = self.torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")

    def run(self, z, labels, images=()):
        self.bind(z, labels, images)
        self.execute_bound()
        self.torch.cuda.current_stream().synchronize()
        return self.bound[1].cpu().numpy()
