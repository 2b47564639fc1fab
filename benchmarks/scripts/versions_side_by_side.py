"""Two genforge installs side by side: CLI start-up and one training epoch, interleaved rounds.

Checks that a change made nothing slower (within 5%). Give the Python of the baseline
install; the candidate is this one. Each round runs, for each install in turn, `genforge --help`,
`genforge plugins` and `genforge train` for one epoch of dcgan on digits (the whole command's wall
time: start-up, checks, the loop, its checkpoint and grids). Ratios are candidate / baseline, the
median over rounds.

Run: python benchmarks/scripts/versions_side_by_side.py --before /path/to/baseline/.venv/bin/python [--rounds 5]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def epoch(genforge: str, out: Path) -> float:
    return wall([genforge, "train", "--epochs", "1", "--no-progress", "--sample-every", "0", "--out", str(out)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="Python of the baseline genforge install.")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    installs = {"before": str(Path(args.before).with_name("genforge")),
                "now": str(Path(sys.executable).with_name("genforge"))}
    tasks = {"genforge --help": lambda g, _: wall([g, "--help"]),
             "genforge plugins": lambda g, _: wall([g, "plugins"]),
             "train 1 epoch": epoch}
    times = {(task, name): [] for task in tasks for name in installs}
    with tempfile.TemporaryDirectory() as tmp:
        for genforge in installs.values():  # warm the file cache
            wall([genforge, "--help"])
        for round_ in range(args.rounds):
            for task, run in tasks.items():
                order = list(installs.items()) if round_ % 2 == 0 else list(installs.items())[::-1]
                for name, genforge in order:
                    times[task, name].append(run(genforge, Path(tmp) / f"{name}-{round_}"))
    print(f"{'task':20} {'before s':>9} {'now s':>9} {'now/before':>11}  (median of {args.rounds} interleaved rounds)")
    worst = 0.0
    for task in tasks:
        before, now = times[task, "before"], times[task, "now"]
        ratio = statistics.median(n / b for n, b in zip(now, before))
        worst = max(worst, ratio)
        print(f"{task:20} {statistics.median(before):9.3f} {statistics.median(now):9.3f} {ratio:11.3f}")
    print(f"worst ratio {worst:.3f} (target <= 1.05)")
    return 0 if worst <= 1.05 else 1


if __name__ == "__main__":
    sys.exit(main())
