"""Every CPU path genforge offers for one generator, side by side on the machine at hand.

A DCGAN generator for 64x64 RGB images (dcgan's default widths; trained --steps on `shapes`, enough
for real weights) run as: PyTorch eager fp32, PyTorch bf16 with channels_last (runtime.load(run,
precision="bf16"); only on CPUs with AVX-512 BF16 or AMX), ONNX Runtime fp32 and int8 (--target cpu),
and OpenVINO's default on the fp32 ONNX when it is installed (a yardstick; genforge does not depend
on it). Median ms per call at batch 1 and 64 over interleaved rounds, the speed-up over torch fp32 at
batch 64, and PSNR against torch fp32 on the same noise. Prints the CPU and its bf16 support.

Run: python benchmarks/scripts/cpu_paths.py [--steps 20 --rounds 5 --threads N]
"""

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from genforge.core import runtime
from genforge.core.compute import settle
from genforge.core.hardware import cpu_flags, cpu_has_bf16, cpu_model
from genforge.core.numerics import psnr
from genforge.core.runs.config import TrainConfig
from genforge.core.training.trainer import Trainer
from genforge.exporters.onnx import export_onnx


def timed_ms(fn, seconds: float) -> float:
    fn()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds or calls < 3:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls * 1000


def openvino_path(onnx_file: Path, threads: int):
    try:
        import openvino as ov  # optional yardstick, never a dependency
    except ImportError:
        return None
    compiled = ov.Core().compile_model(str(onnx_file), "CPU", {"INFERENCE_NUM_THREADS": threads})
    return lambda z: compiled({"z": z})[compiled.output(0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="Timed seconds per path, batch and round.")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    threads = settle(args.threads).threads
    bf16_flags = sorted({"avx512_bf16", "amx_bf16"} & cpu_flags())
    print(f"CPU: {cpu_model()}; {threads} threads; native bf16: {', '.join(bf16_flags) or 'no'}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = TrainConfig(model="dcgan", dataset="shapes", image_size=64, channels=3, steps=args.steps,
                             batch_size=32, sample_every=0, checkpoint_every=0, threads=threads)
        run = Trainer(config, tmp / "run", progress=False).fit()
        for precision in ("fp32", "int8"):
            export_onnx(run, tmp / f"{precision}.onnx", precision=precision)
        paths = {"torch fp32": runtime.load(run).run}
        if cpu_has_bf16():
            paths["torch bf16 channels_last"] = runtime.load(run, precision="bf16").run
        paths["ORT fp32"] = runtime.load(tmp / "fp32.onnx").run
        paths["ORT int8 (--target cpu)"] = runtime.load(tmp / "int8.onnx").run
        openvino = openvino_path(tmp / "fp32.onnx", threads)
        if openvino is not None:
            paths["OpenVINO default (yardstick)"] = lambda z, labels: openvino(z)
        z = runtime.load(run).prepare_inputs(n=64, seed=5)[0]
        times = {(name, batch): [] for name in paths for batch in (1, 64)}
        for _ in range(args.rounds):
            for name, run_path in paths.items():
                for batch in (1, 64):
                    call = functools.partial(run_path, z[:batch], None)
                    times[name, batch].append(timed_ms(call, args.seconds))
        reference = paths["torch fp32"](z, None)
        base = statistics.median(times["torch fp32", 64])
        print(f"{'path':30} {'ms b1':>8} {'ms b64':>8} {'x torch fp32 b64':>17} {'PSNR dB':>8}  "
              f"(median of {args.rounds} interleaved rounds)")
        for name, run_path in paths.items():
            got = np.asarray(run_path(z, None), dtype=np.float32)
            b64 = statistics.median(times[name, 64])
            print(f"{name:30} {statistics.median(times[name, 1]):8.3f} {b64:8.3f} {base / b64:17.2f} "
                  f"{psnr(reference, got):8.1f}")
        if not cpu_has_bf16():
            print("torch bf16: not run: this CPU has neither AVX-512 BF16 nor AMX (genforge refuses bf16 here)")
        if openvino is None:
            print("OpenVINO: not installed (pip install openvino to add it as a yardstick)")


if __name__ == "__main__":
    main()
