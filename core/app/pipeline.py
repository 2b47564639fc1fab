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

The folder gets index.html (sample grid, loss curve, quality, exports, benchmark,
environment), report.json with the same numbers, the run directory and the .onnx files.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path

from genforge.benchmarks.measure import Settings, run_benchmarks
from genforge.core.app.evaluate import evaluate_target
from genforge.core.app.report import render_html
from genforge.core.errors import UserError
from genforge.core.files import check_output_dir, read_toml
from genforge.core.registry import get_registry
from genforge.core.trainer import Trainer, config_from_dict
from genforge.exporters.onnx import export_onnx
from genforge.exporters.precisions import PRECISIONS

DEFAULT_PIPELINE = {
    "out": "genforge-report",
    "train": {"model": "dcgan", "dataset": "digits", "image_size": 32, "batch_size": 32, "steps": 800,
              "sample_every": 200, "checkpoint_every": 400, "model_options": {"g_width": 32, "d_width": 32}},
    "evaluate": {"n": 1000, "metrics": None},
    "export": {"precisions": ["fp32", "int8"], "quality_samples": 1000, "max_fd_increase": 0.10},
    "bench": {"backends": ["torch", "ort-cpu"], "batches": [1, 64], "warmup_s": 0.3, "duration_s": 1.5,
              "min_iters": 10},
}
SECTIONS = set(DEFAULT_PIPELINE)


def _whole(low):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(low, strict=False):
    return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
                      and (v > low if strict else v >= low))


# per section: key -> (check, what it must be); [train] is checked by the training options' own rules
SECTION_RULES = {
    "evaluate": {"n": (_whole(10), "a whole number, at least 10"),
                 "metrics": (lambda v: v is None or isinstance(v, str), "comma-separated metric names")},
    "export": {"precisions": (lambda v: isinstance(v, list) and v and all(p in PRECISIONS for p in v),
                              f"a list of {', '.join(PRECISIONS)}"),
               "quality_samples": (_whole(10), "a whole number, at least 10"),
               "max_fd_increase": (_number(0), "a number, 0 or more")},
    "bench": {"backends": (lambda v: isinstance(v, list) and v and all(isinstance(b, str) for b in v),
                           "a list of backend names"),
              "batches": (lambda v: isinstance(v, list) and v and all(_whole(1)(b) for b in v),
                          "a list of batch sizes, each at least 1"),
              "warmup_s": (_number(0), "seconds, 0 or more"),
              "duration_s": (_number(0, strict=True), "seconds above 0"),
              "min_iters": (_whole(1), "a whole number, at least 1"),
              "threads": (lambda v: v is None or _whole(1)(v), "a whole number, at least 1")},
}


def load_pipeline(path: Path | None) -> dict:
    """The default pipeline, overridden by PIPELINE.toml; every value checked before any work."""
    config = copy.deepcopy(DEFAULT_PIPELINE)
    if path is None:
        return config
    data = read_toml(path, "pipeline file")
    unknown = sorted(set(data) - SECTIONS)
    if unknown:
        raise UserError(f"unknown pipeline section(s) {', '.join(unknown)}; known: {', '.join(sorted(SECTIONS))}")
    for key, value in data.items():
        if key == "out":
            if not isinstance(value, str) or not value:
                raise UserError(f"pipeline out = {value!r} must be a folder name (text)")
            config["out"] = value
            continue
        if not isinstance(value, dict):
            raise UserError(f"pipeline [{key}] must be a table of settings, not {value!r}")
        if key == "train" and ("epochs" in value or "steps" in value):
            config["train"].pop("steps", None)
        config[key].update(value)
    check_pipeline(config)
    return config


def check_pipeline(config: dict) -> None:
    """Every section's settings, names included, before any work."""
    config_from_dict(dict(config["train"]))
    registry = get_registry()
    for name in config["bench"].get("backends", ()):
        registry.get("backends", name)
    for name in (config["evaluate"].get("metrics") or "").split(","):
        if name.strip():
            registry.get("metrics", name.strip())
    for section, rules in SECTION_RULES.items():
        unknown = sorted(set(config[section]) - set(rules))
        if unknown:
            raise UserError(f"unknown setting(s) {', '.join(unknown)} in pipeline [{section}]; known: "
                            f"{', '.join(sorted(rules))}")
        for key, value in config[section].items():
            check, must = rules[key]
            if not check(value):
                raise UserError(f"pipeline [{section}] {key} = {value!r} is not valid; it must be {must}")


MARKER = ".genforge-report"  # written first, so a report folder left by a failed run is still known as ours


def prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not ((out / "report.json").exists() or (out / MARKER).exists()):
            raise UserError(f"{out} exists and is not a genforge report; choose another out (or delete it)")
        if not overwrite:
            raise UserError(f"{out} holds an earlier report; pass --overwrite to replace it, or choose another out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("a genforge run report folder\n")


def run_pipeline(config: dict, overwrite: bool = True, echo=print) -> Path:

    check_pipeline(config)
    out = check_output_dir(config["out"], "report folder")
    train_config = config_from_dict(dict(config["train"]))
    prepare_out(out, overwrite)
    report: dict = {"pipeline": config, "timings_s": {}}
    started = time.perf_counter()

    echo(f"[1/4] training {train_config.model} on {train_config.dataset}")
    t = time.perf_counter()
    trainer = Trainer(train_config, out / "run", progress=True)
    run = trainer.fit()
    report["timings_s"]["train"] = time.perf_counter() - t
    report["train"] = {"steps": trainer.step, "run_dir": "run", "device": str(trainer.device)}
    report["images"] = []
    for picture in ("samples.png", "loss.png"):
        if (run / picture).exists():
            shutil.copy(run / picture, out / picture)
            report["images"].append(picture)

    echo("[2/4] evaluating")
    t = time.perf_counter()
    metrics = config["evaluate"].get("metrics")
    report["quality"] = evaluate_target(run, n=config["evaluate"]["n"], metrics=metrics)
    report["timings_s"]["evaluate"] = time.perf_counter() - t

    echo(f"[3/4] exporting ONNX ({', '.join(config['export']['precisions'])})")
    t = time.perf_counter()
    exports, targets = [], [run]
    for precision in config["export"]["precisions"]:
        path = out / f"model-{precision}.onnx"
        result = export_onnx(run, path, precision=precision, quality_samples=config["export"]["quality_samples"],
                             max_fd_increase=config["export"]["max_fd_increase"])
        worst = min(result.checks, key=lambda c: c["psnr_db"])
        exports.append({"precision": precision, "file": path.name, "size_mb": result.size_bytes / 1e6,
                        "psnr_db": worst["psnr_db"], "max_abs_error": max(c["max_abs_error"] for c in result.checks),
                        "fd_change": result.quality.get("fd_increase") if result.quality else None})
        targets.append(path)
    report["exports"] = exports
    report["timings_s"]["export"] = time.perf_counter() - t

    echo("[4/4] benchmarking")
    t = time.perf_counter()
    b = config["bench"]
    settings = Settings(tuple(b["batches"]), b["warmup_s"], b["min_iters"], b["duration_s"], b.get("threads"))
    bench = run_benchmarks(targets, b["backends"], settings)
    (out / "bench.json").write_text(json.dumps(bench, indent=1))
    report["bench"] = [{k: v for k, v in row.items() if k != "samples_ms"} for row in bench["rows"]]
    report["timings_s"]["bench"] = time.perf_counter() - t
    report["environment"] = bench["environment"]
    report["timings_s"]["total"] = time.perf_counter() - started
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "index.html").write_text(render_html(report))
    return out
