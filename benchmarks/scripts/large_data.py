"""Large data: `genforge train` on generated image folders of growing size, 64 px RGB.

For each --counts value N: a folder of N JPEG images in 10 class subfolders (smooth random shapes,
written once under --root), then `genforge train --dataset image-folder` twice in a fresh process:
the first run builds the decoded cache, the second finds it. Each row gives the wall time of the run
the time to its first training step (from the interpreter's start, imports included), its whole wall
time, and its peak resident memory (the largest process, decode workers included). Then, in this process on the
largest folder: how many images per second the data path delivers (BatchSampler batches from the
cache) against how many the trainer consumes (dcgan at 64 px, batch 64), and the same data path on the
in-memory digits set. Targets: peak memory at most 1.5 GB and flat in N, the cached run at most 5 s,
the data path at least 2x the trainer.

Run: python benchmarks/scripts/large_data.py [--counts 10000,50000,100000] [--root /tmp/genforge-large]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64


def make_folder(root: Path, count: int) -> Path:
    """`count` smooth 64 px images in 10 classes (kept: made once per count)."""
    folder = root / f"images-{count}"
    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(count)
    for i in range(count):
        label = i % 10
        image = Image.new("RGB", (SIZE, SIZE), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(3):
            x, y = rng.integers(0, SIZE - 16, 2)
            w, h = rng.integers(8, 32, 2)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if label % 2 else draw.rectangle)([int(x), int(y), int(x + w), int(y + h)], fill=colour)
        (folder / f"c{label}").mkdir(parents=True, exist_ok=True)
        image.save(folder / f"c{label}" / f"{i:06d}.jpg", quality=90)
    done.write_text("")
    return folder


FIRST_STEP = """
import json, resource, sys, time
start = time.perf_counter()
from genforge.core.training import trainer
first = []
original = trainer.Trainer.train_step
def timed(self):
    if not first:
        first.append(time.perf_counter() - start)
    return original(self)
trainer.Trainer.train_step = timed
from genforge.app.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    status = exit.code
peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({"status": status, "first_step_s": first[0] if first else None,
                  "seconds": time.perf_counter() - start, "peak_gb": peak / 2**20}))
"""


def timed_train(folder: Path, runs: Path, name: str, threads: int | None) -> dict:
    """One `genforge train` of one step in a fresh process: the time to its first step (imports included),
    its whole wall time and the peak resident memory of its processes (decode workers included)."""
    out = runs / name
    command = ["train", "--model", "dcgan", "--dataset", "image-folder", "--data-dir", str(folder), "--image-size",
               str(SIZE), "--steps", "1", "--sample-every", "0", "--checkpoint-every", "0", "--no-progress",
               "--overwrite", "--out", str(out)] + (["--threads", str(threads)] if threads else [])
    answer = subprocess.run([sys.executable, "-c", FIRST_STEP, *command], capture_output=True, text=True)
    try:
        result = json.loads(answer.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"genforge train failed on {folder}: {answer.stderr[-500:]}") from None
    if result["status"] not in (0, None):
        raise SystemExit(f"genforge train failed on {folder}: {answer.stderr[-500:]}")
    return result


def data_path_rate(dataset, batches: int = 200) -> float:
    from genforge.core.training.batches import BatchSampler

    sampler = BatchSampler(dataset, 64, seed=0)
    sampler.batch(0)
    start = time.perf_counter()
    for step in range(1, batches + 1):
        sampler.batch(step)
    return batches * 64 / (time.perf_counter() - start)


def trainer_rate(folder: Path, runs: Path, threads: int | None) -> float:
    from genforge.core.runs.config import TrainConfig
    from genforge.core.runs.run_dir import read_metrics
    from genforge.core.training.trainer import Trainer

    config = TrainConfig(model="dcgan", dataset="image-folder", data_dir=str(folder), image_size=SIZE, steps=60,
                         sample_every=0, checkpoint_every=0, log_every=10, threads=threads)
    Trainer(config, runs / "rate", overwrite=True, progress=False).fit()
    records = read_metrics(runs / "rate")
    rates = [r["images_per_s"] for r in records if r.get("kind") == "train" and "images_per_s" in r]
    return float(np.median(rates[1:] or rates))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="10000,50000,100000")
    parser.add_argument("--root", type=Path, default=Path("/tmp/genforge-large"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("GENFORGE_CACHE", str(args.root / "cache"))
    runs = args.root / "runs"
    rows = []
    for count in (int(c) for c in args.counts.split(",")):
        started = time.perf_counter()
        folder = make_folder(args.root, count)
        made = time.perf_counter() - started
        first = timed_train(folder, runs, f"first-{count}", args.threads)
        cached = timed_train(folder, runs, f"cached-{count}", args.threads)
        rows.append({"images": count, "first": first, "cached": cached})
        print(f"{count:>7} images (folder made in {made:.0f} s): first run (builds the cache) first step at "
              f"{first['first_step_s']:.1f} s, peak {first['peak_gb']:.2f} GB | cached run first step at "
              f"{cached['first_step_s']:.1f} s, whole run {cached['seconds']:.1f} s, peak {cached['peak_gb']:.2f} GB",
              flush=True)
    from genforge.core.contract import open_dataset

    largest = make_folder(args.root, max(r["images"] for r in rows))
    dataset, _ = open_dataset("image-folder", "train", SIZE, None, str(largest))
    digits, _ = open_dataset("digits", "train", SIZE, None, None)
    served, consumed = data_path_rate(dataset), trainer_rate(largest, runs, args.threads)
    print(f"data path {served:,.0f} img/s from the cache vs the trainer's {consumed:,.0f} img/s (dcgan, 64 px): "
          f"{served / consumed:.1f}x (target 2x); in-memory digits at 64 px: {data_path_rate(digits):,.0f} img/s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"(this script's own peak: {peak:.2f} GB)")


if __name__ == "__main__":
    main()
