"""The `genforge` command. Heavy libraries (torch, onnx) are imported inside commands only,
so `genforge --help` and `genforge plugins` stay fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from genforge import __version__
from genforge.core.errors import UserError
from genforge.core.registry import get_registry


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="genforge")
def cli():
    """genforge: train image generators, export them to ONNX and TensorRT, benchmark them.

    \b
    Quick start (the embedded digits data, no download):
      genforge run                      # train, evaluate, export, benchmark, HTML report
      genforge train --model cgan --epochs 30 --out runs/cgan
      genforge sample runs/cgan --labels 0,1,2 --out grid.png
      genforge export onnx runs/cgan --precision int8 --out cgan.onnx
      genforge bench runs/cgan cgan.onnx
    """


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[escape("" if v is None else str(v)) for v in row])
    Console(width=None if sys.stdout.isatty() else 160).print(table)


# -- plugins, models, datasets -------------------------------------------------------------
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json):
    """List loaded plugins (built-in and installed), what they register, and load errors."""
    registry = get_registry()
    for kind in ("models", "datasets", "metrics", "backends"):
        registry.specs(kind)
    infos = [info.as_dict() for info in registry.plugins.values()]
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    rows = []
    for info in infos:
        registered = "; ".join(f"{k}: {', '.join(v)}" for k, v in info["registered"].items())
        rows.append([info["name"], info["version"], "built-in" if info["builtin"] else info["distribution"],
                     ", ".join(info["hooks"]), registered, "; ".join(info["errors"]) or "ok"])
    print_table("plugins", ["name", "version", "from", "hooks", "registers", "status"], rows)


@cli.command()
def models():
    """List the model plugins."""
    rows = [[s.name, s.family, "yes" if s.conditional else "no",
             ",".join(map(str, s.image_sizes)) if s.image_sizes else "any", s.plugin, s.description]
            for s in get_registry().specs("models").values()]
    print_table("models", ["name", "family", "conditional", "image sizes", "plugin", "description"], rows)


@cli.command()
def metrics():
    """List the quality metric plugins (for `genforge evaluate --metrics`)."""
    rows = [[s.name, ", ".join(s.applies_to), "higher" if s.higher_is_better else "lower", s.plugin, s.description]
            for s in get_registry().specs("metrics").values()]
    print_table("metrics", ["name", "applies to", "better", "plugin", "description"], rows)


@cli.command()
def backends():
    """List the benchmark backend plugins (for `genforge bench --backend`)."""
    rows = [[s.name, ", ".join(s.targets), s.device, s.plugin, s.description]
            for s in get_registry().specs("backends").values()]
    print_table("backends", ["name", "targets", "device", "plugin", "description"], rows)


@cli.group(invoke_without_command=True)
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
@click.option("--out", type=click.Path(path_type=Path), help="Write a grid of 64 examples with their labels.")
def datasets_show(name, data_dir, image_size, channels, split, download, out):
    """Print a dataset's facts and optionally write a preview grid."""
    import torch

    from genforge.core.data import open_dataset
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


# -- training ------------------------------------------------------------------------------
RESUMABLE_CHANGES = {"steps", "epochs", "device", "log_every", "sample_every", "checkpoint_every", "keep"}


def _explicit(ctx, names):
    from click.core import ParameterSource

    return {n for n in names if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE}


def _read_toml(path: Path) -> dict:
    from genforge.core.files import read_toml

    return {k.replace("-", "_"): v for k, v in read_toml(path).items()}


def _parse_options(pairs) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"model option {pair!r} must look like key=value (e.g. -o latent_dim=64)")
        options[key.strip().replace("-", "_")] = value.strip()
    return options


@cli.command()
@click.option("--model", default="dcgan", show_default=True, help="Model plugin (see `genforge models`).")
@click.option("--dataset", default="digits", show_default=True, help="Dataset plugin (see `genforge datasets`).")
@click.option("--data-dir", type=click.Path(), help="Folder of the dataset's files.")
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the train split (default 5).")
@click.option("--steps", type=click.IntRange(min=1), help="Training steps (instead of --epochs).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--image-size", default=32, show_default=True, type=int)
@click.option("--channels", type=click.Choice(["1", "3"]), help="Train on 1 or 3 channels (converting).")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "bf16", "fp16"]),
              help="bf16/fp16 run the step under autocast; fp16 (CUDA) adds gradient scaling.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--channels-last/--no-channels-last", default=False, show_default=True,
              help="NHWC memory format (faster convolutions on CPU with oneDNN and on tensor cores).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--ema/--no-ema", default=False, show_default=True, help="Keep an EMA of the generator's weights.")
