"""genforge as a library: the Python API the CLI is a thin layer over (each command parses its options and
calls one function here), with the CLI's validation, defaults and one-line errors (genforge's exceptions).

    import genforge
    run = genforge.train(model="cgan", dataset="digits", steps=300)   # a Run; shows itself in Jupyter
    run.sample(n=16, labels=3)                                         # Samples: a grid inline
    run.evaluate(n=500)                                                # Scores: FD, KID, cond_acc, ...
    onnx_file = run.export("onnx", precision="int8")                   # a path beside the run directory
    genforge.bench([run, onnx_file], batches=(1, 8))                   # a BenchReport: a table
    genforge.load(onnx_file).generate(n=4, labels=[0, 1, 2, 3])        # images from any artifact
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genforge.app.results import BenchReport, Samples, Scores, html_table, inline_png
from genforge.core import runtime
from genforge.core.arguments import (
    EXPORT_OPTIONS,
    callbacks_of,
    check_export_options,
    flag,
    known_keywords,
    options_dict,
    path_of,
    plain,
    text,
    whole,
)
from genforge.core.compute import settle
from genforge.core.errors import UserError
from genforge.core.files import check_output_dir, check_output_file, read_toml
from genforge.core.limits import MAX_SEED, check_generation
from genforge.core.precision import REFERENCE, TABLE, runtime_precisions
from genforge.exporters.precisions import export_file_name


def read_config_file(path) -> dict:
    """A --config TOML file's training options (keys may use - or _)."""
    return {k.replace("-", "_"): v for k, v in read_toml(path).items()}


def default_run_dir(model: str, dataset: str) -> Path:
    return Path("runs") / f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(model: str | None = None, dataset: str | None = None, *, out=None, resume=None, overwrite: bool = False,
          config_file=None, progress: bool = True, callbacks=(), nproc: int = 1, **options) -> Run:
    """Train `model` on `dataset` (defaults: dcgan on digits) and return the Run.

    options are the training options of `genforge train` (steps, epochs, batch_size, image_size, precision,
    seed, ema, model_options={...}, log_to=["tensorboard"], ...; see TrainConfig). Given ones win over
    config_file's (a TOML file), which win over the defaults. resume=RUN continues that run (only steps,
    epochs, device, logging and checkpoint cadence, threads and log_to may change). nproc > 1 trains in
    that many processes on this machine.
    """
    from genforge.core.runs.config import config_from_dict, resumed_config
    from genforge.core.runs.run_dir import read_run_config
    from genforge.core.training.distributed import placement_from_environment, stop
    from genforge.core.training.trainer import Trainer

    nproc = whole(nproc, "nproc", 1, 1024)
    progress, overwrite = flag(progress, "progress"), flag(overwrite, "overwrite")
    out, resume = path_of(out, "out", optional=True), path_of(resume, "resume", optional=True)
    config_file = path_of(config_file, "config_file", optional=True)
    callbacks = callbacks_of(callbacks)
    text(model, "model", optional=True), text(dataset, "dataset", optional=True)
    given = {k: v for k, v in {"model": model, "dataset": dataset, **plain(options)}.items() if v is not None}
    from_file = read_config_file(config_file) if config_file else {}
    if isinstance(given.get("model_options"), dict) and isinstance(from_file.get("model_options"), dict):
        given["model_options"] = {**from_file["model_options"], **given["model_options"]}
    if isinstance(given.get("log_to"), str):
        given["log_to"] = [name.strip() for name in given["log_to"].split(",") if name.strip()]
    distributed = nproc > 1 and not placement_from_environment().distributed
    if resume is not None:
        if out is not None and Path(out) != Path(resume):
            raise UserError("--resume continues the run in its own directory; drop --out")
        changes = {**from_file, **given}
        config = resumed_config(read_run_config(resume), changes)
        if distributed:
            return _launch(nproc, config, changes, ["--resume", str(resume)], progress, Path(resume))
        trainer = Trainer(config, resume, resume=True, progress=progress, callbacks=list(callbacks))
    else:
        config = config_from_dict({**from_file, **given})
        out = check_output_dir(out, "run directory") if out is not None else default_run_dir(config.model,
                                                                                              config.dataset)
        if distributed:
            target = ["--out", str(out)] + (["--overwrite"] if overwrite else [])
            return _launch(nproc, config, dataclasses.asdict(config), target, progress, Path(out))
        trainer = Trainer(config, out, overwrite=overwrite, progress=progress, callbacks=list(callbacks))
    if trainer.step >= trainer.total_steps:
        trainer.release_lock()  # the process may go on (a notebook): the run must stay open to others
        raise UserError(f"{trainer.out} already reached step {trainer.step}; pass more --steps or --epochs to go on")
    started = time.perf_counter()
    trainer.fit()
    stop()
    return Run(trainer.out, {"step": trainer.step, "seconds": time.perf_counter() - started,
                             "device": str(trainer.device), "main": trainer.placement.main,
                             "stop_reason": trainer.stop_reason})


