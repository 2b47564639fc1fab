"""How many threads a command computes with, settled once, in one Compute (the count and how it was chosen).

torch (OpenMP) and ONNX Runtime spin their worker threads at barriers; with more threads than free
cores, a thread that another process preempted holds every other thread up, and a run becomes 10 to
100 times slower (measured: benchmarks/scripts/busy_machine.py). The default count is therefore the
cores in this process's CPU affinity, capped by a cgroup CPU quota, less the cores other processes kept
busy over a short sample of /proc/stat; the user's OMP_NUM_THREADS comes before it and `--threads N`
(or threads=N in the Python API) before both. `settle()` decides it and hands torch the count; whatever
else runs (ONNX Runtime sessions, benchmark workers, child processes) is given `compute.threads` or
`compute.child_environment()` explicitly. genforge keeps no thread state of its own and never changes
this process's environment.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from genforge.core.errors import UserError
from genforge.core.limits import MAX_THREADS, cores_available

SAMPLE_S = 0.05  # the /proc/stat sample that measures how busy the other cores are
OURS = "GENFORGE_SET_OMP_NUM_THREADS"  # what genforge put in a child's OMP_NUM_THREADS (not the user's choice)
THREADS_RULE = f"a whole number from 1 to {MAX_THREADS}"


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


def valid_threads(value) -> bool:
    """A thread count genforge accepts anywhere (option, argument, config file, pipeline)."""
    return not isinstance(value, bool) and isinstance(value, int) and 1 <= value <= MAX_THREADS


def check_threads(value, what: str = "threads=") -> int | None:
    """None (the default count) or a valid count; anything else is one line naming `what` (the keyword)."""
    if value is not None and not valid_threads(value):
        raise UserError(f"{what}{value!r} must be {THREADS_RULE}, or left out for the free cores")
    return value


def default_threads(world_size: int = 1) -> int:
    """Free cores for one of `world_size` processes: available cores less busy ones, at least 1."""
    cores = cores_available()
    free = cores - busy_cores()
    return max(1, min(cores, round(free)) // max(1, world_size))


def users_omp_threads(environment=None) -> int | None:
    """The user's OMP_NUM_THREADS, when they set it (not a genforge parent process) to a count."""
    environment = os.environ if environment is None else environment
    value = environment.get("OMP_NUM_THREADS")
    if value is None or value == environment.get(OURS):
        return None
    try:
        count = int(value)
    except ValueError:
        return None
    return count if 1 <= count <= MAX_THREADS else None


@dataclass(frozen=True)
class Compute:
    """What one command computes with: its thread count, how the count was chosen, the cores it had. (The
    device and precision are the trainer's and the runtime's, chosen by their options and core/precision.py.)"""

    threads: int
    chosen: str  # "--threads", "OMP_NUM_THREADS" or "free cores"
    cores: int

    def child_environment(self, processes: int = 1, environment=None) -> dict:
        """The environment for `processes` child processes sharing this command's threads: each gets its share
        in OMP_NUM_THREADS (marked as genforge's), unless the user set OMP_NUM_THREADS themselves."""
        environment = dict(os.environ if environment is None else environment)
        if users_omp_threads(environment) is None:
            environment["OMP_NUM_THREADS"] = environment[OURS] = str(max(1, self.threads // max(1, processes)))
        return environment

    def record(self) -> dict:
        """What a report's environment records: the count, how it was chosen, cores, load average."""
        return {"threads": self.threads, "chosen": self.chosen, "cores": self.cores, "load_average": load_average()}


def decide(threads: int | None = None, world_size: int = 1) -> Compute:
    """The Compute for `threads` (None: the user's OMP_NUM_THREADS, else this process's share of the free
    cores); checks the count and changes nothing."""
    check_threads(threads)
    users = None if threads else users_omp_threads()
    count = threads or users or default_threads(world_size)
    chosen = "--threads" if threads else "OMP_NUM_THREADS" if users else "free cores"
    return Compute(count, chosen, cores_available())


def settle(threads: int | None = None, world_size: int = 1) -> Compute:
    """decide(), then give torch the count: the one call a command makes before it computes."""
    import torch  # lazy: the CLI's start-up imports no torch

    compute = decide(threads, world_size)
    torch.set_num_threads(compute.threads)
    return compute


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None