@click.option("--sample-every", default=200, show_default=True, type=int, help="Steps between sample grids.")
@click.option("--checkpoint-every", default=500, show_default=True, type=int, help="Steps between checkpoints.")
@click.option("--keep", default=3, show_default=True, type=int, help="Step checkpoints kept.")
@click.option("--eval-every", default=0, show_default=True, type=int,
              help="Steps between evaluations (keeps checkpoints/best); 0: never.")
@click.option("-o", "--model-option", "model_option", multiple=True, metavar="KEY=VALUE",
              help="A model option, e.g. -o latent_dim=64 (see the model's Config).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="TOML file of these options.")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default runs/MODEL-DATASET-TIME).")
@click.option("--resume", type=click.Path(path_type=Path), help="Continue the run in this directory.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.pass_context
def train(ctx, config_file, out, resume, overwrite, progress, model_option, **options):
    """Train a model plugin on a dataset plugin; writes a run directory.

    \b
    The run directory holds config.json, checkpoints/ (safetensors), samples/,
    metrics.jsonl, samples.png and loss.png. Options come from the defaults, then
    --config FILE.toml, then the command line.
    """
    import time

    from genforge.core.trainer import Trainer, config_from_dict

    explicit = _explicit(ctx, options)
    if options.get("channels"):
        options["channels"] = int(options["channels"])
    cli_values = {k: v for k, v in options.items() if k in explicit}
    if model_option:
        cli_values["model_options"] = _parse_options(model_option)
    if resume:
        from genforge.core.run import read_run_config

        if out and Path(out) != Path(resume):
            raise UserError("--resume continues the run in its own directory; drop --out")
        record = read_run_config(resume)
        values = dict(record["train"])
        for key, value in {**(_read_toml(config_file) if config_file else {}), **cli_values}.items():
            if key not in RESUMABLE_CHANGES and values.get(key) != value:
                raise UserError(f"--{key.replace('_', '-')} {value} disagrees with the run's {values.get(key)}; "
                                f"a resumed run keeps its config (only {', '.join(sorted(RESUMABLE_CHANGES))} may change)")
            values[key] = value
        if "steps" in cli_values:
            values["epochs"] = None
        if "epochs" in cli_values:
            values["steps"] = None
        config = config_from_dict(values)
        trainer = Trainer(config, resume, resume=True, progress=progress)
    else:
        values = {k: v for k, v in options.items() if v is not None}
        values.update(_read_toml(config_file) if config_file else {})
        values.update(cli_values)
        config = config_from_dict(values)
        out = out or Path("runs") / f"{config.model}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
        trainer = Trainer(config, out, overwrite=overwrite, progress=progress)
    if trainer.step >= trainer.total_steps:
        raise UserError(f"{trainer.out} already reached step {trainer.step}; pass more --steps or --epochs to go on")
    started = time.perf_counter()
    run_dir = trainer.fit()
    click.echo(f"trained {config.model} on {config.dataset} to step {trainer.step} in "
               f"{time.perf_counter() - started:.1f}s ({config.precision}, {trainer.device})")
    click.echo(f"run directory: {run_dir}  (samples.png, loss.png, checkpoints/)")


def parse_labels(text: str | None, n: int):
    if text is None:
        return None
    import numpy as np

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--labels {text!r} must be a class number or a comma-separated list like 0,1,2") from None
    if not values:
        raise UserError("--labels is empty")
    return np.resize(np.array(values), n)


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--checkpoint", help="Checkpoint of a run: latest (default), best, a step number or a folder.")
@click.option("--ema", is_flag=True, help="Use the EMA weights of the checkpoint.")
@click.option("--n", "n", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--labels", help="Class for every sample (3) or a list cycled over them (0,1,2).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--provider", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda", "tensorrt"]),
              help="ONNX Runtime provider for .onnx targets.")
