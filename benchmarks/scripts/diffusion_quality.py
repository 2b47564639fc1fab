"""The built-in diffusion model with its defaults against the built-in cgan, in at most 4x the cgan's training time.

For each dataset: the cgan trains its default run (defaults throughout, the default length; its time
measured here, on this machine), then the diffusion model trains with its defaults until its whole run,
the closing sample grid included, would pass 4x that time (a callback stops it between steps and the run
ends with a checkpoint as usual).
Time is this process's CPU time (all its threads), so that other work on the machine slows both
models alike; wall-clock times are printed beside it. Both are scored by `genforge evaluate` on 2,000
samples (FD over the floor, conditional accuracy). Targets: on digits, FD over floor no worse than
the cgan's and conditional accuracy at least 0.98; on digits-distorted, FD over floor at most half
the cgan's. Writes diffusion-quality.json and a sample grid per dataset to --out.

With --baseline the plain DDPM recipe a newcomer writes from Ho et al. (2020) trains in the same budget
on the same network, as a yardstick: noise prediction, DDPM's linear betas, unweighted MSE, Adam(2e-4),
batch 64, fp32, no EMA, sampled with 20 DDIM steps and guidance 2.

Run: python benchmarks/scripts/diffusion_quality.py [--datasets digits,digits-distorted] [--budget 4] [--threads N]
     [--precision bf16] [--baseline]
"""

import argparse
import json
import shutil
import time
from pathlib import Path

from genforge import Callback
from genforge.core.evaluation.scoring import evaluate_run
from genforge.core.files import write_json
from genforge.core.runs.config import TrainConfig
from genforge.core.training.trainer import Trainer


class TimeBudget(Callback):
    """Stops training so that the whole run, the end-of-run sample grid included, fits in `seconds` of this
    process's CPU time counted from when it was made (just before the trainer, so the run's setup counts as
    the cgan's does). The grid's cost is measured once, on a grid drawn after the first step
    (samples/step-00000001.png), and kept in reserve."""

    def __init__(self, seconds: float):
        self.seconds, self.started, self.reserve = seconds, time.process_time(), None

    def on_step_end(self, trainer, metrics):
        if self.reserve is None:
            before = time.process_time()
            trainer.sample_grid(trainer.out / "samples" / f"step-{trainer.step:08d}.png")
            self.reserve = time.process_time() - before
        if time.process_time() - self.started + self.reserve >= self.seconds:
            trainer.stop_reason = f"CPU time budget of {self.seconds:.0f} s spent (the closing grid included)"


PLAIN_DDPM = {"prediction": "eps", "schedule": "linear", "min_snr": 0, "lr": 2e-4, "warmup_steps": 0}
PLAIN_SAMPLING = {"steps": 20, "guidance": 2.0}


def train_and_score(config: TrainConfig, out: Path, callbacks=(), n: int = 2000, sampling=None) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    trainer = Trainer(config, out, overwrite=True, progress=False, callbacks=list(callbacks))
    run = trainer.fit()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    started = time.perf_counter()
    scores = evaluate_run(run, n=n, sampling=sampling)
    return {**scores, "model": config.model, "dataset": config.dataset, "train_s": wall, "train_cpu_s": cpu,
            "steps": trainer.step, "evaluate_s": time.perf_counter() - started}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs", type=Path, default=Path("runs/diffusion-quality"))
    parser.add_argument("--datasets", default="digits,digits-distorted")
    parser.add_argument("--budget", type=float, default=4.0, help="Diffusion training time over the cgan's.")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None,
                        help="Torch threads for both models (default: the free cores).")
    parser.add_argument("--precision", default=None,
                        help="The diffusion model's training precision (default: the trainer's default).")
    parser.add_argument("--baseline", action="store_true",
                        help="Also train the plain DDPM recipe in the same budget and score it.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for dataset in args.datasets.split(","):
        common = {"dataset": dataset, "sample_every": 0, "checkpoint_every": 0, "log_every": 50,
                  "threads": args.threads}
        cgan = train_and_score(TrainConfig(model="cgan", **common),
                               args.runs / f"{dataset}-cgan", n=args.n)
        print(json.dumps(cgan), flush=True)
        budget = args.budget * cgan["train_cpu_s"]
        precision = {"precision": args.precision} if args.precision else {}
        diffusion = train_and_score(TrainConfig(model="diffusion", steps=10**6, **common, **precision),
                                    args.runs / f"{dataset}-diffusion", [TimeBudget(budget)], n=args.n)
        print(json.dumps(diffusion), flush=True)
        shutil.copy(args.runs / f"{dataset}-diffusion" / "samples.png", args.out / f"diffusion-{dataset}.png")
        rows += [cgan, diffusion]
        if args.baseline:
            plain = train_and_score(TrainConfig(model="diffusion", steps=10**6, **common, precision="fp32", ema=False,
                                                batch_size=64, model_options=PLAIN_DDPM),
                                    args.runs / f"{dataset}-plain-ddpm", [TimeBudget(budget)], n=args.n,
                                    sampling=PLAIN_SAMPLING)
            print(json.dumps(plain), flush=True)
            rows.append({**plain, "model": "plain ddpm"})
            print(f"  plain DDPM recipe, same budget: {plain['steps']} steps, FD/floor {plain['fd_over_floor']:.2f}, "
                  f"cond_acc {plain.get('cond_acc', float('nan')):.3f}; genforge's diffusion "
                  f"{diffusion['fd_over_floor'] / plain['fd_over_floor']:.2f}x its FD", flush=True)
        ratio = diffusion["fd_over_floor"] / cgan["fd_over_floor"]
        print(f"{dataset}: cgan {cgan['train_s']:.0f} s ({cgan['train_cpu_s']:.0f} s CPU), FD/floor "
              f"{cgan['fd_over_floor']:.2f}, cond_acc "
              f"{cgan.get('cond_acc', float('nan')):.3f} | diffusion {diffusion['train_s']:.0f} s "
              f"({diffusion['train_cpu_s']:.0f} s CPU, {diffusion['train_cpu_s'] / cgan['train_cpu_s']:.2f}x), "
              f"{diffusion['steps']} steps, FD/floor "
              f"{diffusion['fd_over_floor']:.2f} ({ratio:.2f}x the cgan's), cond_acc "
              f"{diffusion.get('cond_acc', float('nan')):.3f}", flush=True)
        if dataset == "digits":
            print(f"  target FD/floor <= cgan's: {'ok' if ratio <= 1 else 'MISSED'}; cond_acc >= 0.98: "
                  f"{'ok' if diffusion.get('cond_acc', 0) >= 0.98 else 'MISSED'}")
        else:
            print(f"  target FD/floor <= 0.5x cgan's: {'ok' if ratio <= 0.5 else 'MISSED'}")
    write_json(args.out / "diffusion-quality.json", rows)


if __name__ == "__main__":
    main()
