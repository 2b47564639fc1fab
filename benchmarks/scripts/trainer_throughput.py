"""genforge's trainer against a plain PyTorch DCGAN loop, side by side in one run.

The plain loop is the classic PyTorch DCGAN example's loop, written out here: 64x64x3
DCGAN (latent 100, widths 64), batch 64, Adam(2e-4, 0.5/0.999), Sigmoid + BCELoss,
D on real then fake (two backward passes), then G; random data. The trainer runs the
built-in dcgan plugin with the same sizes on the in-memory `shapes` dataset at 64x64.
Variants run interleaved (A/B/C, A/B/C, ...) so machine noise hits all of them alike.

Targets: trainer fp32 >= 1.0x the plain loop; trainer with the CPU fast path
(channels_last, plus bf16 autocast only where the CPU has native bf16) >= 1.6x.

Arithmetic: each variant's floating-point operations per image are counted on one real step
(torch.utils.flop_counter: convolutions and matmuls, forward and backward), so the table
gives GFLOP/s and the share of the CPU's fp32 peak (core/hardware.py: cores x clock x fp32
lanes x 2 (FMA) x 2 FMA units). The trainer does less arithmetic than the plain loop (no D
weight gradients in the G step). Without bf16 the fast-path target is bounded by that peak:
the last line says what share of it 1.6x the plain loop's rate would take.
Run: python benchmarks/scripts/trainer_throughput.py [--steps 6] [--rounds 3]
"""

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from genforge.core.hardware import cpu_flags, cpu_has_bf16, cpu_model, cpu_peak_gflops
from genforge.core.precision import REFERENCE, bfloat16_precision
from genforge.core.runs.config import TrainConfig
from genforge.core.training.trainer import Trainer

NZ, NGF, NDF, NC, BATCH = 100, 64, 64, 3, 64


def classic_networks():
    g = nn.Sequential(
        nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 8), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(True),
        nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    return g, d


class PlainLoop:
    def __init__(self):
        torch.manual_seed(0)
        self.g, self.d = classic_networks()
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.loss = nn.BCELoss()
        self.data = torch.rand(BATCH, NC, 64, 64) * 2 - 1

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            real = self.data
            self.d.zero_grad()
            out = self.d(real).view(-1)
            err_real = self.loss(out, torch.ones_like(out))
            err_real.backward()
            fake = self.g(torch.randn(BATCH, NZ, 1, 1))
            out = self.d(fake.detach()).view(-1)
            err_fake = self.loss(out, torch.zeros_like(out))
            err_fake.backward()
            self.opt_d.step()
            self.g.zero_grad()
            out = self.d(fake).view(-1)
            err_g = self.loss(out, torch.ones_like(out))
            err_g.backward()
            self.opt_g.step()
        return steps * BATCH / (time.perf_counter() - start)


class TrainerLoop:
    def __init__(self, **fast):
        self.dir = tempfile.TemporaryDirectory()
        config = TrainConfig(model="dcgan", dataset="shapes", image_size=64, channels=3, batch_size=BATCH,
                             steps=10**9, sample_every=0, checkpoint_every=0, log_every=10**9, **fast)
        self.trainer = Trainer(config, f"{self.dir.name}/run", progress=False)
        self.trainer.model.train()

    def run(self, steps: int) -> float:
        t = self.trainer
        start = time.perf_counter()
        for _ in range(steps):
            images, labels = t.sampler.batch(t.step)
            images = images.contiguous(memory_format=t.memory_format)
            metrics = t.model.training_step(images, labels, t.ctx)
            t._check_finite(metrics)
            t.step += 1
        return steps * BATCH / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6, help="steps per timed block")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    fast = {"channels_last": True, "precision": bfloat16_precision() if cpu_has_bf16() else REFERENCE}  # CPU fast path
    print(f"CPU: {cpu_model()}, {torch.get_num_threads()} threads, AVX-512: {'avx512f' in cpu_flags()}, "
          f"native bf16: {cpu_has_bf16()}; torch {torch.__version__}")
    print(f"fast path used here: channels_last={fast['channels_last']}, precision={fast['precision']}")
    variants = {"plain loop": PlainLoop(), "trainer fp32": TrainerLoop(), "trainer fast path": TrainerLoop(**fast)}
    flops = {}
    for name, v in variants.items():
        v.run(1)  # warm-up: oneDNN primitive creation, allocator
        with FlopCounterMode(display=False) as counter:
            v.run(1)
        flops[name] = counter.get_total_flops() / BATCH
    peak, how = cpu_peak_gflops(torch.get_num_threads())
    print(f"fp32 peak {peak:.0f} GFLOP/s ({how})")
    rates = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, variant in variants.items():
            rates[name].append(variant.run(args.steps))
    base = statistics.median(rates["plain loop"])
    print(f"{'variant':20} {'median img/s':>13} {'min':>8} {'max':>8} {'vs plain':>9} {'GFLOP/img':>10} "
          f"{'GFLOP/s':>8} {'% peak':>7}")
    for name, values in rates.items():
        rate = statistics.median(values)
        gflops = rate * flops[name] / 1e9
        print(f"{name:20} {rate:13.1f} {min(values):8.1f} {max(values):8.1f} {rate / base:8.2f}x "
              f"{flops[name] / 1e9:10.3f} {gflops:8.1f} {100 * gflops / peak:6.1f}%")
    fp32_ratio = statistics.median(rates["trainer fp32"]) / base
    fast_ratio = statistics.median(rates["trainer fast path"]) / base
    print(f"trainer fp32 / plain = {fp32_ratio:.2f} (target >= 1.0): {'ok' if fp32_ratio >= 1.0 else 'MISSED'}")
    print(f"trainer fast / plain = {fast_ratio:.2f} (target >= 1.6): {'ok' if fast_ratio >= 1.6 else 'MISSED'}")
    needed = 1.6 * base * flops["trainer fast path"] / 1e9
    print(f"1.6x the plain loop = {1.6 * base:.1f} img/s = {needed:.0f} GFLOP/s in {fast['precision']}, "
          f"{100 * needed / peak:.0f}% of the fp32 peak")


if __name__ == "__main__":
    main()