@click.option("--out", default="samples.png", show_default=True, type=click.Path(path_type=Path))
def sample(target, checkpoint, ema, n, labels, seed, provider, out):
    """Write a grid of samples from a run directory, an .onnx file or an .engine."""
    from genforge.exporters import runtime

    generator = runtime.load(target, provider=provider, checkpoint=checkpoint, ema=ema)
    label_array = parse_labels(labels, n)
    if label_array is not None and not generator.conditional:
        raise UserError("--labels needs a conditional model; this one is unconditional")
    images = generator.generate(n=n, labels=label_array, seed=seed)
    _save_array_grid(images, out, label_array if generator.conditional else None)
    click.echo(f"wrote {out} ({n} samples)")


def _save_array_grid(images, out, labels=None, nrow=None):
    import torch

    from genforge.core.images import save_grid

    captions = [str(v) for v in labels] if labels is not None else None
    save_grid(torch.from_numpy(images), out, nrow=nrow, captions=captions)


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--checkpoint", help="Checkpoint of a run: latest (default), best, a step number or a folder.")
@click.option("--rows", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--steps", "n_steps", default=10, show_default=True, type=click.IntRange(min=2))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default="interpolation.png", show_default=True, type=click.Path(path_type=Path))
def interpolate(target, checkpoint, rows, n_steps, seed, out):
    """Write a grid of latent interpolations: each row walks (slerp) between two noise vectors."""
    import numpy as np

    from genforge.exporters import runtime

    generator = runtime.load(target, checkpoint=checkpoint)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, *generator.latent_shape)).astype(np.float32)
    b = rng.standard_normal((rows, *generator.latent_shape)).astype(np.float32)
    flat_a, flat_b = a.reshape(rows, -1), b.reshape(rows, -1)
    cos = (flat_a * flat_b).sum(1) / (np.linalg.norm(flat_a, axis=1) * np.linalg.norm(flat_b, axis=1))
    omega = np.arccos(np.clip(cos, -1, 1))[:, None]
    ts = np.linspace(0, 1, n_steps)
    z = np.stack([(np.sin((1 - t) * omega) * flat_a + np.sin(t * omega) * flat_b) / np.sin(omega) for t in ts], 1)
    z = z.reshape(rows * n_steps, *generator.latent_shape).astype(np.float32)
    labels = np.repeat(np.arange(rows) % generator.num_classes, n_steps) if generator.conditional else None
    images = generator.generate(z=z, labels=labels)
    _save_array_grid(images, out, nrow=n_steps)
    click.echo(f"wrote {out} ({rows} rows of {n_steps})")


# -- evaluation ----------------------------------------------------------------------------
@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--checkpoint", help="Checkpoint of a run: latest (default), best, a step number or a folder.")
@click.option("--ema", is_flag=True, help="Use the EMA weights of the checkpoint.")
@click.option("--n", "n", default=2000, show_default=True, type=click.IntRange(min=1), help="Samples to score.")
@click.option("--metrics", help="Comma-separated metric plugins (default: fd,kid plus cond_acc / neg_elbo).")
@click.option("--dataset-from", type=click.Path(path_type=Path),
              help="For an .onnx target: the run whose dataset to compare against (default: the file's metadata).")
@click.option("--inception-weights", type=click.Path(path_type=Path),
              help="Inception-v3 weights file for --metrics inception (standard FID/KID/IS); nothing downloads.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Also write the scores as JSON.")
def evaluate(target, checkpoint, ema, n, metrics, dataset_from, inception_weights, seed, json_out):
    """Score a run directory or an exported .onnx: FD (with floor and ceiling), KID, conditional accuracy, ELBO."""
    from genforge.core.evaluate import evaluate_target

    scores = evaluate_target(target, checkpoint=checkpoint, ema=ema, n=n, metrics=metrics,
                             dataset_from=dataset_from, seed=seed,
                             options={"inception_weights": inception_weights} if inception_weights else None)
    print_table(f"quality of {target}", ["metric", "value"],
                [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in scores.items()])
    if json_out:
        Path(json_out).write_text(json.dumps(scores, indent=2))
        click.echo(f"wrote {json_out}")


# -- export ---------------------------------------------------------------------------------
@cli.group()
def export():
    """Export a trained generator (ONNX; TensorRT engines build from the ONNX)."""


