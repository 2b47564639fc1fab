"""Bounds checked before any work: seeds, batch sizes, durations, and the memory a request needs."""

from __future__ import annotations

import math
import os
from pathlib import Path

from genforge.core.errors import UserError

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024  # pixels a side
MAX_THREADS = 1024  # the most threads any option, argument or setting may ask for
CHANNELS = (1, 3)  # grey or RGB: what genforge converts datasets to


def check_channels(channels: int | None) -> None:
    """None (the dataset's own) or one of CHANNELS: the one place the channel count asked for is checked."""
    if channels is not None and channels not in CHANNELS:
        raise UserError(f"{channels} channels is not supported; use 1 (grey) or 3 (RGB)")

MAX_SEED = 2**63 - 1  # torch.manual_seed takes signed 64-bit seeds
MAX_BATCH = 65536  # images in one call of a generator
MAX_SECONDS = 3600.0  # a warm-up or timing duration
MAX_SAMPLE_ELEMENTS = 2**26  # values in one noise sample or one image (256 MB in float32)
WORK_FACTOR = 4  # a generator's activations and copies, as a multiple of its inputs and outputs


def check_seed(seed, what: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"{what} {seed!r} must be a whole number from 0 to {MAX_SEED} (2^63 - 1)")
    return seed


def check_batch_text(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_BATCH:
        raise UserError(f"--batch {text!r} must be 'dynamic' or a whole number from 1 to {MAX_BATCH}")
    return int(text)


def check_seconds(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 <= value <= MAX_SECONDS:
        raise UserError(f"{what} {value!r} must be a number of seconds from 0 to {MAX_SECONDS:g}")
    return float(value)


def available_memory() -> int | None:
    """Bytes this process may still allocate: MemAvailable, capped by a cgroup v2 memory limit (None if unknown)."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append(int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(0, min(found)) if found else None


def check_memory(needed_bytes: float, what: str, fix: str) -> None:
    """Refuse, in one line, a request whose memory need exceeds what the machine has free."""
    free = available_memory()
    if free is not None and needed_bytes > free:
        raise UserError(f"{what} would need about {needed_bytes / 2**30:,.1f} GiB of memory and "
                        f"{free / 2**30:,.1f} GiB is free; {fix}")


def check_generation(n: int, latent_elements: int, image_elements: int, what: str = "generating") -> None:
    """Memory for n samples of a generator (noise, images, activations) against what is free."""
    if n > 2**40:
        raise UserError(f"{what} {n:,} images is beyond any machine; ask for fewer")
    check_memory(n * (latent_elements + image_elements) * 4 * WORK_FACTOR, f"{what} {n:,} images",
                 "ask for fewer (--n, --rows, --batch)")


def cores_available() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (not os.cpu_count())."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)
