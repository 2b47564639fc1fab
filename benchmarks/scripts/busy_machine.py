"""Training and benchmarking on a quiet machine and beside a CPU-bound process, with genforge's default
threads (the free cores: core/compute.py) and with the behaviour before them (torch's default, one
thread per core the OS reports).

Each case runs a short `genforge train` (dcgan on digits, --steps, batch 64) and `genforge bench` of
the trained run on torch at batch 1, as subprocesses, first quiet and then with a busy-loop process
pinned to nothing (it competes for every core). Prints wall seconds of the training, the bench's
median ms, and the slowdown busy / quiet (target for the default: at most 2x).

Run: python benchmarks/scripts/busy_machine.py [--steps 60]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENFORGE = str(Path(sys.executable).with_name("genforge"))


def train_seconds(out: Path, steps: int, threads: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([GENFORGE, "train", "--steps", str(steps), "--batch-size", "64", "--sample-every", "0",
                    "--no-progress", "--out", str(out), *threads], check=True, capture_output=True)
    return time.perf_counter() - start


def bench_ms(run: Path, report: Path, threads: list[str]) -> float:
    subprocess.run([GENFORGE, "bench", str(run), "--backend", "torch", "--batch", "1", "--warmup-s", "0.3",
                    "--duration-s", "2", "--json", str(report), *threads], check=True, capture_output=True)
    rows = [r for r in json.loads(report.read_text())["rows"] if r["status"] == "ok"]
    return rows[0]["stats"]["median_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    modes = {"default (free cores)": [], f"before (--threads {os.cpu_count()})": ["--threads", str(os.cpu_count())]}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for load in ("quiet", "busy"):
            hog = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None)
            try:
                time.sleep(1.0 if hog else 0)
                for mode, threads in modes.items():
                    key = re.sub(r"\W+", "-", f"{load}-{mode}")
                    seconds = train_seconds(tmp / key, args.steps, threads)
                    ms = bench_ms(tmp / key, tmp / f"{key}.json", threads)
                    results[load, mode] = (seconds, ms)
            finally:
                if hog:
                    hog.kill()
                    hog.wait()
    print(f"{'threads':28} {'train quiet s':>13} {'busy s':>8} {'slowdown':>9} {'bench quiet ms':>15} {'busy ms':>8} "
          f"{'slowdown':>9}   ({args.steps} steps; bench: torch, batch 1; {os.cpu_count()} cores)")
    for mode in modes:
        (tq, bq), (tb, bb) = results["quiet", mode], results["busy", mode]
        print(f"{mode:28} {tq:13.1f} {tb:8.1f} {tb / tq:8.2f}x {bq:15.3f} {bb:8.3f} {bb / bq:8.2f}x")


if __name__ == "__main__":
    main()
