"""`genforge models`, `metrics`, `backends`, `loggers` and `datasets`: what the registry holds (listing imports
no torch)."""

from __future__ import annotations

from pathlib import Path

import click

from genforge.app.console import print_table
from genforge.app.params import OutputDir, OutputFile
from genforge.core.errors import UserError
from genforge.core.files import IMAGE_SUFFIXES
from genforge.core.registry import get_registry


@click.command()
def models():
    """List the model plugins."""
    from genforge.core.model import capabilities

    rows = []
    for spec in get_registry().specs("models").values():
        try:
            model_class = spec.load()
            sizes = getattr(model_class, "image_sizes", None)
            facts = ["yes" if getattr(model_class, "conditional", False) else "no",
                     ",".join(map(str, sizes)) if sizes else "any",
                     ", ".join(sorted(capabilities(model_class) - {"conditional"})) or "-"]
        except UserError as exc:
            facts = ["?", "?", f"broken: {exc.message}"]
        rows.append([spec.name, *facts, spec.plugin, spec.description])
    print_table("models", ["name", "conditional", "image sizes", "capabilities", "plugin", "description"], rows)


@click.command()
def metrics():
    """List the quality metric plugins (for `genforge evaluate --metrics`)."""
    rows = [[s.name, ", ".join(s.applies_to), "higher" if s.higher_is_better else "lower", s.plugin, s.description]
            for s in get_registry().specs("metrics").values()]
    print_table("metrics", ["name", "applies to", "better", "plugin", "description"], rows)


@click.command()
def backends():
    """List the benchmark backend plugins (for `genforge bench --backend`)."""
    rows = [[s.name, ", ".join(s.targets), s.device, s.plugin, s.description]
            for s in get_registry().specs("backends").values()]
    print_table("backends", ["name", "targets", "device", "plugin", "description"], rows)


@click.command()
def loggers():
    """List the experiment logger plugins (for `genforge train --log-to`)."""
    rows = [[s.name, ", ".join(s.requires) or "-", s.plugin, s.description]
            for s in get_registry().specs("loggers").values()]
    print_table("loggers", ["name", "needs", "plugin", "description"], rows)


@click.group(invoke_without_command=True)
@click.pass_context
def datasets(ctx):
    """List the dataset plugins (or `datasets show NAME`)."""
    if ctx.invoked_subcommand is None:
        rows = [[s.name, "yes" if s.labelled else "optional", "yes" if s.offline else "needs --data-dir", s.plugin,
                 s.description] for s in get_registry().specs("datasets").values()]
        print_table("datasets", ["name", "labelled", "offline", "plugin", "description"], rows)


@datasets.command("show")
@click.argument("name")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Folder holding the dataset's files.")
@click.option("--image-size", default=32, show_default=True, type=int)
@click.option("--channels", type=click.Choice(["1", "3"]), help="Convert to 1 (grey) or 3 (RGB) channels.")
@click.option("--split", default="train", show_default=True, type=click.Choice(["train", "test"]))
@click.option("--download", is_flag=True, help="Fetch the files (mnist, fashion-mnist, cifar10; needs torchvision).")
@click.option("--out", type=OutputFile("preview image", IMAGE_SUFFIXES),
              help="Write a grid of 64 examples with their labels (.png, .jpg, .webp, .bmp).")
def datasets_show(name, data_dir, image_size, channels, split, download, out):
    """Print a dataset's facts and optionally write a preview grid."""
    import torch

    from genforge.core.contract import open_dataset
    from genforge.core.images import save_grid

    dataset, info = open_dataset(name, split, image_size, int(channels) if channels else None, data_dir, download)
    for key, value in info.as_dict().items():
        click.echo(f"{key:12} {value}")
    click.echo(f"{'loaded':12} {len(dataset)} images ({split})")
    if out:
        n = min(64, len(dataset))
        items = [dataset[i] for i in torch.linspace(0, len(dataset) - 1, n).long().tolist()]
        images = torch.stack([im for im, _ in items])
        captions = [info.class_names[lb] if info.class_names and lb >= 0 else "" for _, lb in items]
        save_grid(images, out, nrow=8, captions=captions if info.labelled else None)
        click.echo(f"wrote {out}")


@datasets.command("shards")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=OutputDir("shard folder"), help="A new folder for the .tar shards.")
@click.option("--per-shard", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Images in each shard.")
def datasets_shards(folder, out, per_shard):
    """Write an image folder as WebDataset tar shards (for --dataset webdataset --data-dir DIR).

    \b
    Class subfolders become class indices (cls) and classes.json; each image keeps
    its own file's bytes. Shards train on several machines from shared or object
    storage without copying folders.
    """
    from genforge.plugins.webdataset_shards import write_shards

    shards = write_shards(folder, out, per_shard)
    click.echo(f"wrote {len(shards)} shard(s) to {out}  (train: genforge train --dataset webdataset --data-dir {out})")
