"""Small data: a GAN trained on a few hundred images with and without augmentation, the same number of steps.

A dataset plugin registered here, `SET-subset`, keeps the first --images training images of a built-in
set (a class-balanced prefix of its shuffled train split) and its whole test split. The chosen model
trains on it once per --augment mode with everything else at its defaults, and each run is scored by
`genforge evaluate`'s metrics against the full built-in set (its feature classifier and test split),
so every mode is judged on the distribution, not on the images it saw. The subset's own images,
drawn as many times, are scored first: what a generator that only copies its training images reaches.
Target: FD over the floor at least 1.5x better with augmentation than without, conditional accuracy not
lower. Each mode's sample grid (the run's own samples.png, at its last step) goes to OUT/small-data-MODE.png.

Run: python benchmarks/scripts/small_data.py [--dataset digits] [--images 500] [--steps 1500|default | --epochs E]
     [--image-size 32] [--modes none,adaptive,fixed] [--threads N] [--score-every STEPS] [--seed S]
"""

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from genforge.core import registry
from genforge.core.data import ImageTensorDataset, batch_of
from genforge.core.evaluation.features import reference_for
from genforge.core.evaluation.metrics import fd_reference_points
from genforge.core.evaluation.scoring import evaluate_generator, frechet_distance_of
from genforge.core.files import write_json
from genforge.core.hookspecs import hookimpl
from genforge.core.runs.checkpoint import step_checkpoints
from genforge.core.runs.config import TrainConfig
from genforge.core.runs.run_dir import load_run, read_metrics
from genforge.core.specs import DatasetSpec
from genforge.core.training.trainer import Trainer

SOURCE = {"dataset": "digits", "images": 500}


def subset_order(count: int) -> torch.Tensor:
    """A seeded order of the full training split: its first SOURCE["images"] are the subset, the rest unseen."""
    return torch.randperm(count, generator=torch.Generator().manual_seed(1234))


def subset_indices(count: int) -> torch.Tensor:
    return subset_order(count)[:SOURCE["images"]]


def load_subset(split, image_size, channels, data_dir, download, seed):
    """The first SOURCE["images"] training images of SOURCE["dataset"] in a seeded order; its whole test split."""
    spec = registry.get_registry().dataset(SOURCE["dataset"])
    dataset, info = spec.load()(split, image_size, channels, data_dir, download, seed)
    info = dataclasses.replace(info, name=f"{SOURCE['dataset']}-subset")
    if split != "train":
        return dataset, info
    order = subset_indices(len(dataset))
    images, labels = dataset.images[order], None if dataset.labels is None else dataset.labels[order]
    sizes = {**info.split_sizes, "train": len(order)}
    return ImageTensorDataset(images, labels), dataclasses.replace(info, split_sizes=sizes)


@hookimpl
def register_datasets(register):
    register(DatasetSpec(f"{SOURCE['dataset']}-subset", "__main__:load_subset",
                         f"the first {SOURCE['images']} training images of {SOURCE['dataset']}"))


def discriminator_signs(model, full_train, args) -> dict:
    """The mean sign of the discriminator's scores on the subset's own images and on 500 training images of the
    full set it never saw, unaugmented: one that memorised its images scores them real and the others fake.
    Only for models with a discriminator `D` taking (images) or, conditional, (images, labels): the built-in GANs."""
    if not isinstance(getattr(model, "D", None), torch.nn.Module):
        return {}
    order = subset_order(len(full_train))
    signs = {}
    for name, indices in (("own", order[:args.images]), ("held_out", order[args.images:args.images + 500])):
        images, labels = batch_of(full_train, indices)
        with torch.no_grad():
            scores = model.D(images, labels) if model.conditional else model.D(images)
        signs[f"d_sign_{name}"] = float(torch.sign(scores.float()).mean())
    return signs


