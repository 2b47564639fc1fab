"""Built-in benchmark backends (the contract is in core/backend.py): PyTorch eager and compiled
on run directories, ONNX Runtime (CPU, CUDA, TensorRT providers) on .onnx files, native
TensorRT on .engine files. CPU backends time with perf_counter, GPU backends with CUDA events.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from genforge.core.backend import CudaEventsMixin, PreparedCall
from genforge.core.feeds import GeneratorFeeds
from genforge.core.files import genforge_cache_dir
from genforge.core.flops import count_macs
from genforge.core.hardware import cpu_has_bf16
from genforge.core.precision import REFERENCE, TABLE, timed_by
from genforge.core.runs.run_dir import load_run
from genforge.core.runtime.onnx import OnnxRuntime
from genforge.core.runtime.pytorch import to_runtime_dtype
from genforge.core.runtime.tensorrt import EngineRuntime
from genforge.core.targets import Target


# -- PyTorch ---------------------------------------------------------------------------------
class TorchCall(PreparedCall):
    def __init__(self, target: Target, batch: int, threads: int | None, device: str, compile_mode: str | None,
                 precision: str = REFERENCE):
        if threads:
            torch.set_num_threads(threads)
        self.torch, self.device = torch, device
        loaded = load_run(target.path, target.checkpoint, device=device)
        generator = loaded.generator.eval()
        self.inputs = GeneratorFeeds.of_run(loaded).tensors(batch, seed=0, device=device)
        self.macs_per_image = count_macs(generator, tuple(t[:1] for t in self.inputs))
        dtype = TABLE[precision].runtime_dtype
        if dtype:
            generator = to_runtime_dtype(generator, dtype)
            self.inputs = tuple(t.to(getattr(torch, dtype)) if t.is_floating_point() else t for t in self.inputs)
        self.module = torch.compile(generator, mode=compile_mode) if compile_mode else generator

    def call(self):
        with self.torch.inference_mode():
            self.module(*self.inputs)
        if self.device == "cuda":
            self.torch.cuda.synchronize()


class TorchCudaCall(CudaEventsMixin, TorchCall):
    def end_to_end(self):
        host = [t.cpu().numpy() for t in self.inputs]
        with self.torch.inference_mode():
            inputs = [self.torch.from_numpy(h).to(self.device) for h in host]
            self.module(*inputs).float().cpu()


class TorchBackend:
    compile_mode: str | None = None
    precision = REFERENCE

    def skip_reason(self, target: Target) -> str | None:
        if target.kind != "run":
            return "torch backends need a run directory (or checkpoint), not an exported file"
        return None

    def prepare(self, target: Target, batch: int, threads: int | None = None) -> PreparedCall:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        call_class = TorchCudaCall if device == "cuda" else TorchCall
        call = call_class(target, batch, threads, device, self.compile_mode, self.precision)
        call.device = device
        return call


class TorchBf16Backend(TorchBackend):
    precision = timed_by("torch-bf16")

    def skip_reason(self, target: Target) -> str | None:
        if not torch.cuda.is_available() and not cpu_has_bf16():
            return "this CPU has neither AVX-512 BF16 nor AMX: bf16 would be emulated, several times slower than fp32"
        return super().skip_reason(target)


class TorchCompileBackend(TorchBackend):
    compile_mode = "default"

    def skip_reason(self, target: Target) -> str | None:
        reason = super().skip_reason(target)
        if reason:
            return reason
        if not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
            return "torch.compile (inductor) needs a C compiler on the CPU; none found"
        return None


# -- ONNX Runtime ----------------------------------------------------------------------------
class OrtCall(PreparedCall):
    def __init__(self, target: Target, batch: int, threads: int | None, provider: str):

        self.runtime = OnnxRuntime(target.path, provider, threads=threads)
        self.z, self.labels = self.runtime.prepare_inputs(n=batch, seed=0)
        self.images = self.runtime.signature.timing_images(batch)
        macs = self.runtime.metadata.get("macs_per_image")
        self.macs_per_image = int(macs) if macs else None
        self.device = "cpu"

    def call(self):
        self.runtime.run(self.z, self.labels, self.images)


class OrtDeviceCall(CudaEventsMixin, PreparedCall):
    """ONNX Runtime on CUDA or TensorRT, timed as every GPU backend is: inputs and outputs bound in CUDA memory
    (IOBinding), the provider running on torch's current stream so CUDA events bracket its work."""

    def __init__(self, target: Target, batch: int, threads: int | None, provider: str):
        import numpy as np

        stream = torch.cuda.current_stream().cuda_stream
        self.runtime = OnnxRuntime(target.path, provider, threads=threads,
                                   provider_options=gpu_provider_options(provider, stream, target.path))
        self.z, self.labels = self.runtime.prepare_inputs(n=batch, seed=0)
        self.images = self.runtime.signature.timing_images(batch)
        macs = self.runtime.metadata.get("macs_per_image")
        self.macs_per_image = int(macs) if macs else None
        self.device = "cuda"
        session = self.runtime.session
        self.binding = session.io_binding()
        self.tensors = [torch.from_numpy(self.z).cuda()]
        self.binding.bind_input("z", "cuda", 0, np.float32, tuple(self.z.shape), self.tensors[0].data_ptr())
        if self.labels is not None:
            self.tensors.append(torch.from_numpy(self.labels.astype(np.int32)).cuda())
            self.binding.bind_input("labels", "cuda", 0, np.int32, tuple(self.labels.shape),
                                    self.tensors[1].data_ptr())
        for spec, image in zip(self.runtime.signature.images, self.images):
            self.tensors.append(torch.from_numpy(image).cuda())
            self.binding.bind_input(spec.name, "cuda", 0, np.float32, tuple(image.shape), self.tensors[-1].data_ptr())
        out = torch.empty((batch, *self.runtime.image_shape), dtype=torch.float32, device="cuda")
        self.tensors.append(out)
        self.binding.bind_output("images", "cuda", 0, np.float32, tuple(out.shape), out.data_ptr())

    def call(self):
        self.runtime.session.run_with_iobinding(self.binding)

    def end_to_end(self):
        self.runtime.run(self.z, self.labels, self.images)


