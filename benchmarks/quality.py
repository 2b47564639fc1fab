"""Quality of every built-in model on digits (32x32, 30 epochs, CPU): the table in the README.

For each model: train 30 epochs (batch 32; GAN widths 32), then `genforge evaluate` on
2,000 samples against the test split. FD is in the feature space of genforge's digits
classifier (its test accuracy is printed); floor = FD(train, test), ceiling =
FD(uniform noise, test). Targets (issue 5): cgan conditional accuracy >= 0.97 and FD
<= 4x the floor; dcgan FD <= 8x the floor.
Run: python benchmarks/quality.py [--out benchmarks/results] [--epochs 30]
"""

import argparse
import json
import shutil
import time
from pathlib import Path

from genforge.core.evaluation import evaluate_run
from genforge.core.trainer import TrainConfig, Trainer

MODELS = {
    "dcgan": {"g_width": 32, "d_width": 32},
    "cgan": {"g_width": 32, "d_width": 32},
    "vae": {},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs", type=Path, default=Path("runs/quality"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for model, options in MODELS.items():
        config = TrainConfig(model=model, dataset="digits", image_size=32, batch_size=32, epochs=args.epochs,
                             model_options=options, sample_every=0, checkpoint_every=0, log_every=50)
        start = time.perf_counter()
        trainer = Trainer(config, args.runs / model, overwrite=True, progress=False)
        run = trainer.fit()
        wall = time.perf_counter() - start
        scores = evaluate_run(run, n=args.n)
        scores.update(model=model, wall_s=wall, steps=trainer.step)
        rows.append(scores)
        shutil.copy(run / "samples.png", args.out / f"quality-{model}.png")
        print(f"{model}: {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()})}",
              flush=True)
    (args.out / "quality.json").write_text(json.dumps(rows, indent=2))
    header = "| model | FD | FD / floor | KID | cond. acc. | -ELBO (nats) | recon PSNR (dB) | steps | wall (s) |"
    lines = [header, "|" + "---|" * 9]
    for r in rows:
        def fmt(key, spec=".3g", r=r):
            return format(r[key], spec) if key in r else "–"
        lines.append(f"| {r['model']} | {fmt('fd')} | {fmt('fd_over_floor', '.2f')} | {fmt('kid')} | "
                     f"{fmt('cond_acc', '.3f')} | {fmt('neg_elbo', '.1f')} | {fmt('recon_psnr', '.1f')} | "
                     f"{r['steps']} | {r['wall_s']:.0f} |")
    table = "\n".join(lines)
    floor, ceiling, accuracy = rows[0]["fd_floor"], rows[0]["fd_ceiling"], rows[0]["classifier_test_accuracy"]
    note = (f"\nFD floor (train vs test) {floor:.3g}, ceiling (uniform noise vs test) {ceiling:.4g}; "
            f"feature classifier test accuracy {accuracy:.3f}.")
    (args.out / "quality.md").write_text(table + note + "\n")
    print(table + note)
    by_model = {r["model"]: r for r in rows}
    checks = [("cgan conditional accuracy >= 0.97", by_model["cgan"]["cond_acc"] >= 0.97),
              ("cgan FD <= 4x floor", by_model["cgan"]["fd_over_floor"] <= 4),
              ("dcgan FD <= 8x floor", by_model["dcgan"]["fd_over_floor"] <= 8)]
    for label, ok in checks:
        print(f"{label}: {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
