"""Training throughput on one machine: 2 processes x 1 thread (torch.distributed, gloo) against 1 process x 2 threads.

Both train the same model on the same global batch through `genforge train` (the second with --nproc 2),
in interleaved rounds; images/s is the trainer's own figure from metrics.jsonl (all processes counted),
the first logging window (warm-up) left out. Prints each round and the median ratio.

Run: python benchmarks/scripts/ddp_throughput.py [--model dcgan --image-size 32 --batch-size 64 --steps 60 --rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from genforge.core.runs.run_dir import read_metrics


def images_per_second(run: Path) -> float:
    records = read_metrics(run)
    rates = [r["images_per_s"] for r in records if r["kind"] == "train"][1:]
    return statistics.median(rates)


def train(args, nproc: int, threads: int, out: Path) -> float:
    command = [sys.executable, "-m", "genforge.app.cli", "train", "--model", args.model, "--image-size",
               str(args.image_size), "--batch-size", str(args.batch_size), "--steps", str(args.steps),
               "--sample-every", "0", "--checkpoint-every", "0", "--no-progress",
               "--nproc", str(nproc), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return images_per_second(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ratios = []
    print(f"{args.model} {args.image_size}px, global batch {args.batch_size}, {args.steps} steps per run; "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            one = train(args, 1, 2, Path(tmp) / f"one-{round_}")
            two = train(args, 2, 1, Path(tmp) / f"two-{round_}")
            ratios.append(two / one)
            print(f"round {round_ + 1}: 1 process x 2 threads {one:7.1f} img/s | 2 processes x 1 thread {two:7.1f} "
                  f"img/s | ratio {two / one:.2f}")
    print(f"2 processes / 1 process: median {statistics.median(ratios):.2f}x (rounds {min(ratios):.2f}-"
          f"{max(ratios):.2f})")


if __name__ == "__main__":
    main()
