"""Loader throughput (images/s at batch 64) of every built-in dataset that runs offline.

Two paths per dataset: the trainer's in-memory batch sampler (what `genforge train`
uses) and a plain torch DataLoader over the same Dataset (what a third-party Dataset
gets). Target: digits well above 10,000 images/s, so loading never bounds
training. Run: python benchmarks/scripts/data_loading.py [--image-size 32] [--seconds 2]
"""

import argparse
import time

import torch

from genforge.core.contract import open_dataset
from genforge.core.registry import get_registry
from genforge.core.training.batches import BatchSampler


def rate(fetch_batch, seconds: float) -> float:
    fetch_batch(0)
    images, step, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        images += fetch_batch(step)
        step += 1
    return images / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{args.image_size}x{args.image_size}")
    print(f"{'dataset':10} {'load s':>7} {'sampler img/s':>14} {'DataLoader img/s':>17}")
    for name, spec in get_registry().specs("datasets").items():
        if not spec.offline:
            continue
        start = time.perf_counter()
        dataset, info = open_dataset(name, "train", args.image_size)
        load_s = time.perf_counter() - start
        sampler = BatchSampler(dataset, args.batch_size, seed=0)
        fast = rate(lambda s, sampler=sampler: len(sampler.batch(s)[0]), args.seconds)
        loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True)
        from_loader = loader_steps(loader)

        plain = rate(from_loader, args.seconds)
        print(f"{name:10} {load_s:7.2f} {fast:14,.0f} {plain:17,.0f}")


def loader_steps(loader):
    """A step function drawing one batch from a DataLoader, restarting it at the end of each epoch."""
    iterator = iter(loader)

    def step(_):
        nonlocal iterator
        try:
            return len(next(iterator)[0])
        except StopIteration:
            iterator = iter(loader)
            return len(next(iterator)[0])

    return step


if __name__ == "__main__":
    main()
