"""The targets of benchmark history (docs/ci.md), measured on synthetic histories and real timings.

1. Steps: 40 commits with a 15% slowdown at a random commit (between the 6th and the 35th), hidden in noise of
   +/-10%, recorded in a SQLite store and read back by `build_history` (the code `genforge bench history` runs).
   Two kinds of noise: per sample (each commit's 30 samples spread uniformly +/-10%) and per run (each commit's
   whole run off by up to +/-10%, uniformly, as on a shared runner, and +/-2% between samples). A trial is a
   hit when exactly one step is found, at the right commit or the next. Target: 19 of 20.
2. Flat: the same histories with no step. Target: a false step in at most 1 of 20.
3. --confirm: the false-failure rate of `bench compare` on identical builds, one run against confirmed by a
   rerun of both builds (target: at most the square of the single-run rate), and with NEW rerun alone (BASE
   only a stored report: a lucky-fast BASE stays lucky, so that rate stays higher). Real timings of one small
   .onnx on ort-cpu, base and new identical files, on a runner where a CPU-bound neighbour is busy during a
   random third of the runs (drawn per run, so a rerun meets its own luck); and the same with synthetic
   run-level noise over many trials.

Run: python benchmarks/scripts/bench_history.py [--trials 20] [--rate-trials 200] [--real-trials 60]
     [--synthetic-trials 4000]
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from genforge.benchmarks.confirm import confirm_regressions
from genforge.benchmarks.environment import environment
from genforge.benchmarks.history import build_history
from genforge.benchmarks.measure import SCHEMA, Settings, compare_reports, run_benchmarks
from genforge.benchmarks.stats import summarize
from genforge.benchmarks.store import open_store
from genforge.core.compute import Compute

COMMITS, STEP, NOISE, SAMPLES = 40, 0.15, 0.10, 30


def synthetic_report(env: dict, median_ms: float, rng, run_noise: float, sample_noise: float) -> dict:
    level = median_ms * (1 + rng.uniform(-run_noise, run_noise))
    seconds = level / 1e3 * (1 + rng.uniform(-sample_noise, sample_noise, SAMPLES))
    row = {"target": "g.onnx", "target_kind": "onnx", "backend": "ort-cpu", "batch": 1, "status": "ok",
           "samples_ms": [float(s * 1e3) for s in seconds], "stats": summarize(seconds),
           "throughput_img_s": 1e3 / level, "first_call_s": 0.1, "peak_rss_mib": 1.0, "device": "cpu",
           "gflops": None, "peak_share": None, "timing": "host", "end_to_end_ms": None}
    return {"schema": SCHEMA, "created": time.time(), "environment": env,
            "settings": {"batches": [1], "warmup_s": 0.1, "min_iters": 10, "duration_s": 0.3, "threads": 1},
            "rows": [row]}


def history_trial(folder: Path, env: dict, rng, step_at: int | None, run_noise: float, sample_noise: float):
    store_path = folder / f"trial-{rng.integers(1 << 62)}.sqlite"
    with open_store(store_path) as store:
        for i in range(COMMITS):
            level = 10.0 * (1 + STEP if step_at is not None and i >= step_at else 1)
            store.record(synthetic_report(env, level, rng, run_noise, sample_noise), f"{i:040x}", "main")
        (series,) = build_history(store)
    store_path.unlink()
    return series.steps


def step_targets(trials: int, rate_trials: int, seed: int) -> None:
    env = environment(Compute(1, "--threads", 1))
    rng = np.random.default_rng(seed)
    print(f"## Steps: {COMMITS} commits, a {STEP:.0%} step, noise +/-{NOISE:.0%}")
    print("| noise | trials | step found at its commit or the next | step inside the named range | "
          "false step in a flat history |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, run_noise, sample_noise in (("per sample", 0.0, NOISE), ("per run", NOISE, 0.02)):
            for n in (trials, rate_trials):
                hits = inside = false = 0
                for _ in range(n):
                    at = int(rng.integers(5, COMMITS - 5))
                    steps = history_trial(Path(tmp), env, rng, at, run_noise, sample_noise)
                    hits += len(steps) == 1 and steps[0].index in (at, at + 1)
                    inside += len(steps) == 1 and steps[0].first_possible <= at <= steps[0].last_possible
                    false += bool(history_trial(Path(tmp), env, rng, None, run_noise, sample_noise))
                print(f"| {label} | {n} | {hits}/{n} ({hits / n:.1%}) | {inside}/{n} ({inside / n:.1%}) | "
                      f"{false}/{n} ({false / n:.1%}) |", flush=True)


def confirm_synthetic(trials: int, seed: int) -> tuple[float, float, float]:
    env = environment(Compute(1, "--threads", 1))
    rng = np.random.default_rng(seed)
    single = confirmed = new_only = 0
    for _ in range(trials):
        base = synthetic_report(env, 10.0, rng, NOISE, 0.02)
        new = synthetic_report(env, 10.0, rng, NOISE, 0.02)
        rows = compare_reports(base, new)
        single += any(r["verdict"] == "slower" for r in rows)
        rows = confirm_regressions(base, new, rows, lambda keys: (synthetic_report(env, 10.0, rng, NOISE, 0.02),
                                                             synthetic_report(env, 10.0, rng, NOISE, 0.02)))
        confirmed += any(r["verdict"] == "slower" for r in rows)
        rows = confirm_regressions(base, new, compare_reports(base, new),
                                   lambda keys: (None, synthetic_report(env, 10.0, rng, NOISE, 0.02)))
        new_only += any(r["verdict"] == "slower" for r in rows)
    return single / trials, confirmed / trials, new_only / trials


def small_onnx(folder: Path) -> Path:
    genforge = str(Path(sys.executable).with_name("genforge"))
    subprocess.run([genforge, "train", "--steps", "2", "--image-size", "16", "--no-progress", "--sample-every", "0",
                    "--out", str(folder / "run")], check=True, capture_output=True)
    subprocess.run([genforge, "export", "onnx", str(folder / "run"), "--out", str(folder / "g.onnx")], check=True,
                   capture_output=True)
    return folder / "g.onnx"


def confirm_real(trials: int, busy_share: float, seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    settings = Settings((1,), 0.1, 10, 0.3, 1)

    def timed(path: Path) -> dict:
        neighbour = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if rng.random() < busy_share
                     else None)
        try:
            return run_benchmarks([path], ["ort-cpu"], settings)
        finally:
            if neighbour:
                neighbour.kill()
                neighbour.wait()

    single = confirmed = 0
    with tempfile.TemporaryDirectory() as tmp:
        base_file = small_onnx(Path(tmp))
        new_file = Path(tmp) / "new" / "g.onnx"  # the identical build, another checkout
        new_file.parent.mkdir()
        new_file.write_bytes(base_file.read_bytes())
        for _ in range(trials):
            base, new = timed(base_file), timed(new_file)
            rows = compare_reports(base, new)
            single += any(r["verdict"] == "slower" for r in rows)
            rows = confirm_regressions(base, new, copy.deepcopy(rows), lambda keys: (timed(base_file), timed(new_file)))
            confirmed += any(r["verdict"] == "slower" for r in rows)
    return single, confirmed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rate-trials", type=int, default=200)
    parser.add_argument("--real-trials", type=int, default=60)
    parser.add_argument("--synthetic-trials", type=int, default=4000)
    parser.add_argument("--busy-share", type=float, default=1 / 3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    step_targets(args.trials, args.rate_trials, args.seed)
    print("\n## bench compare on identical builds: false failures, one run and confirmed (--confirm)")
    print("| timings | trials | one run | confirmed (both rerun) | one run squared | confirmed (NEW rerun only) |")
    print("|---|---|---|---|---|---|")
    single, confirmed, new_only = confirm_synthetic(args.synthetic_trials, args.seed)
    print(f"| synthetic, run noise +/-{NOISE:.0%} | {args.synthetic_trials} | {single:.2%} | {confirmed:.2%} | "
          f"{single ** 2:.2%} | "
          f"{new_only:.2%} |", flush=True)
    single, confirmed = confirm_real(args.real_trials, args.busy_share, args.seed)
    n = args.real_trials
    print(f"| real ort-cpu, neighbour busy in {args.busy_share:.0%} of runs | {n} | {single}/{n} ({single / n:.1%}) | "
          f"{confirmed}/{n} ({confirmed / n:.1%}) | {(single / n) ** 2:.1%} | not measured |")


if __name__ == "__main__":
    main()
