"""The diffusion sampler's speed: PyTorch eager (the Python loop) against the one-graph ONNX exports.

Exports RUN (a trained diffusion run) to ONNX fp32 and int8 (the int8 behind the FD quality gate) at
--steps DDIM steps, then times, in interleaved rounds, batch 1 and 8 on: PyTorch eager fp32, PyTorch
eager bf16 (where the CPU has AVX-512 BF16 or AMX), ONNX Runtime fp32 and ONNX Runtime int8. Prints
images per second at N steps, latency per step and the speed-up over the eager loop, and the int8
file's PSNR against PyTorch and FD change against fp32. Target: ONNX fp32 at batch 1 at least 1.5x
the eager loop; int8 faster again within the gate.

Run: python benchmarks/scripts/diffusion_speed.py --run runs/diffusion [--steps 20] [--rounds 5]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import genforge
from genforge.app.export import export_gated
from genforge.core.compute import settle
from genforge.core.hardware import cpu_has_bf16


def time_calls(generator, z, labels, seconds: float) -> list[float]:
    samples, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(samples) < 3:
        start = time.perf_counter()
        generator.run(z, labels)
        samples.append(time.perf_counter() - start)
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="A trained diffusion run directory.")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="Timing per backend per round.")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    threads = settle(args.threads).threads
    sampling = {"steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for precision in ("fp32", "int8"):
            path = Path(tmp) / f"sampler-{precision}.onnx"
            started = time.perf_counter()
            report = export_gated(args.run, path, precision=precision, sampling=sampling)
            worst = min(c["psnr_db"] for c in report.checks)
            gate = (f", FD {report.quality['fd_increase']:+.1%} against fp32 (gate 10%)" if report.quality else "")
            print(f"export {precision}: {time.perf_counter() - started:.1f} s, {path.stat().st_size / 1e6:.1f} MB, "
                  f"PSNR against PyTorch {worst:.1f} dB{gate}", flush=True)
            files[f"ort {precision}"] = genforge.load(path)
        backends = {"torch eager fp32": genforge.load(args.run, sampling=sampling)}
        if cpu_has_bf16():
            backends["torch eager bf16"] = genforge.load(args.run, sampling=sampling, precision="bf16")
        backends.update(files)
        print(f"{args.steps} DDIM steps, {threads} threads, {args.rounds} interleaved rounds")
        print(f"{'backend':18} {'batch':>5} {'ms/image batch':>15} {'ms/step':>8} {'img/s':>8} {'vs eager':>9}")
        for batch in (int(b) for b in args.batches.split(",")):
            z, labels = backends["torch eager fp32"].prepare_inputs(n=batch, seed=0)
            samples = {name: [] for name in backends}
            for generator in backends.values():
                generator.run(z, labels)  # warm-up
            for _ in range(args.rounds):
                for name, generator in backends.items():
                    samples[name] += time_calls(generator, z, labels, args.seconds)
            eager = statistics.median(samples["torch eager fp32"])
            for name, values in samples.items():
                median = statistics.median(values)
                print(f"{name:18} {batch:5d} {median * 1e3:15.1f} {median * 1e3 / args.steps:8.2f} "
                      f"{batch / median:8.1f} {eager / median:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
