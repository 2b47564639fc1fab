"""The environment block every benchmark report carries."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import version

import torch

from genforge import __version__
from genforge.core.compute import Compute, decide
from genforge.core.hardware import cpu_clock_ghz, cpu_flags, cpu_model, cpu_peak_gflops


def _version(module: str) -> str | None:
    try:
        return version(module)
    except Exception:  # noqa: BLE001  not installed (or no metadata)
        return None


def gpu_info() -> dict | None:
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    info = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, IndexError):
        info["driver"] = None
    return info


def environment(compute: Compute | None = None) -> dict:
    """The machine, libraries and thread settings a report was measured with (compute: what the benchmark
    settled; None: what decide() would choose now)."""
    compute = compute or decide()
    flags = cpu_flags()
    interesting = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "sse4")))
    peak, how = cpu_peak_gflops(compute.threads)
    torch_threads = torch.get_num_threads()
    return {
        "cpu": {"model": cpu_model(), "cores": os.cpu_count(), "clock_ghz": cpu_clock_ghz(), "flags": interesting,
                "fp32_peak_gflops": peak, "peak_method": how},
        "gpu": gpu_info(),
        "versions": {"python": platform.python_version(), "genforge": __version__, "torch": _version("torch"),
                     "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
                     "onnx": _version("onnx"), "tensorrt": _version("tensorrt")},
        "threads": {"torch": torch_threads, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), **compute.record()},
        "platform": platform.platform(),
        "argv": sys.argv[:],
    }