def _launch(nproc, config, options: dict, target: list[str], progress: bool, out: Path) -> Run:
    from genforge.app.launch import check_launch, launch

    check_launch(nproc, config)
    launch(nproc, options, target, progress)  # rank 0 reports what it trained
    return Run(out, {"step": None, "seconds": None, "device": None, "main": False})


def _labels(labels, n: int):
    """labels as the CLI and the API take them: None, one class, or a list cycled over the n samples."""
    if labels is None:
        return None
    values = np.atleast_1d(np.asarray(labels))
    if values.size == 0 or values.dtype.kind not in "iu":
        raise UserError(f"labels must be a class number or a list of them, not {labels!r}")
    return np.resize(values, n)


def sample(target, n: int = 64, labels=None, seed: int = 0, checkpoint=None, ema=None,
           provider: str = "cpu", sampling: dict | None = None, threads: int | None = None) -> Samples:
    """n samples from a run directory, an .onnx or an .engine (labels: a class or a list cycled over them;
    sampling: new values for a run's sampling options, such as {"steps": 10} for diffusion; threads: None for
    the free cores)."""
    target = path_of(target, "target")
    n, seed = whole(n, "n", 1, 2**40), whole(seed, "seed", 0, MAX_SEED)
    compute = settle(threads)
    generator = runtime.load(target, provider=provider, checkpoint=checkpoint, ema=ema, sampling=sampling,
                             threads=compute.threads)
    check_generation(n, math.prod(generator.latent_shape), math.prod(generator.image_shape))  # before any array
    if generator.signature.restores:
        from genforge.app.restore_folder import restoration_samples

        return restoration_samples(generator, target, n, seed)
    label_array = _labels(labels, n)
    if label_array is not None and not generator.conditional:
        raise UserError("--labels needs a conditional model; this one is unconditional")
    one_per_column = generator.conditional and label_array is None and generator.num_classes <= 16
    if generator.conditional and label_array is None:
        label_array = generator.signature.check_labels(None, n)
    images = generator.generate(n=n, labels=label_array, seed=seed)
    return Samples(images, label_array if generator.conditional else None, list(generator.class_names),
                   generator.num_classes if one_per_column else None)


def evaluate(target, n: int = 2000, metrics=None, checkpoint=None, ema=None, dataset_from=None, seed: int = 0,
             inception_weights=None, sampling: dict | None = None, threads: int | None = None) -> Scores:
    """Scores of a run directory or an exported file (metrics: names, comma-separated or a list; sampling: new
    values for a run's sampling options)."""
    from genforge.core.evaluation.scoring import evaluate_target

    target = path_of(target, "target")
    n, seed = whole(n, "n", 1, 2**40), whole(seed, "seed", 0, MAX_SEED)
    ema, sampling = flag(ema, "ema", optional=True), options_dict(sampling, "sampling")
    checkpoint = str(path_of(checkpoint, "checkpoint")) if checkpoint is not None else None
    dataset_from = path_of(dataset_from, "dataset_from", optional=True)
    if isinstance(metrics, list | tuple):
        metrics = ",".join(text(m, "metrics") for m in metrics)
    text(metrics, "metrics", optional=True)
    options = {"inception_weights": inception_weights} if inception_weights else None
    compute = settle(threads)
    return Scores(evaluate_target(target, checkpoint=checkpoint, ema=ema, n=n, metrics=metrics,
                                  dataset_from=dataset_from, seed=seed, options=options, sampling=sampling,
                                  threads=compute.threads))


