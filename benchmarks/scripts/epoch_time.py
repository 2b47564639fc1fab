"""Seconds per training epoch at the defaults against genforge 0.1's recipe, side by side (interleaved rounds).

The 0.1 recipe is reachable through options: dcgan and cgan with `--no-ema -o loss=bce -o
spectral_norm=false -o lr=2e-4 -o beta1=0.5 -o beta2=0.999` (cgan also `-o conditional_bn=false -o class_loss=0`),
vae with `-o prior=standard`. Each round trains
one epoch of each variant on the same data and batch; the ratio new / old is the median over rounds.
Target: at most 1.3x.

Run: python benchmarks/scripts/epoch_time.py [--dataset digits --rounds 3]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from genforge.core.runs.config import TrainConfig
from genforge.core.training.trainer import Trainer

OLD_GAN = {"loss": "bce", "spectral_norm": False, "lr": 2e-4, "beta1": 0.5, "beta2": 0.999}
OLD = {  # model: (model options, training options) of the 0.1 recipe
    "dcgan": (OLD_GAN, {"ema": False}),
    "cgan": ({**OLD_GAN, "conditional_bn": False, "class_loss": 0.0}, {"ema": False}),
    "vae": ({"prior": "standard"}, {}),
}


def epoch_seconds(model: str, dataset: str, options: dict, out: Path, epochs: int = 2, **train) -> float:
    """fit() of `epochs` epochs over `epochs` (its end, a checkpoint and two grids, counted in too)."""
    config = TrainConfig(model=model, dataset=dataset, epochs=epochs, sample_every=0, checkpoint_every=0,
                         model_options=options, **train)
    trainer = Trainer(config, out, overwrite=True, progress=False)
    start = time.perf_counter()
    trainer.fit()
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'model':6} {'0.1 recipe s/epoch':>19} {'defaults s/epoch':>17} {'ratio':>6}  "
          f"(median of {args.rounds} rounds)")
    with tempfile.TemporaryDirectory() as tmp:
        for model, (old, old_train) in OLD.items():
            olds, news, ratios = [], [], []
            for round_ in range(args.rounds):
                a = epoch_seconds(model, args.dataset, old, Path(tmp) / f"{model}-old-{round_}", **old_train)
                b = epoch_seconds(model, args.dataset, {}, Path(tmp) / f"{model}-new-{round_}")
                olds.append(a)
                news.append(b)
                ratios.append(b / a)
            print(f"{model:6} {statistics.median(olds):19.2f} {statistics.median(news):17.2f} "
                  f"{statistics.median(ratios):6.2f}  (rounds {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
