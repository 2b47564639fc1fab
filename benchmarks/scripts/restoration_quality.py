"""The built-in inpaint model with its defaults: masked PSNR and SSIM against the damaged input, and its int8 export.

Trains `inpaint` with its defaults on a dataset (digits, 32 px: a square hole of a quarter of the image),
scores n restored test images against the clean ones (genforge evaluate: psnr_masked, ssim_masked and their
damaged-input baselines), exports fp32 and int8 (the int8 file behind its PSNR gate) and scores the int8
file the same way. Targets: masked PSNR at least 3 dB above the damaged input, SSIM above it too, and the
int8 file within 0.5 dB of fp32. Writes restoration-quality.json and the run's grid to --out.

Run: python benchmarks/scripts/restoration_quality.py [--dataset digits] [--image-size 32] [--n 1000] [--threads N]
     [--epochs E]
"""

import argparse
import json
import shutil
import time
from pathlib import Path

import genforge
from genforge.core.files import write_json


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="Default: the trainer's default length.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs", type=Path, default=Path("runs/restoration-quality"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run = genforge.train(model="inpaint", dataset=args.dataset, image_size=args.image_size, out=args.runs / "run",
                         overwrite=True, progress=False, threads=args.threads, epochs=args.epochs)
    train_s = time.perf_counter() - started
    metrics = "psnr,psnr_masked,ssim,ssim_masked"
    fp32 = genforge.evaluate(run.path, n=args.n, metrics=metrics)
    int8_file = genforge.export(run.path, out=args.runs / "inpaint-int8.onnx", precision="int8", overwrite=True)
    int8 = genforge.evaluate(int8_file, n=args.n, metrics=metrics, dataset_from=run.path)
    shutil.copy(run.path / "samples.png", args.out / f"restoration-{args.dataset}.png")
    gain = fp32["psnr_masked"] - fp32["psnr_masked_input"]
    drop = fp32["psnr_masked"] - int8["psnr_masked"]
    print(f"inpaint on {args.dataset} at {args.image_size} px, defaults ({run.trained['step']} steps, "
          f"{train_s:.0f} s)")
    for name, scores in (("PyTorch fp32", fp32), ("ONNX int8", int8)):
        print(f"  {name}: masked PSNR {scores['psnr_masked']:.2f} dB (damaged input {scores['psnr_masked_input']:.2f}),"
              f" masked SSIM {scores['ssim_masked']:.3f} (input {scores['ssim_masked_input']:.3f}), whole-image PSNR "
              f"{scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}")
    print(f"  target masked PSNR >= input + 3 dB: {gain:+.2f} dB {'ok' if gain >= 3 else 'MISSED'}; SSIM above the "
          f"input: {'ok' if fp32['ssim_masked'] > fp32['ssim_masked_input'] else 'MISSED'}; int8 within 0.5 dB: "
          f"{drop:+.2f} dB {'ok' if drop <= 0.5 else 'MISSED'}")
    write_json(args.out / "restoration-quality.json",
               {"dataset": args.dataset, "image_size": args.image_size, "steps": run.trained["step"],
                "train_s": train_s, "fp32": dict(fp32), "int8": dict(int8)})
    print(json.dumps({"psnr_masked_gain_db": gain, "int8_drop_db": drop}))


if __name__ == "__main__":
    main()
