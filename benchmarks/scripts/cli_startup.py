"""Wall time of `genforge --help` and `genforge plugins` against `python -c "import torch"`.

Targets: --help at most 0.3 s, plugins at most 0.6 s on the 2-core CPU machine.
Run: python benchmarks/scripts/cli_startup.py [--repeats 7]
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall_times(command: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times[1:]  # the first run warms the file cache


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    exe = shutil.which("genforge") or str(Path(sys.executable).with_name("genforge"))
    rows = [
        ("genforge --help", [exe, "--help"], 0.3),
        ("genforge plugins", [exe, "plugins"], 0.6),
        ("python -c 'import torch' (reference)", [sys.executable, "-c", "import torch"], None),
    ]
    failed = False
    print(f"{'command':40} {'median s':>9} {'min s':>7} {'target':>8}")
    for name, command, target in rows:
        times = wall_times(command, args.repeats)
        median = statistics.median(times)
        verdict = "" if target is None else ("ok" if median <= target else "SLOW")
        failed |= verdict == "SLOW"
        print(f"{name:40} {median:9.3f} {min(times):7.3f} {'' if target is None else f'<= {target}':>8} {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