@export.command("onnx")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--checkpoint", help="latest (default), best, a step number or a folder.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The .onnx file to write.")
@click.option("--opset", default=18, show_default=True, type=int)
@click.option("--batch", default="dynamic", show_default=True, help="'dynamic' or a fixed batch size.")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "fp16", "int8"]))
@click.option("--ema", is_flag=True, help="Export the EMA weights.")
@click.option("--max-fd-increase", default=0.10, show_default=True, type=float,
              help="Quality gate: refuse a variant whose FD exceeds fp32's by more than this fraction.")
@click.option("--quality-samples", default=1000, show_default=True, type=click.IntRange(min=10))
@click.option("--force", is_flag=True, help="Write a variant that fails the quality gate anyway.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the export report as JSON.")
def export_onnx_command(run_dir, checkpoint, out, opset, batch, precision, ema, max_fd_increase, quality_samples,
                        force, json_out):
    """Export RUN_DIR's generator to a validated, self-describing ONNX file."""
    from genforge.exporters.onnx import export_onnx

    report = export_onnx(run_dir, out, checkpoint=checkpoint, opset=opset, batch=batch, precision=precision,
                         ema=ema, force=force, max_fd_increase=max_fd_increase, quality_samples=quality_samples)
    for check in report.checks:
        click.echo(f"batch {check['batch']}: max abs error {check['max_abs_error']:.3g}, "
                   f"PSNR {check['psnr_db']:.1f} dB vs the PyTorch generator")
    if report.quality:
        q = report.quality
        click.echo(f"quality: FD {q['fd_variant']:.4g} vs fp32 {q['fd_fp32']:.4g} ({q['fd_increase']:+.1%})"
                   + ("" if q["ok"] else "  [over the gate; written because of --force]"))
    click.echo(f"wrote {out} ({precision}, opset {opset}, {report.size_bytes / 1e6:.2f} MB, "
               f"{report.rewritten_layers} layers rewritten)")
    if json_out:
        Path(json_out).write_text(json.dumps(report.as_dict(), indent=2))


