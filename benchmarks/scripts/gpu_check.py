"""The one-shot GPU check: everything genforge does on an NVIDIA GPU, in one command, one JSON and one table.

On a machine with CUDA it installs nothing; it
  1. runs the gpu-marked tests (pytest -m gpu),
  2. trains each built-in model --steps on CUDA in fp32 and under fp16 and bf16 autocast,
  3. exports each fp32 run to ONNX fp32, fp16 and int8 (--target tensorrt),
  4. builds a TensorRT engine from each export,
  5. benchmarks every GPU backend (torch, ort-cuda, ort-trt, tensorrt) at batch 1 and 64: CUDA-event
     timing with device-resident I/O, plus the end-to-end (host to host) column,
and writes --out (JSON) and prints the table, then what it skipped and why. Sized for about 5 minutes
on one H100/H200 (limit: 8). `--dry` (or a machine without CUDA) skips every GPU step with its reason,
so the script itself is tested on the CPU.

Run: python benchmarks/scripts/gpu_check.py [--dry] [--steps 300] [--out gpu-check.json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genforge.core.precision import export_precisions, training_precisions

MODELS = ("dcgan", "cgan", "vae")
TRAIN_PRECISIONS = training_precisions()
EXPORT_PRECISIONS = tuple(export_precisions())
GPU_BACKENDS = ("torch", "ort-cuda", "ort-trt", "tensorrt")
BATCHES = (1, 64)


def gpu_reasons(dry: bool) -> dict[str, str | None]:
    """Why each kind of step cannot run here (None: it can)."""
    import torch

    cuda = "--dry was given" if dry else (None if torch.cuda.is_available() else "no CUDA device")
    try:
        import tensorrt  # noqa: F401
        tensorrt_missing = None
    except ImportError:
        tensorrt_missing = "tensorrt is not installed (pip install 'genforge[gpu]')"
    try:
        import onnxruntime as ort

        ort_cuda = None if "CUDAExecutionProvider" in ort.get_available_providers() else \
            "this onnxruntime has no CUDAExecutionProvider (pip install 'genforge[gpu]')"
    except ImportError:
        ort_cuda = "onnxruntime is not installed"
    return {"cuda": cuda, "tensorrt": cuda or tensorrt_missing, "ort-cuda": cuda or ort_cuda}


class Check:
    def __init__(self, dry: bool):
        self.reasons = gpu_reasons(dry)
        self.steps: list[dict] = []

    def step(self, name: str, needs: str, work, after: str | None = None):
        """Run one step if what it needs is here (and the step it builds on, `after`, ran); record ok / skipped
        (with why) / failed (with the error)."""
        reason = self.reasons[needs] or (f"{after} did not run" if after and not self.ran(after) else None)
        if reason:
            self.steps.append({"step": name, "status": "skipped", "reason": reason})
            return None
        start = time.perf_counter()
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001  a failed step is reported and the check goes on
            self.steps.append({"step": name, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:300],
                               "seconds": round(time.perf_counter() - start, 2)})
            return None
        self.steps.append({"step": name, "status": "ok", "seconds": round(time.perf_counter() - start, 2),
                           **(result if isinstance(result, dict) else {})})
        return result

    def ran(self, name: str) -> bool:
        return any(s["step"] == name and s["status"] == "ok" for s in self.steps)


def run_gpu_tests() -> dict:
    result = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                             str(Path(__file__).resolve().parents[2] / "tests")], capture_output=True, text=True)
    summary = (result.stdout.strip().splitlines() or [""])[-1]
    if result.returncode != 0:
        raise RuntimeError(f"gpu tests failed: {summary}")
    return {"summary": summary}


def train(model: str, precision: str, out: Path, steps: int) -> dict:
    from genforge.core.runs.config import TrainConfig
    from genforge.core.training.trainer import Trainer

    config = TrainConfig(model=model, dataset="digits", steps=steps, batch_size=64, device="cuda",
                         precision=precision, channels_last=True, sample_every=0, checkpoint_every=0)
    start = time.perf_counter()
    trainer = Trainer(config, out, progress=False)
    trainer.fit()
    return {"images_per_s": round(steps * 64 / (time.perf_counter() - start), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry", action="store_true", help="Skip every GPU step (with its reason).")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"))
    args = parser.parse_args(argv)

    from genforge.benchmarks.environment import environment
    from genforge.benchmarks.measure import Settings, run_benchmarks
    from genforge.benchmarks.rows import COLUMNS, row_cells
    from genforge.core.files import write_json

    check = Check(args.dry)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="genforge-gpu-check-") as tmp:
        work = Path(tmp)
        check.step("gpu-marked tests", "cuda", run_gpu_tests)
        targets = []
        for model in MODELS:
            for precision in TRAIN_PRECISIONS:
                run = work / f"{model}-{precision}"
                trained = f"train {model} {precision}"
                if check.step(trained, "cuda", lambda m=model, p=precision, r=run: train(m, p, r, args.steps)) \
                        and precision == "fp32":
                    targets.append(run)
        for model in MODELS:
            run = work / f"{model}-fp32"
            for precision in EXPORT_PRECISIONS:
                path = work / f"{run.name}-{precision}.onnx"
                exported = f"export {run.name} {precision}"
                if check.step(exported, "cuda", lambda r=run, p=precision, o=path: export(r, o, p),
                              after=f"train {model} fp32"):
                    targets.append(path)
                engine = path.with_suffix(".engine")
                if check.step(f"engine {path.name}", "tensorrt", lambda o=path, e=engine: build(o, e), after=exported):
                    targets.append(engine)
        settings = Settings(BATCHES, warmup_s=0.3, min_iters=10, duration_s=1.0)
        bench = check.step("benchmark every GPU backend", "cuda",
                           lambda: {"report": run_benchmarks(targets, list(GPU_BACKENDS), settings)})
    rows = (bench or {}).get("report", {}).get("rows", [])
    result = {"schema": "genforge.gpu_check/1", "environment": environment(), "steps": check.steps, "rows": rows,
              "seconds": round(time.perf_counter() - started, 1)}
    write_json(args.out, result, indent=1)
    print(" | ".join(COLUMNS))
    for row in rows:
        print(" | ".join(row_cells(row)))
    for step in check.steps:
        detail = step.get("reason") or step.get("summary") or f"{step.get('seconds', 0)} s"
        print(f"{step['status']:8} {step['step']}: {detail}")
    print(f"wrote {args.out} ({result['seconds']} s)")
    return 1 if any(s["status"] == "failed" for s in check.steps) else 0


def export(run: Path, out: Path, precision: str) -> dict:
    from genforge.exporters.onnx import export_onnx

    report = export_onnx(run, out, precision=precision, target="tensorrt")
    return {"psnr_db": round(min(c["psnr_db"] for c in report.checks), 1)}


def build(onnx_path: Path, engine: Path) -> dict:
    from genforge.exporters.tensorrt import build_engine

    sidecar = build_engine(onnx_path, engine, 1, 16, 64)
    return {"tensorrt": sidecar["tensorrt_version"]}


if __name__ == "__main__":
    sys.exit(main())
