"""The benchmark suite: a TOML file of reference generators, exports and backends.

`genforge bench suite [SUITE.toml] [--smoke] [--out DIR] [--baseline BASE.json]` trains
the suite's generators (or reuses them from --work), exports them, runs every backend and
writes suite.json and suite.md. With --baseline it also compares against a stored report;
on a noisy machine prefer `genforge bench ab` (interleaved) for a verdict.
"""

from __future__ import annotations

import re
from pathlib import Path

from genforge.app import api
from genforge.benchmarks.measure import BACKENDS_RULE, BENCH_RULES
from genforge.benchmarks.rows import markdown_table
from genforge.core.arguments import check_table, is_whole
from genforge.core.errors import UserError
from genforge.core.files import read_toml, write_atomic, write_json
from genforge.core.precision import REFERENCE
from genforge.core.runs import checkpoint as ckpt
from genforge.exporters.precisions import export_file_name

STANDARD = Path(__file__).parent / "suites" / "standard.toml"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a file name, never a path out of --work
BENCH_SECTION = {**BENCH_RULES, "backends": BACKENDS_RULE}  # the same rules as a pipeline's [bench]
SMOKE_SECTION = {**BENCH_SECTION, "steps": (is_whole(1), "a whole number of training steps, 1 or more")}


def load_suite(path: Path | None = None) -> dict:
    path = Path(path) if path else STANDARD
    suite = read_toml(path, "suite file")
    if not suite.get("targets"):
        raise UserError(f"suite {path} lists no [[targets]]")
    check_suite(suite, path)
    return suite


def check_suite(suite: dict, path) -> None:
    """Every target names itself and its model; every table is a table; timings are finite. Before any work."""
    if not isinstance(suite["targets"], list):
        raise UserError(f"suite {path}: targets must be a list of [[targets]] tables")
    for i, entry in enumerate(suite["targets"], 1):
        if not isinstance(entry, dict):
            raise UserError(f"suite {path}: target {i} is not a table; write it as [[targets]]")
        for key in ("name", "model"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise UserError(f"suite {path}: target {i} has no {key} (text); add {key} = \"...\"")
        if not SAFE_NAME.fullmatch(entry["name"]):
            raise UserError(f"suite {path}: target name {entry['name']!r} must be a plain name (letters, digits, "
                            "'.', '_', '-'; it names files inside --work)")
        if not isinstance(entry.get("model_options", {}), dict):
            raise UserError(f"suite {path}: target {entry['name']}'s model_options must be a table")
        exports = entry.get("export", [REFERENCE])
        if not isinstance(exports, list) or not all(isinstance(p, str) for p in exports):
            raise UserError(f"suite {path}: target {entry['name']}'s export must be a list like [\"fp32\", \"int8\"]")
    for section in ("train", "bench", "smoke"):
        if not isinstance(suite.get(section, {}), dict):
            raise UserError(f"suite {path}: [{section}] must be a table")
    for section, rules in (("bench", BENCH_SECTION), ("smoke", SMOKE_SECTION)):
        check_table(suite.get(section, {}), rules, f"suite {path} [{section}]")


def build_targets(suite: dict, work: Path, smoke: bool = False, echo=print) -> list[Path]:
    """Train (or reuse) each reference generator and export it; returns every benchmark target."""
    targets = []
    for entry in suite["targets"]:
        train = {**suite.get("train", {}), "model": entry["model"], "model_options": entry.get("model_options", {}),
                 "sample_every": 0, "checkpoint_every": 0}
        if smoke:
            train["steps"] = suite.get("smoke", {}).get("steps", 2)
        run = work / f"{entry['name']}-{train['steps']}steps"
        if not ckpt.step_checkpoints(run / "checkpoints"):
            echo(f"training {entry['name']} ({train['steps']} steps)")
            api.train(**train, out=run, overwrite=True, progress=False)
        targets.append(run)
        for precision in entry.get("export", [REFERENCE]):
            path = work / export_file_name(run.name, precision)
            if not path.exists():
                api.export_onnx_file(run, path, precision, check_quality=not smoke)
            targets.append(path)
    return targets


def run_suite(path: Path | None, out: Path, work: Path | None = None, smoke: bool = False, echo=print) -> dict:
    suite = load_suite(path)
    work = Path(work) if work else out / "work"
    work.mkdir(parents=True, exist_ok=True)
    targets = build_targets(suite, work, smoke, echo)
    bench = {**suite.get("bench", {}), **({k: v for k, v in suite.get("smoke", {}).items() if k != "steps"}
                                          if smoke else {})}
    timings = {key: bench[key] for key in BENCH_RULES if key in bench}
    report = dict(api.bench(targets, bench.get("backends"), **timings))
    report["suite"] = {"file": str(path or STANDARD), "smoke": smoke}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "suite.json", report, indent=1)
    write_atomic(out / "suite.md", markdown_table(report) + "\n")
    return report
