"""`genforge run`: the main job. Train, evaluate, export, benchmark, and write a report folder.

With no pipeline file it runs the default: dcgan on the embedded digits (800 steps, batch
32, widths 32), evaluation on 1,000 samples, ONNX export in fp32 and int8, and PyTorch
against ONNX Runtime on the CPU at batch 1 and 64. A PIPELINE.toml overrides any part:

    out = "my-report"
    [train]
    model = "cgan"
    steps = 1200
    [export]
    precisions = ["fp32", "fp16", "int8"]
    [bench]
    batches = [1, 8, 64]
    store = "bench-history.sqlite"   # optional: record the timings (commit from CI or git); the
                                     # report then shows each row's history and its steps

The folder gets index.html (sample grid, loss curve, quality, exports, benchmark,
environment), report.json with the same numbers, the run directory and the .onnx files.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

from genforge.app import api
from genforge.app.charts import grids_side_by_side, history_chart, speed_chart
from genforge.app.report import render_html, render_markdown
from genforge.app.results import inline_png
from genforge.benchmarks.measure import BACKENDS_RULE, BENCH_RULES
from genforge.core.arguments import check_table, flag, is_number, is_whole, path_of, text
from genforge.core.compute import check_threads, settle
from genforge.core.errors import UserError
from genforge.core.files import check_output_dir, read_toml, write_atomic, write_json
from genforge.core.folders import make_owned_folder, removal_refusal, remove_owned_folder, run_lock
from genforge.core.model import make_config
from genforge.core.precision import REFERENCE, default_exports
from genforge.core.registry import get_registry
from genforge.core.runs.config import config_from_dict
from genforge.core.runs.run_dir import read_run_config, run_files
from genforge.core.training.loggers import check_loggers
from genforge.exporters.precisions import PRECISIONS, export_file_name

DEFAULT_PIPELINE = {
    "out": "genforge-report",
    "threads": None,  # None: the free cores of this machine (core/compute.py)
    "train": {"model": "dcgan", "dataset": "digits", "image_size": 32, "batch_size": 32, "steps": 800,
              "sample_every": 200, "checkpoint_every": 400, "model_options": {"g_width": 32, "d_width": 32}},
    "evaluate": {"n": 1000, "metrics": None},
    "export": {"precisions": default_exports(), "quality_samples": 1000, "max_fd_increase": 0.10},
    "bench": {"backends": ["torch", "ort-cpu"], "batches": [1, 64], "warmup_s": 0.3, "duration_s": 1.5,
              "min_iters": 10},
}
SECTIONS = set(DEFAULT_PIPELINE)
# per section: key -> (check, what it must be), checked by core/arguments.py check_table; [train] by the training
# options' own rules, the benchmark's timings by BENCH_RULES (the API's and the CLI's too)
SECTION_RULES = {
    "evaluate": {"n": (is_whole(10), "a whole number from 10 to 1000000"),
                 "metrics": (lambda v: v is None or isinstance(v, str), "comma-separated metric names")},
    "export": {"precisions": (lambda v: isinstance(v, list) and bool(v) and all(p in PRECISIONS for p in v),
                              f"a list of {', '.join(PRECISIONS)}"),
               "quality_samples": (is_whole(10), "a whole number from 10 to 1000000"),
               "max_fd_increase": (is_number(0), "a number, 0 or more")},
    "bench": {**BENCH_RULES, "backends": BACKENDS_RULE,
              "store": (lambda v: isinstance(v, str) and bool(v), "a SQLite path or a database URL (text)"),
              "commit": (lambda v: isinstance(v, str) and bool(v), "a commit SHA (text)"),
              "branch": (lambda v: isinstance(v, str) and bool(v), "a branch name (text)")},
}


def load_pipeline(path: Path | None, model: str | None = None) -> dict:
    """The default pipeline, overridden by PIPELINE.toml, then by `model` (genforge run --model, which starts
    from that model's default options); every value checked before any work."""
    config = copy.deepcopy(DEFAULT_PIPELINE)
    data = read_toml(path, "pipeline file") if path is not None else {}
    if model is not None and isinstance(data.get("train", {}), dict):
        train = dict(data.get("train", {}))
        if train.get("model", config["train"]["model"]) != model:
            train.pop("model_options", None)  # the file's options belong to the model it named
        data["train"] = {**train, "model": model}
    unknown = sorted(set(data) - SECTIONS)
    if unknown:
        raise UserError(f"unknown pipeline section(s) {', '.join(unknown)}; known: {', '.join(sorted(SECTIONS))}")
    for key, value in data.items():
        if key == "out":
            if not isinstance(value, str) or not value:
                raise UserError(f"pipeline out = {value!r} must be a folder name (text)")
            config["out"] = value
            continue
        if key == "threads":
            config["threads"] = check_threads(value, "pipeline threads = ")
            continue
        if not isinstance(value, dict):
            raise UserError(f"pipeline [{key}] must be a table of settings, not {value!r}")
        if key == "train" and ("epochs" in value or "steps" in value):
            config["train"].pop("steps", None)
        if key == "train" and value.get("model", config["train"]["model"]) != config["train"]["model"]:
            config["train"]["model_options"] = {}  # the default's options are dcgan's: another model starts afresh
        config[key].update(value)
    check_pipeline(config)
    return config


def check_pipeline(config: dict) -> None:
    """Every section's settings, names included, before any work."""
    train = config_from_dict(dict(config["train"]))
    registry = get_registry()
    make_config(registry.model(train.model).load().Config, train.model_options)
    registry.get("datasets", train.dataset)
    check_loggers(train.log_to)
    for name in config["bench"].get("backends", ()):
        registry.get("backends", name)
    for name in (config["evaluate"].get("metrics") or "").split(","):
        if name.strip():
            registry.get("metrics", name.strip())
    for section, rules in SECTION_RULES.items():
        check_table(config[section], rules, f"pipeline [{section}]")
    bench = config["bench"]
    if ("commit" in bench or "branch" in bench) and "store" not in bench:
        raise UserError("pipeline [bench] commit and branch go with store = PATH_OR_URL (where to record)")
    if "store" in bench:
        from genforge.benchmarks.store import commit_and_branch

        commit_and_branch(bench.get("commit"), bench.get("branch"))  # known before any work


EXPORT_STEM = "model"  # the report's files: model-fp32.onnx, model-int8.onnx
RUN_FOLDER = "training"  # not "run": `genforge bench run model.onnx` would read it as the subcommand
RUN_FOLDERS = (RUN_FOLDER, "run")  # "run": what genforge 0.1 called it, still recognised as ours
REPORT_FILES = ("samples.png", "loss.png", "precisions.png", "speed.png", "bench.json", "report.json", "report.md",
                "index.html",
                *(export_file_name(EXPORT_STEM, precision) for precision in PRECISIONS))


def prepare_out(out: Path, overwrite: bool) -> None:
    """A new or empty folder, or one genforge made for a report: an unfinished one (no report.json) is replaced,
    a finished one only with --overwrite. Never a folder holding anything genforge did not write."""
    if out.exists() and any(out.iterdir()):
        refusal = removal_refusal(out, "report", REPORT_FILES + RUN_FOLDERS)
        runs = [out / name for name in RUN_FOLDERS if (out / name).is_dir() and any((out / name).iterdir())]
        for run in runs:
            refusal = refusal or removal_refusal(run, "run", run_files())
        if refusal:
            raise UserError(f"{refusal}; refusing to replace it: choose another --out (or move your files out)")
        if (out / "report.json").exists() and not overwrite:
            raise UserError(f"{out} holds an earlier report; pass --overwrite to replace it, or choose another --out")
        with contextlib.ExitStack() as locks:
            for run in runs:
                locks.enter_context(run_lock(run, "replace its report"))
            remove_owned_folder(out, "report", REPORT_FILES + RUN_FOLDERS, "choose another --out")
    make_owned_folder(out, "report")


def run_job(config: dict, overwrite: bool = False, echo=print) -> Path:
    """The job of a checked pipeline config, each step through the Python API (app/api.py) with one thread
    count settled here; returns the report folder."""
    check_pipeline(config)
    out = check_output_dir(config["out"], "report folder")
    threads = settle(config.get("threads")).threads
    train = config["train"]
    prepare_out(out, overwrite)
    report: dict = {"pipeline": config, "timings_s": {}}
    started = time.perf_counter()

    echo(f"[1/4] training {train['model']} on {train['dataset']}")
    t = time.perf_counter()
    run = api.train(**{**train, "threads": threads}, out=out / RUN_FOLDER)
    report["timings_s"]["train"] = time.perf_counter() - t
    report["train"] = {"steps": run.trained["step"], "run_dir": RUN_FOLDER, "device": run.trained["device"]}
    report["images"] = []
    pictures = {name: (run.path / name).read_bytes() for name in ("samples.png", "loss.png")
                if (run.path / name).exists()}
    report["train_config"] = read_run_config(run.path)["train"]

    echo("[2/4] evaluating")
    t = time.perf_counter()
    report["quality"] = dict(api.evaluate(run, n=config["evaluate"]["n"], metrics=config["evaluate"].get("metrics"),
                                          threads=threads))
    report["timings_s"]["evaluate"] = time.perf_counter() - t

    echo(f"[3/4] exporting ONNX ({', '.join(config['export']['precisions'])})")
    t = time.perf_counter()
    report["exports"], targets = [], [run.path]
    for precision in config["export"]["precisions"]:
        path = out / export_file_name(EXPORT_STEM, precision)
        result = api.export_onnx_file(run, path, precision, overwrite=True, threads=threads,
                                      quality_samples=config["export"]["quality_samples"],
                                      max_fd_increase=config["export"]["max_fd_increase"])
        report["exports"].append(export_row(precision, path, result))
        targets.append(path)
    report["timings_s"]["export"] = time.perf_counter() - t

    echo("[4/4] benchmarking")
    t = time.perf_counter()
    b = config["bench"]
    timings = {key: b[key] for key in BENCH_RULES if key in b}
    bench = dict(api.bench(targets, b["backends"], **{"threads": threads, **timings}))
    write_json(out / "bench.json", bench, indent=1)
    shown = [{**row, "target": "PyTorch (the run)"} if row["target_kind"] == "run" else row for row in bench["rows"]]
    report["bench"] = [{k: v for k, v in row.items() if k != "samples_ms"} for row in shown]
    report["timings_s"]["bench"] = time.perf_counter() - t
    report["environment"] = bench["environment"]
    history_plots: dict = {}  # in index.html only: the report folder holds the files REPORT_FILES names
    if b.get("store"):
        report["history"] = record_history(bench, b, history_plots)
    pictures["precisions.png"] = precision_grids(targets, threads)
    pictures["speed.png"] = speed_chart(shown)
    for name, data in pictures.items():
        if data:
            write_atomic(out / name, data)
            report["images"].append(name)
    report["timings_s"]["total"] = time.perf_counter() - started
    write_json(out / "report.json", report, indent=1)
    write_atomic(out / "report.md", render_markdown(report))
    write_atomic(out / "index.html", render_html(report, {**pictures, **history_plots}))
    return out


def export_row(precision: str, path: Path, result) -> dict:
    """The report's line for one exported file: size, its worst check against PyTorch, the quality gate."""
    quality = result.quality or {}
    return {"precision": precision, "file": path.name, "size_mb": result.size_bytes / 1e6,
            "psnr_db": min(c["psnr_db"] for c in result.checks),
            "max_abs_error": max(c["max_abs_error"] for c in result.checks),
            "fd_change": quality.get("fd_increase"), "gate": quality.get("summary"), "gate_passed": quality.get("ok")}


def record_history(bench: dict, settings: dict, pictures: dict) -> dict:
    """Record the benchmark in the store, then this machine's history of the rows just timed: the steps found
    and one plot per row (added to `pictures`)."""
    from genforge.benchmarks.history import build_history, step_line
    from genforge.benchmarks.store import open_store, record_report

    record = record_report(bench, settings["store"], settings.get("commit"), settings.get("branch"))
    timed = {(r["target"], r["backend"], r["batch"]) for r in bench["rows"] if r["status"] == "ok"}
    with open_store(settings["store"]) as store:
        history = [s for s in build_history(store, fingerprint=record.fingerprint)
                   if (s.target, s.backend, s.batch) in timed]
    for series in history:
        pictures[series.file_name] = history_chart(series)
    return {"store": store.shown, "commit": record.commit, "branch": record.branch, "machine": record.fingerprint,
            "line": record.line, "steps": [step_line(s, step) for s in history for step in s.steps],
            "series": [{"name": s.name, "commits": len(s.points), "plot": s.file_name} for s in history]}


def precision_grids(targets: list[Path], threads: int, n: int = 30) -> bytes:
    """The run and each export, from the same noise (and labels, and a restoration model's degraded test images),
    side by side."""
    from genforge.core import runtime

    generators = {(f"PyTorch {REFERENCE}" if t.is_dir() else t.stem): runtime.load(t, threads=threads) for t in targets}
    first = next(iter(generators.values()))
    z, labels = first.prepare_inputs(n=n, seed=7)
    images = dict(zip((i.name for i in first.inputs), first.example_images(n, seed=7))) if first.inputs else {}
    grids = {name: g.generate(z=z, labels=labels, **images) for name, g in generators.items()}
    return grids_side_by_side(grids, first.class_names if first.conditional else None, labels)


@dataclass
class PipelineResult:
    """The report folder `genforge run` wrote (index.html, report.md, report.json, the run, the .onnx files)."""

    folder: Path
    report: dict

    def __repr__(self) -> str:
        from genforge.app.report import summary_line

        return f"{summary_line(self.report)}\nreport: {self.folder / 'index.html'}"

    def _repr_html_(self) -> str:
        pictures = "".join(inline_png((self.folder / name).read_bytes(), name)
                           for name in ("precisions.png", "speed.png") if (self.folder / name).exists())
        return f"<p>{repr(self).splitlines()[0]}</p>{pictures}"


def run_pipeline(pipeline=None, out=None, overwrite: bool = False, threads: int | None = None,
                 echo=print, model: str | None = None) -> PipelineResult:
    """The main job (`genforge run`, genforge.run_pipeline): train, evaluate, export, benchmark, report.
    pipeline: a PIPELINE.toml path, or None for the default on the embedded digits; model: train this model
    instead (with its own default options)."""
    pipeline, out = path_of(pipeline, "pipeline", optional=True), path_of(out, "out", optional=True)
    threads, overwrite = check_threads(threads), flag(overwrite, "overwrite")
    model = text(model, "model", optional=True)
    config = load_pipeline(pipeline, model)
    if out is not None:
        config["out"] = str(out)
    if threads:
        config["threads"] = threads
    folder = run_job(config, overwrite=overwrite, echo=echo)
    return PipelineResult(folder, json.loads((folder / "report.json").read_text()))
