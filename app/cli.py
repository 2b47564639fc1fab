"""The `genforge` command. Heavy libraries (torch, onnx, numpy) and the modules that import them are
imported inside the commands that use them (the lazy imports in app/cli*.py), so `genforge
--help` and `genforge plugins` start in a tenth of a second instead of the two that torch takes."""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import click
from click.core import ParameterSource

from genforge import __version__
from genforge.app.cli_bench import bench
from genforge.app.cli_catalog import backends, datasets, loggers, metrics, models
from genforge.app.cli_export import export
from genforge.app.cli_plugins import plugins
from genforge.app.console import print_table
from genforge.app.one_line import OneLineErrors, one_line, say
from genforge.app.params import (
    PROBABILITY,
    FiniteRange,
    OutputDir,
    OutputFile,
    sampling_of,
    sampling_option,
    threads_option,
)
from genforge.core.errors import GenforgeError, UserError
from genforge.core.files import IMAGE_SUFFIXES, PLAIN_FILE_MODE, check_distinct_outputs, current_umask, write_json
from genforge.core.limits import MAX_SEED, check_generation
from genforge.core.options import parse_model_options
from genforge.core.registry import get_registry
from genforge.core.runs.config import AUGMENT_MODES, AUTOCAST_MODES, DEVICES


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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




# -- training ------------------------------------------------------------------------------
def _explicit(ctx, names):
    return {n for n in names if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE}