def export_onnx_file(run, out, precision: str = REFERENCE, target: str = "cpu", overwrite: bool = False,
                     **options):
    """Export a run's generator to `out` (.onnx) with the quality gate, then hand the file to the run's loggers
    that keep files; returns the ExportReport (checks against PyTorch, quality). `genforge export onnx`."""
    from genforge.app.export import export_gated
    from genforge.core.training.loggers import log_artifacts

    run_dir, out = Path(run.path if isinstance(run, Run) else run), Path(out)
    check_output_file(out, "onnx file", (".onnx",))
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it, or another out")
    compute = settle(options.pop("threads", None))
    report = export_gated(run_dir, out, precision=precision, target=target, threads=compute.threads, **options)
    log_artifacts(run_dir, [out])
    return report


def export(run, format: str = "onnx", out=None, precision: str = REFERENCE, target: str = "cpu", overwrite=False,
           **options) -> Path:
    """Export a run's generator and return the file: format "onnx" (options: checkpoint, opset, batch, ema,
    rewrite, force, max_fd_increase, quality_samples, sampling, threads) or "tensorrt" (an engine built from a
    fresh ONNX export; options min_batch, opt_batch, max_batch, workspace_gib).
    The default path is beside the run directory."""
    run_dir = path_of(run, "run")
    if format not in ("onnx", "tensorrt"):
        raise UserError(f"unknown export format {format!r}; use onnx or tensorrt")
    known_keywords(options, EXPORT_OPTIONS[format], f"export(format={format!r})")
    options = check_export_options(options)
    out, overwrite = path_of(out, "out", optional=True), flag(overwrite, "overwrite")
    text(precision, "precision"), text(target, "target")
    suffix = ".onnx" if format == "onnx" else ".engine"
    out = Path(out) if out is not None else run_dir.parent / export_file_name(run_dir.name, precision, target, suffix)
    if format == "onnx":
        export_onnx_file(run_dir, out, precision, target, overwrite, **options)
        return out
    from genforge.core.runtime.tensorrt import tensorrt_module
    from genforge.core.training.loggers import log_artifacts
    from genforge.exporters.tensorrt import build_engine

    check_output_file(out, "engine file", (suffix,))
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it, or another out")
    tensorrt_module()  # TensorRT and a GPU, before any file is written
    engine_options = {k: options.pop(k) for k in ("min_batch", "opt_batch", "max_batch", "workspace_gib")
                      if k in options}
    onnx_file = out.with_suffix(".onnx")
    export_onnx_file(run_dir, onnx_file, precision, "tensorrt", overwrite, **options)
    build_engine(onnx_file, out, **engine_options)
    log_artifacts(run_dir, [out])
    return out


def bench(targets, backends=None, batches=(1, 8, 64), warmup_s: float = 0.5, min_iters: int = 10,
          duration_s: float = 2.0, threads: int | None = None, precision: str = REFERENCE,
          progress=None) -> BenchReport:
    """Time each target (runs, run directories, .onnx, .engine) on each backend (names, or None for every one
    that fits) and batch size; the report holds every raw sample."""
    from genforge.benchmarks.measure import Settings, run_benchmarks

    many = targets if isinstance(targets, list | tuple) else [targets]
    paths = [path_of(t, "targets") for t in many]
    if not paths:
        raise UserError("targets= is empty; give at least one (a run directory, an .onnx or an .engine)")
    settings = Settings.checked("bench()", lambda key: f"{key}=", batches=batches, warmup_s=warmup_s,
                                min_iters=min_iters, duration_s=duration_s, threads=threads)
    if progress is not None and not callable(progress):
        raise UserError(f"progress={progress!r} must be a function taking one line of text, or None")
    if backends is not None and not isinstance(backends, str | list | tuple):
        raise UserError(f"backends={backends!r} must be names, comma-separated or a list")
    names = [b.strip() for b in backends.split(",") if b.strip()] if isinstance(backends, str) else backends
    if precision not in runtime_precisions():
        raise UserError(f"unknown precision {precision!r} for benchmarking run directories; use "
                        f"{' or '.join(runtime_precisions())}")
    backend = TABLE[precision].bench_backend  # the backend that times a run directory in this precision
    if backend != TABLE[REFERENCE].bench_backend:
        names = [(backend if n == TABLE[REFERENCE].bench_backend else n) for n in names] if names else [backend]
    return BenchReport(run_benchmarks(paths, names, settings, progress=progress))


