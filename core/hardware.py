"""What the CPU (and GPU) can do: flags, peak FLOP/s, and the fastest training precision."""

from __future__ import annotations

import os
import platform
from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic (AVX-512 BF16 or AMX): only then is bf16 autocast a speed-up on CPU."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def cpu_vector_bits() -> int:
    flags = cpu_flags()
    return 512 if "avx512f" in flags else 256 if "avx2" in flags else 128


def cpu_clock_ghz() -> float | None:
    for path in ("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",):
        try:
            return int(open(path).read()) / 1e6
        except (OSError, ValueError):
            pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1]) / 1000
    except OSError:
        pass
    return None


def cpu_peak_gflops(threads: int | None = None) -> tuple[float | None, str]:
    """fp32 peak = cores x clock x (vector bits / 32) lanes x 2 (FMA) x 2 FMA units per core.

    Two FMA pipes per core holds for the x86 server cores of the last decade (Zen 2+,
    Skylake-SP+); the clock is the nominal one the OS reports, not the boost clock.
    """
    cores = threads or os.cpu_count() or 1
    clock = cpu_clock_ghz()
    if clock is None:
        return None, "unknown clock"
    lanes = cpu_vector_bits() // 32
    peak = cores * clock * lanes * 2 * 2
    return peak, f"{cores} cores x {clock:.2f} GHz x {lanes} fp32 lanes x 2 (FMA) x 2 FMA units"