def gpu_provider_options(provider: str, stream: int, onnx_path: Path) -> dict:
    """ONNX Runtime GPU provider options: torch's stream; for TensorRT, an engine and timing cache folder beside
    genforge's cache (GENFORGE_CACHE/trt-ep), so a second benchmark does not rebuild the engine."""
    options = {"has_user_compute_stream": "1", "user_compute_stream": str(stream)}
    if provider == "tensorrt":

        cache = genforge_cache_dir() / "trt-ep"
        cache.mkdir(parents=True, exist_ok=True)
        options.update(trt_engine_cache_enable="1", trt_engine_cache_path=str(cache),
                       trt_engine_cache_prefix=onnx_path.stem, trt_timing_cache_enable="1",
                       trt_timing_cache_path=str(cache))
    return options


class OrtBackend:
    provider = "cpu"
    provider_name = "CPUExecutionProvider"

    def skip_reason(self, target: Target) -> str | None:
        if target.kind != "onnx":
            return "ONNX Runtime backends need an .onnx file"
        import onnxruntime as ort  # lazy: onnxruntime is an extra (cpu or gpu build)

        if self.provider_name not in ort.get_available_providers():
            return f"{self.provider_name} is not in this onnxruntime build (pip install 'genforge[gpu]')"
        return None

    def prepare(self, target: Target, batch: int, threads: int | None = None) -> PreparedCall:
        call = (OrtCall if self.provider == "cpu" else OrtDeviceCall)(target, batch, threads, self.provider)
        if call.runtime.provider != self.provider_name:
            raise RuntimeError(f"{self.provider_name} could not start; ONNX Runtime fell back to "
                               f"{call.runtime.provider}")
        if call.runtime.fixed_batch and call.runtime.fixed_batch != batch:
            raise ValueError(f"{target.name} was exported for batch {call.runtime.fixed_batch} only")
        return call


class OrtCudaBackend(OrtBackend):
    provider, provider_name = "cuda", "CUDAExecutionProvider"


class OrtTensorrtBackend(OrtBackend):
    provider, provider_name = "tensorrt", "TensorrtExecutionProvider"


# -- TensorRT --------------------------------------------------------------------------------
class TensorrtCall(CudaEventsMixin, PreparedCall):
    def __init__(self, target: Target, batch: int):

        self.runtime = EngineRuntime(target.path)
        self.runtime.check_batch(batch)
        self.z, self.labels = self.runtime.prepare_inputs(n=batch, seed=0)
        self.images = self.runtime.signature.timing_images(batch)
        self.runtime.bind(self.z, self.labels, self.images)
        macs = self.runtime.metadata.get("macs_per_image")
        self.macs_per_image = int(macs) if macs else None
        self.device = "cuda"

    def call(self):
        self.runtime.execute_bound()

    def end_to_end(self):
        self.runtime.run(self.z, self.labels, self.images)


class TensorrtBackend:
    def skip_reason(self, target: Target) -> str | None:
        if target.kind != "engine":
            return "the tensorrt backend needs an .engine file (genforge export tensorrt)"
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            return "tensorrt is not installed (pip install 'genforge[gpu]')"
        if not torch.cuda.is_available():
            return "no CUDA device"
        return None

    def prepare(self, target: Target, batch: int, threads: int | None = None) -> PreparedCall:
        return TensorrtCall(target, batch)