@dataclass
class Run:
    """A run directory: what training wrote, and what can be done with it."""

    path: Path
    trained: dict | None = None  # this process's training (step, seconds, device), when it trained it

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def record(self) -> dict:
        """config.json: the training options, the model's config and the data it was built for."""
        from genforge.core.runs.run_dir import read_run_config

        return read_run_config(self.path)

    @property
    def config(self) -> dict:
        """The training options the run was made with (config.json's "train")."""
        return self.record["train"]

    @property
    def stop_reason(self) -> str | None:
        """Why training ended before its steps (a callback such as EarlyStopping), from metrics.jsonl; None when
        it ran to the end."""
        stops = self.metrics("stop")
        return stops[-1]["reason"] if stops and stops[-1]["step"] == self._last_step() else None

    def _last_step(self) -> int | None:
        steps = [r["step"] for r in self.metrics("train")] + [r["step"] for r in self.metrics("stop")]
        return max(steps) if steps else None

    def metrics(self, kind: str = "train") -> list[dict]:
        """metrics.jsonl's records of one kind ("train", "eval", "lr", "stop")."""
        from genforge.core.runs.run_dir import read_metrics

        return read_metrics(self.path, kind)

    def sample(self, n: int = 64, labels=None, seed: int = 0, checkpoint=None, ema=None, threads=None) -> Samples:
        """n images from this run (genforge.sample): labels a class or a list cycled over them (conditional
        models), checkpoint a folder under checkpoints/ (default: the latest), ema the EMA weights or not."""
        return sample(self.path, n, labels, seed, checkpoint, ema, threads=threads)

    def evaluate(self, n: int = 2000, metrics=None, checkpoint=None, ema=None, seed: int = 0, threads=None) -> Scores:
        """Scores of n generated images (genforge.evaluate): FD and its floor, KID, class accuracy where labelled;
        metrics names others (a list, or comma-separated)."""
        return evaluate(self.path, n, metrics, checkpoint, ema, seed=seed, threads=threads)

    def export(self, format: str = "onnx", out=None, precision: str = REFERENCE, **options) -> Path:
        """The generator as a file (genforge.export): "onnx" in fp32, fp16 or int8 behind the quality gate, or
        "tensorrt"; returns its path (default: beside the run directory)."""
        return export(self, format, out, precision, **options)

    def __repr__(self) -> str:
        try:
            train = self.config
        except UserError as exc:
            return f"Run({str(self.path)!r}: {exc.message})"
        logged = self.metrics()
        step = logged[-1]["step"] if logged else 0
        return f"Run({str(self.path)!r}: {train['model']} on {train['dataset']}, step {step})"

    def _repr_html_(self) -> str:
        train = self.config
        rows = [[k, v] for k, v in train.items() if v not in (None, {}, [])]
        pictures = "".join(inline_png((self.path / name).read_bytes(), name)
                           for name in ("samples.png", "loss.png") if (self.path / name).exists())
        return f"<p>{repr(self)}</p>{pictures}<details><summary>options</summary>" \
               f"{html_table(rows, ['option', 'value'])}</details>"


def _with_training_options(function):
    """train()'s signature shows every training option (TrainConfig's fields) as a keyword, so help() and IDEs
    list them; the function still takes them as **options."""
    import inspect

    from genforge.core.runs.config import TrainConfig

    signature = inspect.signature(function)
    fixed = [p for p in signature.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in fixed}
    extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                               default=None if f.default is dataclasses.MISSING else f.default, annotation=f.type)
             for f in dataclasses.fields(TrainConfig) if f.name not in taken]
    function.__signature__ = signature.replace(parameters=fixed + extra)
    function.__doc__ += "\n    Training options: " + ", ".join(p.name for p in extra) + ".\n"
    return function


train = _with_training_options(train)
