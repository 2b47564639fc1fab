"""How many threads genforge computes with: the cores this process may use that nobody else is using.

torch (OpenMP) and ONNX Runtime spin their worker threads at barriers; with more threads than free
cores, a thread that another process preempted holds every other thread up, and a run becomes 10 to
100 times slower (measured: benchmarks/scripts/busy_machine.py). The default therefore counts the cores in
this process's CPU affinity, capped by a cgroup CPU quota, and subtracts the cores other processes
kept busy over a short sample of /proc/stat. `--threads N` overrides it; the same number goes to
torch, ONNX Runtime and OpenMP (for child processes).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from genforge.core.limits import MAX_THREADS, cores_available

SAMPLE_S = 0.05  # the /proc/stat sample that measures how busy the other cores are
_applied: dict = {}


def _cpu_times(cpus: set[int]) -> dict[int, tuple[int, int]]:
    """cpu -> (idle + iowait jiffies, total jiffies) for the given CPUs."""
    found = {}
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                values = [int(v) for v in fields[:8]]
                found[int(name[3:])] = (values[3] + values[4], sum(values))
    except (OSError, ValueError, IndexError):
        return {}
    return found


def busy_cores(sample_s: float = SAMPLE_S) -> float:
    """Cores of this process's affinity kept busy by others during a short sample (0 when unknown)."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return 0.0
    before = _cpu_times(cpus)
    time.sleep(sample_s)
    after = _cpu_times(cpus)
    busy = 0.0
    for cpu, (idle, total) in after.items():
        if cpu in before and total > before[cpu][1]:
            busy += 1 - (idle - before[cpu][0]) / (total - before[cpu][1])
    return busy


def default_threads(world_size: int = 1) -> int:
    """Free cores for one of `world_size` processes: available cores less busy ones, at least 1."""
    cores = cores_available()
    free = cores - busy_cores()
    return max(1, min(cores, round(free)) // max(1, world_size))


def apply_threads(threads: int | None = None, world_size: int = 1) -> int:
    """Set torch's, ONNX Runtime's (through current_threads) and OpenMP's thread counts; returns the count:
    `threads`, else the user's OMP_NUM_THREADS, else the free cores."""
    import torch  # lazy: the CLI's start-up imports no torch

    users = None if threads else users_omp_threads()
    count = threads or users or default_threads(world_size)
    torch.set_num_threads(count)
    os.environ["OMP_NUM_THREADS"] = os.environ[OURS] = str(count)
    chosen = "--threads" if threads else "OMP_NUM_THREADS" if users else "free cores"
    _applied.update(threads=count, chosen=chosen, cores=cores_available(), load_average=load_average())
    return count


OURS = "GENFORGE_SET_OMP_NUM_THREADS"  # what genforge itself put in OMP_NUM_THREADS (children inherit both)


def users_omp_threads() -> int | None:
    """The user's OMP_NUM_THREADS, when they set it (not genforge, here or in a parent process) to a count."""
    value = os.environ.get("OMP_NUM_THREADS")
    if value is None or value == os.environ.get(OURS):
        return None
    try:
        count = int(value)
    except ValueError:
        return None
    return count if 1 <= count <= MAX_THREADS else None


def current_threads() -> int | None:
    """The count apply_threads set in this process (None when nothing set it: the libraries' defaults)."""
    return _applied.get("threads")


def thread_settings() -> dict:
    """What a report's environment records: the applied count, how it was chosen, cores, load average."""
    return {**_applied, "load_average": load_average()} if _applied else {"load_average": load_average()}


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None
