"""Quality of every built-in model with its defaults only (no model options): the tables in the README.

For each dataset and model: `genforge train --model M --dataset D --epochs E` at the default batch,
widths and recipe, then `genforge evaluate` on 2,000 samples against the test split. FD is in the
feature space of genforge's classifier for the dataset (its test accuracy is printed); floor =
FD(train, test), ceiling = FD(uniform noise, test). Writes quality-DATASET.md/.json and a sample
grid per model (quality-DATASET-MODEL.png) to --out.

Datasets: digits (scikit-learn's, 32x32) and digits-distorted (the same digits at 28x28 under random
affine distortions, 5 per digit; harder, still offline). Targets on digits: cgan
conditional accuracy >= 0.98 and FD <= 2x the floor; dcgan and vae FD <= 3x the floor. On
digits-distorted the plain conditional GAN loop of a tutorial (benchmarks/scripts/plain_cgan.py) trains the
same epochs beside them as a yardstick: cgan's FD at most half of its, conditional accuracy above it.
Run: python benchmarks/scripts/quality.py [--datasets digits,digits-distorted] [--epochs digits=50,digits-distorted=10]
"""

import argparse
import json
import shutil
import time
from pathlib import Path

from plain_cgan import score_plain_cgan  # the script beside this one

from genforge.core.evaluation.scoring import evaluate_run
from genforge.core.runs.config import TrainConfig
from genforge.core.training.trainer import Trainer

MODELS = ("dcgan", "cgan", "vae")
TARGETS = {"digits": [("cgan conditional accuracy >= 0.98", "cgan", lambda r: r["cond_acc"] >= 0.98),
                      ("cgan FD <= 2x floor", "cgan", lambda r: r["fd_over_floor"] <= 2),
                      ("dcgan FD <= 3x floor", "dcgan", lambda r: r["fd_over_floor"] <= 3),
                      ("vae FD <= 3x floor", "vae", lambda r: r["fd_over_floor"] <= 3)]}
YARDSTICK = "plain cgan loop"
YARDSTICK_TARGETS = [("cgan FD <= 0.5x the plain loop's", lambda cgan, plain: cgan["fd"] <= 0.5 * plain["fd"]),
                     ("cgan conditional accuracy > the plain loop's",
                      lambda cgan, plain: cgan["cond_acc"] > plain["cond_acc"])]


def fmt(row: dict, key: str, spec: str = ".3g") -> str:
    return format(row[key], spec) if key in row else "–"


def table(rows: list[dict]) -> str:
    lines = ["| model | FD | FD / floor | KID | cond. acc. | -ELBO (nats) | recon PSNR (dB) | epochs | s / epoch |",
             "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['model']} | {fmt(r, 'fd')} | {fmt(r, 'fd_over_floor', '.2f')} | {fmt(r, 'kid')} | "
                     f"{fmt(r, 'cond_acc', '.3f')} | {fmt(r, 'neg_elbo', '.1f')} | {fmt(r, 'recon_psnr', '.1f')} | "
                     f"{r['epochs']} | {r['s_per_epoch']:.1f} |")
    first = rows[0]
    return "\n".join(lines) + (f"\nFD floor (train vs test) {first['fd_floor']:.3g}, ceiling (uniform noise vs test) "
                               f"{first['fd_ceiling']:.4g}; feature classifier test accuracy "
                               f"{first['classifier_test_accuracy']:.3f}.")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs", type=Path, default=Path("runs/quality"))
    parser.add_argument("--datasets", default="digits,digits-distorted")
    parser.add_argument("--epochs", default="digits=50,digits-distorted=10", help="Epochs per dataset.")
    parser.add_argument("--yardstick", default="digits-distorted",
                        help="Datasets on which the plain cgan loop trains beside the models ('' for none).")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    epochs = {k: int(v) for k, v in (item.split("=") for item in args.epochs.split(","))}
    args.out.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets.split(","):
        rows = []
        for model in args.models.split(","):
            config = TrainConfig(model=model, dataset=dataset, epochs=epochs[dataset], sample_every=0,
                                 checkpoint_every=0, log_every=50)
            start = time.perf_counter()
            trainer = Trainer(config, args.runs / f"{dataset}-{model}", overwrite=True, progress=False)
            run = trainer.fit()
            wall = time.perf_counter() - start
            scores = evaluate_run(run, n=args.n)
            scores.update(model=model, dataset=dataset, wall_s=wall, steps=trainer.step, epochs=epochs[dataset],
                          s_per_epoch=wall / epochs[dataset])
            rows.append(scores)
            shutil.copy(run / "samples.png", args.out / f"quality-{dataset}-{model}.png")
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}), flush=True)
        if dataset in args.yardstick.split(","):
            scores = score_plain_cgan(TrainConfig(model="cgan", dataset=dataset), epochs[dataset], n=args.n)
            rows.append({**scores, "dataset": dataset})
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}), flush=True)
        (args.out / f"quality-{dataset}.json").write_text(json.dumps(rows, indent=2))
        text = table(rows)
        (args.out / f"quality-{dataset}.md").write_text(text + "\n")
        print(f"\n{dataset}:\n{text}")
        by_model = {r["model"]: r for r in rows}
        for label, model, check in TARGETS.get(dataset, []):
            if model in by_model:
                print(f"{label}: {'ok' if check(by_model[model]) else 'MISSED'}")
        if "cgan" in by_model and YARDSTICK in by_model:
            for label, check in YARDSTICK_TARGETS:
                print(f"{label}: {'ok' if check(by_model['cgan'], by_model[YARDSTICK]) else 'MISSED'}")


if __name__ == "__main__":
    main()