@export.command("tensorrt")
@click.argument("onnx_file", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The .engine file to write.")
@click.option("--min-batch", default=1, show_default=True, type=int)
@click.option("--opt-batch", default=16, show_default=True, type=int)
@click.option("--max-batch", default=64, show_default=True, type=int)
@click.option("--workspace-gib", default=4.0, show_default=True, type=float)
@click.option("--timing-cache", type=click.Path(path_type=Path), help="Reuse and update this timing cache file.")
def export_tensorrt_command(onnx_file, out, min_batch, opt_batch, max_batch, workspace_gib, timing_cache):
    """Build a TensorRT engine (strongly typed: precision from the ONNX) with a JSON sidecar."""
    from genforge.exporters.tensorrt import build_engine

    sidecar = build_engine(onnx_file, out, min_batch, opt_batch, max_batch, workspace_gib, timing_cache)
    click.echo(f"wrote {out} (TensorRT {sidecar['tensorrt_version']}, {sidecar['gpu']}, "
               f"batch {min_batch}..{max_batch}, {sidecar['precision']})")


# -- benchmarks -----------------------------------------------------------------------------
class DefaultRunGroup(click.Group):
    """`genforge bench TARGET...` is `genforge bench run TARGET...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"--{what} must be comma-separated numbers like 1,8,64, not {text!r}") from None
    if not values or min(values) < 1:
        raise UserError(f"--{what} needs positive numbers like 1,8,64")
    return values


def _fraction(text: str) -> float:
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UserError(f"--min-effect must look like 10% or 0.1, not {text!r}") from None


def bench_options(function):
    options = [
        click.option("--backend", "backends", help="Comma-separated backends (default: every one that fits)."),
        click.option("--batch", "batches", default="1,8,64", show_default=True, help="Batch sizes."),
        click.option("--warmup-s", default=0.5, show_default=True, type=float),
        click.option("--min-iters", default=10, show_default=True, type=click.IntRange(min=2)),
        click.option("--duration-s", default=2.0, show_default=True, type=float, help="Timed seconds per row."),
        click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads (torch and ONNX Runtime)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _settings(batches, warmup_s, min_iters, duration_s, threads):
    from genforge.benchmarks.runner import Settings

    return Settings(_int_list(batches, "batch"), warmup_s, min_iters, duration_s, threads)


def _backend_names(backends):
    return [b.strip() for b in backends.split(",") if b.strip()] if backends else None


def print_report(report: dict) -> None:
    rows = []
    for r in report["rows"]:
        if r["status"] != "ok":
            rows.append([r["target"], r["backend"], r["batch"] or "", r["status"], r.get("reason", ""), "", "", "", ""])
            continue
        s = r["stats"]
        rows.append([r["target"], r["backend"], r["batch"], f"{s['median_ms']:.2f}", f"{s['p90_ms']:.2f}",
                     f"{s['cv']:.1%}", f"{r['throughput_img_s']:.0f}", f"{r['gflops']:.1f}" if r["gflops"] else "",
                     f"{100 * r['peak_share']:.0f}%" if r.get("peak_share") else ""])
    print_table("benchmark", ["target", "backend", "batch", "median ms", "p90 ms", "CV", "img/s", "GFLOP/s", "% peak"],
                rows)


@cli.group(cls=DefaultRunGroup)
def bench():
    """Benchmark run directories, .onnx files and engines on every backend (`bench TARGET...`)."""


@bench.command("run")
@click.argument("targets", nargs=-1, required=True, type=click.Path(path_type=Path))
@bench_options
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the report (raw samples) as JSON.")
@click.option("--markdown", type=click.Path(path_type=Path), help="Write a Markdown table (CI job summaries).")
def bench_run(targets, backends, batches, warmup_s, min_iters, duration_s, threads, json_out, markdown):
    """Time TARGETS (run directories, .onnx, .engine) on each backend and batch size."""
    from genforge.benchmarks.runner import markdown_table, run_benchmarks

    report = run_benchmarks(targets, _backend_names(backends), _settings(batches, warmup_s, min_iters, duration_s,
                                                                          threads),
                            progress=lambda text: click.echo(f"  timing {text}", err=True))
    print_report(report)
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=1))
        click.echo(f"wrote {json_out}")
    if markdown:
        Path(markdown).write_text(markdown_table(report) + "\n")
        click.echo(f"wrote {markdown}")


def _read_report(path: Path) -> dict:
    from genforge.core.files import read_json

    return read_json(path, "benchmark report", "pass a report written by `genforge bench --json`")


def _print_comparison(rows) -> bool:
    table = [[r["target"], r["backend"], r["batch"], f"{r['base_median_ms']:.3f}", f"{r['new_median_ms']:.3f}",
              f"{r['ratio']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]", f"{r['p_slower']:.2g}", r["verdict"]]
             for r in rows]
    print_table("comparison (new / base)", ["target", "backend", "batch", "base ms", "new ms", "ratio [95% CI]",
                                            "p(slower)", "verdict"], table)
    slower = [r for r in rows if r["verdict"] == "slower"]
    if slower:
        click.echo(f"regression: {len(slower)} row(s) slower beyond the minimum effect", err=True)
    return bool(slower)


@bench.command("compare")
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--min-effect", default="10%", show_default=True, help="Smallest slowdown that counts.")
@click.option("--alpha", default=0.01, show_default=True, type=float, help="Significance level (Mann-Whitney U).")
def bench_compare(base, new, min_effect, alpha):
    """Compare two reports row by row; exit 1 if a row is significantly slower by more than --min-effect."""
    from genforge.benchmarks.runner import compare_reports

    base_report, new_report = _read_report(base), _read_report(new)
    rows = compare_reports(base_report, new_report, _fraction(min_effect), alpha)
    if "ab_rounds" not in new_report.get("settings", {}):
        click.echo("note: these reports were timed one after the other; on a noisy machine drift between them can "
                   "look like a change. `genforge bench ab` times both interleaved.", err=True)
    if _print_comparison(rows):
        sys.exit(1)


@bench.command("ab")
@click.argument("target_a", type=click.Path(path_type=Path))
@click.argument("target_b", required=False, type=click.Path(path_type=Path))
@bench_options
@click.option("--python-a", help="Python of the baseline genforge install (compare two genforge versions).")
@click.option("--python-b", help="Python of the candidate genforge install (default: this one).")
@click.option("--rounds", default=6, show_default=True, type=click.IntRange(min=2), help="A/B alternations per row.")
@click.option("--min-effect", default="10%", show_default=True)
@click.option("--alpha", default=0.01, show_default=True, type=float)
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write both reports and the comparison.")
def bench_ab(target_a, target_b, backends, batches, warmup_s, min_iters, duration_s, threads, python_a, python_b,
             rounds, min_effect, alpha, json_out):
    """Time A and B interleaved (A/B/A/B...) in one job; exit 1 if B is significantly slower than A.

    \b
    Two targets:          genforge bench ab old.onnx new.onnx
    Two genforge versions: genforge bench ab model.onnx --python-a /opt/genforge-main/bin/python
    """
    from genforge.benchmarks.runner import compare_reports, run_ab, run_ab_versions

    settings = _settings(batches, warmup_s, min_iters, duration_s, threads)
    progress = lambda text: click.echo(f"  timing {text}", err=True)  # noqa: E731
    if python_a or python_b:
        a, b = run_ab_versions(target_a, python_a or sys.executable, python_b or sys.executable,
                               _backend_names(backends), settings, rounds, progress)
    else:
        if target_b is None:
            raise UserError("give two targets (A and B), or --python-a to compare two genforge installs")
        a, b = run_ab(target_a, target_b, _backend_names(backends), settings, rounds, progress)
    rows = compare_reports(a, b, _fraction(min_effect), alpha)
    if json_out:
        Path(json_out).write_text(json.dumps({"a": a, "b": b, "comparison": rows}, indent=1))
    if _print_comparison(rows):
        sys.exit(1)


@bench.command("worker", hidden=True)
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--backend", required=True)
@click.option("--batch", required=True, type=int)
@click.option("--threads", type=int)
def bench_worker(target, backend, batch, threads):
    """Serve timing requests on stdin for `bench ab --python-a/--python-b` (internal)."""
    from genforge.benchmarks.runner import serve_worker

    serve_worker(target, backend, batch, threads, sys.stdin, sys.stdout)


@bench.command("suite")
@click.argument("suite_file", required=False, type=click.Path(path_type=Path))
@click.option("--out", default="bench-suite", show_default=True, type=click.Path(path_type=Path))
@click.option("--work", type=click.Path(path_type=Path), help="Where trained generators are kept and reused.")
@click.option("--smoke", is_flag=True, help="Seconds-long version (2 training steps, short timings).")
@click.option("--baseline", type=click.Path(path_type=Path), help="Compare against this stored suite.json.")
@click.option("--min-effect", default="10%", show_default=True)
@click.option("--alpha", default=0.01, show_default=True, type=float)
def bench_suite(suite_file, out, work, smoke, baseline, min_effect, alpha):
    """Run the benchmark suite (default: the standard suite shipped with genforge)."""
    from genforge.benchmarks.runner import compare_reports
    from genforge.benchmarks.suite import run_suite

    report = run_suite(suite_file, out, work, smoke, echo=lambda text: click.echo(text, err=True))
    print_report(report)
    click.echo(f"wrote {out / 'suite.json'} and {out / 'suite.md'}")
    if baseline and _print_comparison(compare_reports(_read_report(baseline), report, _fraction(min_effect), alpha)):
        sys.exit(1)


# -- the main job ---------------------------------------------------------------------------
@cli.command("run")
@click.argument("pipeline", required=False, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Report folder (default genforge-report).")
@click.option("--overwrite/--no-overwrite", default=True, show_default=True,
              help="Replace an earlier genforge report in the folder.")
def run_command(pipeline, out, overwrite):
    """The main job: train, evaluate, export ONNX (fp32, int8), benchmark, write an HTML report.

    With no PIPELINE.toml: dcgan on the embedded digits, about two minutes on a CPU.
    """
    from genforge.core.pipeline import load_pipeline, run_pipeline

    config = load_pipeline(pipeline)
    if out:
        config["out"] = str(out)
    folder = run_pipeline(config, overwrite=overwrite, echo=click.echo)
    click.echo(f"report: {folder / 'index.html'}  (numbers in {folder / 'report.json'})")


def main(argv=None):
    """Entry point: loads plugin commands, runs the CLI; user errors are one line and exit 2."""
    try:
        get_registry().add_commands(cli)
        cli.main(args=argv, prog_name="genforge", standalone_mode=True)
    except click.ClickException as exc:  # raised outside click's own handling (plugin loading)
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
