"""The two int8 flavours side by side on ONNX Runtime's CPU provider: speed, fidelity and FD change.

`--target cpu` (uint8 asymmetric activations, 7-bit weights: ONNX Runtime's fast x86 kernels) against
`--target tensorrt` (symmetric int8, zero points 0: the only form TensorRT accepts), with fp32 as the
reference. Trains a DCGAN-32 (widths 32) for --steps on digits, exports the three files through
genforge's exporter (quality gate included: its FD change is printed), then times each at batch 1
and 64 in interleaved rounds (median ms) and prints PSNR against the PyTorch generator.

Run: python benchmarks/int8_targets.py [--steps 300 --rounds 7 --threads 2]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime as ort

from genforge.app.export import export_gated
from genforge.core import runtime
from genforge.core.runs.config import TrainConfig
from genforge.core.training.trainer import Trainer
from genforge.exporters.onnx import psnr


def median_ms(session, feed, seconds: float = 0.3) -> float:
    session.run(None, feed)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        session.run(None, feed)
        calls += 1
    return (time.perf_counter() - start) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = TrainConfig(model="dcgan", dataset="digits", steps=args.steps, batch_size=32, sample_every=0,
                             checkpoint_every=0, model_options={"g_width": 32, "d_width": 32})
        run = Trainer(config, tmp / "run", progress=False).fit()
        variants = {"fp32": dict(precision="fp32"), "int8 --target cpu": dict(precision="int8", target="cpu"),
                    "int8 --target tensorrt": dict(precision="int8", target="tensorrt")}
        fd_change, files = {}, {}
        for name, options in variants.items():
            files[name] = tmp / f"{name.replace(' ', '_')}.onnx"
            report = export_gated(run, files[name], **options)
            fd_change[name] = report.quality["fd_increase"] if report.quality else 0.0
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        sessions = {n: ort.InferenceSession(str(f), options, providers=["CPUExecutionProvider"])
                    for n, f in files.items()}
        reference = runtime.load(run)
        z, _ = reference.prepare_inputs(n=64, seed=3)
        expected = reference.generate(z=z)
        times = {(n, b): [] for n in sessions for b in (1, 64)}
        for _ in range(args.rounds):
            for name, session in sessions.items():
                for batch in (1, 64):
                    times[name, batch].append(median_ms(session, {"z": z[:batch]}))
        print(f"{'file':24} {'ms b1':>8} {'ms b64':>8} {'PSNR dB':>8} {'FD change':>10}  "
              f"(ONNX Runtime CPU, {args.threads} threads, median of {args.rounds} interleaved rounds)")
        for name, session in sessions.items():
            got = session.run(None, {"z": z})[0]
            print(f"{name:24} {statistics.median(times[name, 1]):8.3f} {statistics.median(times[name, 64]):8.3f} "
                  f"{psnr(expected, got):8.1f} {fd_change[name]:+10.1%}")


if __name__ == "__main__":
    main()
