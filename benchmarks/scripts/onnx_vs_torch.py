"""The DCGAN-64 generator in PyTorch eager (CPU) against its ONNX exports on ONNX Runtime CPU.

Generator: 64x64x3, latent 100, widths 64 (the classic example's sizes), trained briefly
on `shapes` so that the int8 quality gate has a real FD to hold. Backends, timed
interleaved in one process (round 1: A B C D, round 2: A B C D, ...): torch eager fp32
(inference_mode), ORT CPU fp32 as exported (ConvTranspose rewritten exactly to 2x2 Convs,
exporters/rewrite.py), ORT CPU fp32 with ConvTranspose kept (--no-rewrite, for comparison),
ORT CPU int8 (Q/DQ on the rewritten graph). Latency: batch 1; throughput: batch 64, images/s.
Table figures are medians over all calls. Each target ratio is the median over rounds of
that round's ratio (a paired comparison: both sides timed seconds apart), with the rounds'
min..max beside it to show how much this machine's noise moves it.

GFLOP/s counts the generator's multiply-adds x 2 for every backend (the rewrite keeps the
count). The fp32 peak is cores x clock x fp32 lanes x 2 (FMA) x 2 FMA units (core/hardware.py).

Targets: fp32 ORT batch-1 latency >= 3x lower than eager; batch-64 throughput
>= 1.4x; int8 batch-64 throughput >= 1.25x fp32 ORT with the quality gate held.
Run: python benchmarks/scripts/onnx_vs_torch.py [--run RUN_DIR] [--seconds 1.5] [--rounds 10]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genforge.app.export import export_gated
from genforge.core import runtime
from genforge.core.flops import count_macs
from genforge.core.hardware import cpu_flags, cpu_model, cpu_peak_gflops
from genforge.core.inputs import GeneratorSignature
from genforge.core.runs.config import TrainConfig
from genforge.core.training.trainer import Trainer


def train_reference(out: Path) -> Path:
    config = TrainConfig(model="dcgan", dataset="shapes", image_size=64, channels=3, batch_size=32, steps=60,
                         sample_every=0, checkpoint_every=0, log_every=20)
    Trainer(config, out, progress=False).fit()
    return out


def time_calls(fn, seconds: float, min_calls: int = 10) -> list[float]:
    fn()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < min_calls:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, help="a trained dcgan 64x64x3 run (default: train one, ~1 min)")
    parser.add_argument("--seconds", type=float, default=1.5, help="timing per backend, batch and round")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="genforge-bench-"))
    run = args.run or train_reference(tmp / "run")
    paths = {}
    for precision, rewrite in (("fp32", True), ("fp32", False), ("int8", True)):
        path = tmp / f"{precision}{'' if rewrite else '-convtranspose'}.onnx"
        report = export_gated(run, path, precision=precision, quality_samples=1000, rewrite=rewrite)
        paths[path.stem] = path
        if report.quality:
            q = report.quality
            print(f"int8 quality gate: FD {q['fd_variant']:.4g} vs fp32 {q['fd_fp32']:.4g} "
                  f"({q['fd_increase']:+.1%}, gate +10%): {'held' if q['ok'] else 'FAILED'}; "
                  f"PSNR vs PyTorch {min(c['psnr_db'] for c in report.checks):.1f} dB")
    backends = {"torch eager fp32": runtime.load(run), "ORT CPU fp32": runtime.load(paths["fp32"]),
                "ORT fp32 ConvT kept": runtime.load(paths["fp32-convtranspose"]),
                "ORT CPU int8": runtime.load(paths["int8"])}
    import onnxruntime as ort  # lazy: onnxruntime is an extra

    torch_gen = backends["torch eager fp32"]
    macs = count_macs(torch_gen.loaded.generator, (torch.randn(1, 100, 1, 1),))
    peak, how = cpu_peak_gflops(torch.get_num_threads())
    print(f"CPU: {cpu_model()}; {torch.get_num_threads()} threads; AVX-512: {'avx512f' in cpu_flags()}, "
          f"VNNI: {bool({'avx512_vnni', 'avx_vnni'} & cpu_flags())}; torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}")
    print(f"generator: {macs / 1e6:.1f} M multiply-adds per image; fp32 peak {peak:.0f} GFLOP/s ({how})")
    results = {(name, b): [] for name in backends for b in (1, 64)}
    per_round = {(name, b): [] for name in backends for b in (1, 64)}
    for _ in range(args.rounds):
        for batch in (1, 64):
            z, _ = GeneratorSignature((100, 1, 1)).inputs(n=batch, seed=0)
            for name, backend in backends.items():
                times = time_calls(lambda backend=backend, z=z: backend.run(z, None), args.seconds)
                results[(name, batch)] += times
                per_round[(name, batch)].append(statistics.median(times))
    print(f"{'backend':19} {'b1 median ms':>12} {'b1 p90 ms':>10} {'b64 median ms':>13} {'b64 img/s':>10} "
          f"{'GFLOP/s':>8} {'% peak':>7}")
    for name in backends:
        b1, b64 = results[(name, 1)], results[(name, 64)]
        m1, m64 = statistics.median(b1), statistics.median(b64)
        gflops = 2 * macs * 64 / m64 / 1e9
        print(f"{name:19} {m1 * 1e3:12.2f} {np.percentile(b1, 90) * 1e3:10.2f} {m64 * 1e3:13.1f} {64 / m64:10.0f} "
              f"{gflops:8.1f} {100 * gflops / peak:6.1f}%")

    def paired(slow: str, fast: str, batch: int) -> tuple[float, str]:
        """Median over rounds of the per-round speed ratio (rounds are interleaved, so each
        ratio compares runs a few seconds apart), and the rounds' min..max."""
        ratios = [a / b for a, b in zip(per_round[(slow, batch)], per_round[(fast, batch)])]
        return statistics.median(ratios), f"rounds {min(ratios):.2f}..{max(ratios):.2f}"

    checks = [("fp32 ORT batch-1 latency, eager / ORT", *paired("torch eager fp32", "ORT CPU fp32", 1), 3.0),
              ("fp32 ORT batch-64 throughput, ORT / eager", *paired("torch eager fp32", "ORT CPU fp32", 64), 1.4),
              ("int8 batch-64 throughput, int8 / fp32 ORT", *paired("ORT CPU fp32", "ORT CPU int8", 64), 1.25)]
    for label, ratio, spread, target in checks:
        print(f"{label:45} {ratio:5.2f}x ({spread}; target >= {target}): {'ok' if ratio >= target else 'MISSED'}")
    b1, _ = paired("ORT fp32 ConvT kept", "ORT CPU fp32", 1)
    b64, _ = paired("ORT fp32 ConvT kept", "ORT CPU fp32", 64)
    print(f"{'the rewrite in fp32 ORT, kept / rewritten':45} b1 latency {b1:.2f}x, b64 throughput {b64:.2f}x")


if __name__ == "__main__":
    main()