@cli.command()
@click.option("--model", default="dcgan", show_default=True, help="Model plugin (see `genforge models`).")
@click.option("--dataset", default="digits", show_default=True, help="Dataset plugin (see `genforge datasets`).")
@click.option("--data-dir", type=click.Path(), help="Folder of the dataset's files.")
@click.option("--epochs", type=int, help="Passes over the train split (default: 5, and at least 1,000 steps).")
@click.option("--steps", type=int, help="Training steps (instead of --epochs).")
@click.option("--batch-size", type=int, help="The global batch (default: the model's choice: 64, or 32 for diffusion).")
@click.option("--image-size", default=32, show_default=True, type=int)
@click.option("--channels", type=click.Choice(["1", "3"]), help="Train on 1 or 3 channels (converting).")
@click.option("--precision", type=click.Choice(AUTOCAST_MODES),
              help="bf16/fp16 run the step under autocast; fp16 (CUDA) adds gradient scaling. Default: fp32, or bf16 "
                   "for a model that asks for it (diffusion) on a CPU or GPU with native bf16.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(DEVICES))
@click.option("--augment", type=click.Choice(AUGMENT_MODES),
              help="What a GAN's discriminator sees of real and generated images: differentiable translation, "
                   "cutout and colour, always (fixed) or as strong as its overfitting asks (adaptive). Default: "
                   "adaptive under 20,000 training images, else none.")
@click.option("--channels-last/--no-channels-last", default=False, show_default=True,
              help="NHWC memory format (faster convolutions on CPU with oneDNN and on tensor cores).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED), help="0 to 2^63 - 1.")
@click.option("--ema/--no-ema", default=None,
              help="Keep an EMA of the generator's weights (warm-up, then --ema-decay). Default: the model's choice "
                   "(on for the GANs, off for the VAE).")
@click.option("--ema-decay", default=0.999, show_default=True,
              type=PROBABILITY,
              help="The EMA's decay once warmed up (it starts at 0.1 and rises as (1 + step) / (10 + step)).")
@click.option("--sample-every", default=200, show_default=True, type=int, help="Steps between sample grids.")
@click.option("--checkpoint-every", default=500, show_default=True, type=int, help="Steps between checkpoints.")
@click.option("--keep", default=3, show_default=True, type=int, help="Step checkpoints kept.")
@click.option("--eval-every", default=0, show_default=True, type=int,
              help="Steps between evaluations (keeps checkpoints/best); 0: never.")
@click.option("--eval-metric",
              help="The metric --eval-every computes and checkpoints/best keeps the best of (see `genforge metrics`). "
                   "Default: the model's primary metric (fd; psnr_masked for inpaint).")
@click.option("--eval-samples", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Samples each --eval-every evaluation scores.")
@click.option("--early-stopping", "early_stopping", type=click.IntRange(min=1), metavar="PATIENCE",
              help="Stop when --eval-metric has not improved for PATIENCE evaluations in a row (needs --eval-every).")
@click.option("--early-stopping-delta", default=0.0, show_default=True, type=FiniteRange(min=0),
              help="The smallest change of --eval-metric that counts as an improvement.")
@click.option("-o", "--model-option", "model_option", multiple=True, metavar="KEY=VALUE",
              help="A model option, e.g. -o latent_dim=64 (see the model's Config).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="TOML file of these options.")
@click.option("--out", type=OutputDir("run directory"), help="Run directory (default runs/MODEL-DATASET-TIME).")
@click.option("--resume", type=click.Path(path_type=Path), help="Continue the run in this directory.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.option("--nproc", default=1, show_default=True, type=click.IntRange(min=1),
              help="Training processes on this machine (torch.distributed: gloo on CPU, nccl on CUDA, one GPU "
                   "each); --batch-size is the global batch, split over them.")
@threads_option
@click.option("--log-to", help="Loggers besides metrics.jsonl, comma-separated: csv, tensorboard, mlflow or a "
                                "plugin's (see `genforge loggers`).")
@click.option("--sync-batchnorm/--no-sync-batchnorm", default=False, show_default=True,
              help="With several CUDA processes: BatchNorm statistics over all of them (torch's SyncBatchNorm).")
@click.pass_context
def train(ctx, config_file, out, resume, overwrite, progress, model_option, nproc, early_stopping,
          early_stopping_delta, **options):
    """Train a model plugin on a dataset plugin; writes a run directory.

    \b
    The run directory holds config.json, checkpoints/ (safetensors), samples/,
    metrics.jsonl, samples.png and loss.png. Options come from the defaults, then
    --config FILE.toml, then the command line.
    """
    from genforge.app.api import train as train_run

    given = {k: v for k, v in options.items() if k in _explicit(ctx, options)}
    if given.get("channels"):
        given["channels"] = int(given["channels"])
    if model_option:  # merged with --config's [model_options] by the API: the command line wins per key
        given["model_options"] = parse_model_options(model_option)
    callbacks = []
    if early_stopping:
        from genforge.core.training.callbacks import EarlyStopping

        callbacks.append(EarlyStopping(patience=early_stopping, min_delta=early_stopping_delta))
    run = train_run(out=out, resume=resume, overwrite=overwrite, config_file=config_file, progress=progress,
                    nproc=nproc, callbacks=callbacks, **given)
    if run.trained and run.trained["main"]:
        config = run.config
        click.echo(f"trained {config['model']} on {config['dataset']} to step {run.trained['step']} in "
                   f"{run.trained['seconds']:.1f}s ({config['precision']}, {run.trained['device']})")
        click.echo(f"run directory: {run.path}  (samples.png, loss.png, checkpoints/)")
        if run.trained.get("stop_reason"):
            click.echo(f"stopped at step {run.trained['step']}: {run.trained['stop_reason']}")


def parse_labels(text: str | None):
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--labels {text!r} must be a class number or a comma-separated list like 0,1,2") from None
    if not values:
        raise UserError("--labels is empty")
    return values


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--checkpoint", help="Checkpoint of a run: latest (default), best, a step number or a folder.")
@click.option("--ema/--no-ema", default=None,
              help="Use the checkpoint's EMA weights (--no-ema: the raw ones); default: EMA if it has them.")
@click.option("--n", "n", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--labels", help="Class for every sample (3) or a list cycled over them (0,1,2).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED), help="0 to 2^63 - 1.")
@click.option("--provider", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda", "tensorrt"]),
              help="ONNX Runtime provider for .onnx targets.")
@click.option("--out", type=click.Path(path_type=Path),
              help="The grid to write (default samples.png); with --input, the folder for the restored images "
                   "(default: beside it, named INPUT-restored).")
@click.option("--input", "input_dir", type=click.Path(path_type=Path),
              help="Restoration models: restore every image in this folder (its other inputs, such as a mask, "
                   "beside each as NAME.mask.png) into --out, under their own names.")
@click.option("--overwrite", is_flag=True, help="With --input: replace restored images already in --out.")
@sampling_option
@threads_option
def sample(target, checkpoint, ema, n, labels, seed, provider, out, input_dir, overwrite, sampling, threads):
    """Write a grid of samples from a run directory, an .onnx file or an .engine; or restore a folder of images
    (--input) with a restoration model. A restoration run's grid shows damaged | restored | clean test images."""
    from genforge.app.api import sample as sample_target
    from genforge.app.restore_folder import restore
    from genforge.core.files import check_output_dir, check_output_file

    if input_dir is not None:
        out = check_output_dir(out or input_dir.with_name(f"{input_dir.name}-restored"), "restored images")
        check_distinct_outputs({"--out": out}, {"the target": target, "--input": input_dir})
        written = restore(target, input_dir, out, seed, checkpoint, ema, provider, overwrite, sampling_of(sampling),
                          threads)
        click.echo(f"restored {len(written)} images from {input_dir} into {out}")
        return
    out = check_output_file(out or Path("samples.png"), "sample grid", IMAGE_SUFFIXES)
    check_distinct_outputs({"--out": out}, {"the target": target})
    samples = sample_target(target, n, parse_labels(labels), seed, checkpoint, ema, provider, sampling_of(sampling),
                            threads)
    samples.save(out)
    layout = ("; rows: damaged, restored, clean" if samples.tile_captions else
              ", one class per column" if samples.nrow else "")
    click.echo(f"wrote {out} ({n} samples{layout})")


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--checkpoint", help="Checkpoint of a run: latest (default), best, a step number or a folder.")
@click.option("--rows", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--steps", "n_steps", default=10, show_default=True, type=click.IntRange(min=2))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED), help="0 to 2^63 - 1.")
@click.option("--out", default="interpolation.png", show_default=True,
              type=OutputFile("interpolation grid", IMAGE_SUFFIXES))
@sampling_option
@threads_option
def interpolate(target, checkpoint, rows, n_steps, seed, out, sampling, threads):
    """Write a grid of latent interpolations: each row walks (slerp) between two noise vectors."""
    import numpy as np

    from genforge.core import runtime
    from genforge.core.compute import settle

    check_distinct_outputs({"--out": out}, {"the target": target})
    compute = settle(threads)
    generator = runtime.load(target, checkpoint=checkpoint, sampling=sampling_of(sampling), threads=compute.threads)
    if generator.signature.restores:
        raise UserError(f"{target} restores images; interpolation walks noise alone: use `genforge sample`")
    check_generation(rows * n_steps, math.prod(generator.latent_shape), math.prod(generator.image_shape))
    ends, _ = generator.prepare_inputs(n=2 * rows, seed=seed)
    flat_a, flat_b = ends[:rows].reshape(rows, -1), ends[rows:].reshape(rows, -1)
    cos = (flat_a * flat_b).sum(1) / (np.linalg.norm(flat_a, axis=1) * np.linalg.norm(flat_b, axis=1))
    omega = np.arccos(np.clip(cos, -1, 1))[:, None]
    ts = np.linspace(0, 1, n_steps)
    z = np.stack([(np.sin((1 - t) * omega) * flat_a + np.sin(t * omega) * flat_b) / np.sin(omega) for t in ts], 1)
    z = z.reshape(rows * n_steps, *generator.latent_shape).astype(np.float32)
    labels = np.repeat(generator.signature.check_labels(None, rows), n_steps) if generator.conditional else None
    from genforge.app.results import Samples

    Samples(generator.generate(z=z, labels=labels), labels, list(generator.class_names), n_steps).save(out)
    click.echo(f"wrote {out} ({rows} rows of {n_steps})")


# -- evaluation ----------------------------------------------------------------------------
@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--checkpoint", help="Checkpoint of a run: latest (default), best, a step number or a folder.")
@click.option("--ema/--no-ema", default=None,
              help="Use the checkpoint's EMA weights (--no-ema: the raw ones); default: EMA if it has them.")
@click.option("--n", "n", default=2000, show_default=True, type=click.IntRange(min=1), help="Samples to score.")
@click.option("--metrics", help="Comma-separated metric plugins (default: fd,kid plus cond_acc / neg_elbo).")
@click.option("--dataset-from", type=click.Path(path_type=Path),
              help="For an .onnx target: the run whose dataset to compare against (default: the file's metadata).")
@click.option("--inception-weights", type=click.Path(path_type=Path),
              help="Inception-v3 weights file for --metrics inception (standard FID/KID/IS); nothing downloads.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED), help="0 to 2^63 - 1.")
@click.option("--json", "json_out", type=OutputFile("scores file"), help="Also write the scores as JSON.")
@sampling_option
@threads_option
def evaluate(target, checkpoint, ema, n, metrics, dataset_from, inception_weights, seed, json_out, sampling,
             threads):
    """Score a run directory or an exported .onnx: FD (with floor and ceiling), KID, conditional accuracy, ELBO."""
    from genforge.app.api import evaluate as evaluate_target

    check_distinct_outputs({"--json": json_out}, {"the target": target, "--dataset-from": dataset_from,
                                                   "--inception-weights": inception_weights})
    click.echo(f"scoring {n} samples of {target} (the first time for a dataset, genforge trains its feature "
               "classifier first: up to a minute or two)")
    scores = evaluate_target(target, n, metrics, checkpoint, ema, dataset_from, seed, inception_weights,
                             sampling_of(sampling), threads)
    skipped = scores.get("skipped", {})
    print_table(f"quality of {target}", ["metric", "value"],
                [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in scores.items() if k != "skipped"])
    for name, reason in skipped.items():
        click.echo(f"note: {name} skipped: it {reason}", err=True)
    if scores.verdict():
        click.echo(f"verdict: {scores.verdict()}")
    if json_out:
        write_json(json_out, scores)
        click.echo(f"wrote {json_out}")


# -- the main job ---------------------------------------------------------------------------
@cli.command("run")
@click.argument("pipeline", required=False, type=click.Path(path_type=Path))
@click.option("--out", type=OutputDir("report folder"), help="Report folder (default genforge-report).")
@click.option("--overwrite/--no-overwrite", default=False, show_default=True,
              help="Replace an earlier genforge report in the folder (never a folder genforge did not make).")
@click.option("--model", help="Train this model instead of the pipeline's (with its default options), e.g. "
                                "diffusion.")
@threads_option
def run_command(pipeline, out, overwrite, model, threads):
    """The main job: train, evaluate, export ONNX (fp32, int8), benchmark, write an HTML report.

    With no PIPELINE.toml: dcgan on the embedded digits, about two minutes on a CPU
    (--model diffusion takes longer: its sampler runs 20 network passes per image).
    """
    from genforge.app.pipeline import run_pipeline
    from genforge.app.report import summary_line

    result = run_pipeline(pipeline, out, overwrite, threads, echo=click.echo, model=model)
    folder = result.folder
    click.echo(summary_line(result.report))
    click.echo(f"report: {folder / 'index.html'}  (Markdown: {folder / 'report.md'}; numbers in "
               f"{folder / 'report.json'})")


SHOWN_WARNINGS: set[str] = set()

for command in (models, metrics, backends, loggers, datasets, export, plugins, bench):
    cli.add_command(command)


def main(argv=None):
    """Entry point: loads plugin commands, runs the CLI; user errors are one line and exit 2.

    Anything else is a bug: one line saying so, the traceback in a file whose path it prints, exit 1.
    """
    show_own_warnings_only()
    try:
        try:
            registry = get_registry()
            registry.add_commands(cli)
        except GenforgeError as exc:  # a broken plugin under GENFORGE_STRICT_PLUGINS=1
            say(f"Error: {one_line(exc.message)}")
            sys.exit(exc.exit_code)
        show_own_warnings_only(registry.plugin_modules())
        cli.main(args=argv, prog_name="genforge")
    except Exception as exc:  # noqa: BLE001  the last resort; validation is the first
        report = write_crash_report(exc)
        where = f"the full traceback is in {report}" if report else "no crash file could be written"
        say(f"genforge hit a bug ({type(exc).__name__}: {one_line(str(exc))[:200]}); {where}: please report it")
        sys.exit(1)
    finally:
        with contextlib.suppress(ValueError):  # not the main thread: signals are not ours to set
            signal.signal(signal.SIGINT, interrupted_while_exiting)
        try:
            sys.stdout.flush()
        except OSError:
            say("Error: the output could not be written (standard output's device is full or closed)")
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(2)


def show_own_warnings_only(plugin_modules=()) -> None:
    """On the command line only genforge's and its plugins' warnings show, each text once and on one line;
    a library's warnings (torch, numpy, PIL, ...) are not the user's to act on and would come before the
    one `Error:` line."""
    if not sys.warnoptions:  # -W or PYTHONWARNINGS: the user's own choice stands
        warnings.simplefilter("ignore")
    for module in ("genforge", *plugin_modules):
        warnings.filterwarnings("default", module=rf"{re.escape(module)}(\.|$)")
    warnings.showwarning = show_warning


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning on the command line is one line, like an error (not Python's file:line and source line)."""
    text = one_line(str(message))
    if text not in SHOWN_WARNINGS:
        SHOWN_WARNINGS.add(text)
        say(f"Warning: {text}")


def interrupted_while_exiting(signum, frame) -> None:
    """Ctrl-C once the command has returned (interpreter shutdown, threads joining): every file is written."""
    say("genforge: interrupted (Ctrl-C) while exiting; every file was already written")
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    os._exit(130)


def write_crash_report(exc: BaseException) -> Path | None:
    """The traceback of an unexpected error, in a file of its own (GENFORGE_CRASH_DIR, else the temp folder)."""
    text = (f"genforge {__version__}, python {sys.version.split()[0]}, argv {sys.argv}\n\n"
            + "".join(traceback.format_exception(exc)))
    for folder in dict.fromkeys([os.environ.get("GENFORGE_CRASH_DIR") or tempfile.gettempdir(),
                                 tempfile.gettempdir()]):
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="genforge-crash-", suffix=".txt", dir=folder)
            os.fchmod(fd, PLAIN_FILE_MODE & ~current_umask())
            with os.fdopen(fd, "w") as out:
                out.write(text)
            return Path(name)
        except OSError:
            continue
    return None


if __name__ == "__main__":
    main()