def train_and_score(mode: str, args, full_train) -> dict:
    out = args.runs / f"{args.model}-{mode}"
    if args.epochs:
        length = {"epochs": args.epochs}
    else:
        length = {} if args.steps is None else {"steps": args.steps}  # None: the trainer's default length
    config = TrainConfig(model=args.model, dataset=f"{args.dataset}-subset", **length, augment=mode,
                         image_size=args.image_size, threads=args.threads, seed=args.seed, sample_every=0,
                         checkpoint_every=args.score_every, keep=10_000)
    started = time.perf_counter()
    trainer = Trainer(config, out, overwrite=True, progress=False)
    trainer.fit()
    train_s = time.perf_counter() - started
    trend = []
    for path in step_checkpoints(out / "checkpoints") if args.score_every else [None]:
        loaded = load_run(out, checkpoint=None if path is None else path.name)
        judged = {**loaded.record["train"], "dataset": args.dataset}  # scored against the full set
        scores = {k: v for k, v in evaluate_generator(loaded.model, loaded.info, judged, n=args.n).items()
                  if isinstance(v, float | int)}
        signs = discriminator_signs(loaded.model, full_train, args)
        trend.append({"step": loaded.step, **scores, **signs})
        print(f"  {mode}, step {loaded.step}: FD/floor {scores['fd_over_floor']:.3f}, "
              f"cond_acc {scores.get('cond_acc', float('nan')):.3f}"
              + (f", D's mean score sign on its own images {signs['d_sign_own']:+.2f}, on held-out ones "
                 f"{signs['d_sign_held_out']:+.2f}" if signs else ""), flush=True)
    last_p = [r.get("augment_p") for r in read_metrics(out, "train")]
    args.out.mkdir(parents=True, exist_ok=True)
    trainer.sample_grid(args.out / f"small-data-{mode}.png")
    return {"mode": mode, "train_s": train_s, "steps": trainer.step, "final_p": last_p[-1] if last_p else None,
            **trend[-1], "trend": trend}


def memorised_reference(args, full_train, info) -> float:
    """FD over floor of the subset's own images drawn n times: what a generator that only copies its training
    images would score, the yardstick for how much any run generalises beyond them."""
    own = subset_indices(len(full_train))
    draws = own[torch.randint(0, len(own), (args.n,), generator=torch.Generator().manual_seed(0))]
    train = {"dataset": args.dataset, "image_size": args.image_size, "channels": info.channels, "data_dir": None,
             "seed": 0}
    fd = frechet_distance_of(batch_of(full_train, draws)[0], info, train)
    return fd / fd_reference_points(reference_for(train))["fd_floor"]


def steps(value: str) -> int | None:
    """--steps: a whole number, or 'default' (None: the trainer's default length)."""
    return None if value == "default" else int(value)


def zero_or_more(value: str) -> int:
    """--score-every: a whole number, 0 or more."""
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} must be a whole number, 0 or more")
    return int(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="cgan")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--steps", type=steps, default=1500,
                        help="Training steps, or 'default': the trainer's default length.")
    parser.add_argument("--epochs", type=int, default=None, help="Train this many epochs instead of --steps.")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--modes", default="none,adaptive,fixed")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--score-every", type=zero_or_more, default=0,
                        help="Also score a checkpoint every this many steps (0: only the last), to see the trend.")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=zero_or_more, default=0, help="The training seed (the subset stays the same).")
    parser.add_argument("--runs", type=Path, default=Path("runs/small-data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    SOURCE.update(dataset=args.dataset, images=args.images)
    registry._registry = registry.Registry(builtins=registry.BUILTIN_PLUGINS + ("__main__",))
    load = registry.get_registry().dataset(args.dataset).load()
    full_train, info = load("train", args.image_size, None, None, False, 0)
    copied = memorised_reference(args, full_train, info)
    print(f"the {args.images} training images themselves, drawn {args.n} times: FD/floor {copied:.3f} (a generator "
          "that only copies them)", flush=True)
    rows = []
    for mode in args.modes.split(","):
        rows.append(train_and_score(mode, args, full_train))
        row = rows[-1]
        print(f"{args.model} on {args.images} {args.dataset} images, {row['steps']} steps, augment {mode}: "
              f"FD/floor {row['fd_over_floor']:.3f}, cond_acc {row.get('cond_acc', float('nan')):.3f}, "
              f"final p {row['final_p']}, {row['train_s']:.0f} s", flush=True)
    base = next((r for r in rows if r["mode"] == "none"), None)
    for row in rows:
        if base and row is not base:
            print(f"augment {row['mode']}: FD/floor {base['fd_over_floor'] / row['fd_over_floor']:.2f}x better than "
                  f"none (target 1.5x); cond_acc {row.get('cond_acc', 0) - base.get('cond_acc', 0):+.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "small-data.json", {"args": {k: str(v) for k, v in vars(args).items()},
                                              "copied_fd_over_floor": copied, "rows": rows})


if __name__ == "__main__":
    main()
