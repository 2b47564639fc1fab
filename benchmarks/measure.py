"""Measure: every (target, backend, batch), warm-up then timed calls, raw samples kept.

A report is JSON (schema SCHEMA, described by report.schema.json beside this file): environment,
settings and one row per (target, backend, batch), with the raw per-call times, their
statistics, throughput, GFLOP/s and the share of the device's peak where known, peak memory
and first-call time. A backend that cannot run a target here is a row with status "skipped"
and the reason, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import torch

from genforge import __version__
from genforge.benchmarks.environment import environment
from genforge.benchmarks.stats import compare_samples, summarize
from genforge.core.arguments import check_table, is_number, is_whole, plain
from genforge.core.compute import THREADS_RULE, Compute, settle, valid_threads
from genforge.core.errors import UserError
from genforge.core.hardware import cpu_peak_gflops
from genforge.core.limits import MAX_BATCH, MAX_SECONDS
from genforge.core.registry import get_registry
from genforge.core.runtime.tensorrt import engine_profile
from genforge.core.targets import Target, classify_target

SCHEMA = "genforge.bench/1"
SCHEMA_FILE = Path(__file__).parent / "report.schema.json"


def check_report(report, path) -> None:
    """A report read from a user's file, against report.schema.json: one line naming the first problem."""
    schema = json.loads(SCHEMA_FILE.read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(report))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "the top level"
        raise UserError(f"{path} is not a genforge benchmark report ({SCHEMA}): at {where}, "
                        f"{' '.join(error.message.split())[:160]}; pass a report written by `genforge bench --json`")
    for i, row in enumerate(report["rows"]):
        bad = next((s for s in row.get("samples_ms", ()) if not math.isfinite(s)), None)
        if bad is not None:
            raise UserError(f"{path} is not a genforge benchmark report ({SCHEMA}): rows/{i}/samples_ms holds {bad}, "
                            "not a time; pass a report written by `genforge bench --json`")


BENCH_RULES = {  # every surface's benchmark settings: the API, the CLI, pipeline and suite files
    "batches": (lambda v: isinstance(v, list | tuple) and bool(v) and all(is_whole(1, MAX_BATCH)(b) for b in v),
                f"a list of batch sizes from 1 to {MAX_BATCH}, like [1, 8, 64]"),
    "warmup_s": (is_number(0, high=MAX_SECONDS), f"seconds, 0 to {MAX_SECONDS:g}"),
    "duration_s": (is_number(0, strict=True, high=MAX_SECONDS), f"seconds above 0, at most {MAX_SECONDS:g}"),
    "min_iters": (is_whole(2), "a whole number from 2 to 1000000"),
    "threads": (lambda v: v is None or valid_threads(v), f"{THREADS_RULE} (or left out: the free cores)"),
}
BACKENDS_RULE = (lambda v: isinstance(v, list) and bool(v) and all(isinstance(b, str) for b in v),
                 "a list of backend names")  # a pipeline's or suite's [bench] backends


@dataclass
class Settings:
    batches: tuple[int, ...] = (1, 8, 64)
    warmup_s: float = 0.5
    min_iters: int = 10
    duration_s: float = 2.0
    threads: int | None = None  # None: the free cores, settled when the benchmark starts (core/compute.py)

    @classmethod
    def checked(cls, where: str = "benchmark settings", label=None, **values) -> Settings:
        """Settings from what a user gave (keywords named as in BENCH_RULES), each checked by its rule."""
        check_table(values, BENCH_RULES, where, label)
        values = plain(values)
        if "batches" in values:
            values["batches"] = tuple(values["batches"])
        return cls(**values)

    def settled(self) -> tuple[Settings, Compute]:
        """These settings with the thread count decided (and given to torch), and the Compute that decided it."""
        compute = settle(self.threads)
        return dataclasses.replace(self, threads=compute.threads), compute

    def as_dict(self) -> dict:
        return {"batches": list(self.batches), "warmup_s": self.warmup_s, "min_iters": self.min_iters,
                "duration_s": self.duration_s, "threads": self.threads}


def resolve_target(path) -> Target:
    return classify_target(path, "benchmark target")


def resolve_backends(names) -> dict:

    registry = get_registry()
    specs = registry.specs("backends")
    if not names:
        return {name: spec for name, spec in specs.items() if spec.default}
    return {name: registry.get("backends", name) for name in names}


def check_engine_batches(target, batches) -> None:

    if target.kind != "engine":
        return
    profile = engine_profile(target.path)
    if profile is None:
        return
    low, high = profile["min"][0], profile["max"][0]
    outside = [b for b in batches if not low <= b <= high]
    if outside:
        raise UserError(f"{target.name}'s optimization profile covers batch {low} to {high}, not "
                        f"{', '.join(map(str, outside))}; rebuild the engine with a wider profile "
                        "or drop those batches")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_call(call, settings: Settings, duration_s: float | None = None) -> list[float]:
    """Warm up for settings.warmup_s, then time calls for duration_s and at least min_iters."""
    end = time.perf_counter() + settings.warmup_s
    while time.perf_counter() < end:
        call.timed()
    samples, start = [], time.perf_counter()
    duration = settings.duration_s if duration_s is None else duration_s
    while time.perf_counter() - start < duration or len(samples) < settings.min_iters:
        samples.append(call.timed())
    return samples


def make_row(target, backend_name, batch, samples, call, first_call_s, threads: int | None = None) -> dict:

    stats = summarize(samples)
    where = str(Path(target.checkpoint or target.path).resolve())
    row = {"target": target.name, "target_kind": target.kind, "target_path": where,
           "backend": backend_name, "batch": batch, "status": "ok", "samples_ms": [round(s * 1e3, 4) for s in samples],
           "stats": stats,
           "throughput_img_s": batch / (stats["median_ms"] / 1e3), "first_call_s": first_call_s,
           "peak_rss_mib": peak_rss_mib(), "device": call.device, "gflops": None, "peak_share": None,
           "timing": call.timing, "end_to_end_ms": end_to_end_ms(call)}
    if call.macs_per_image:
        row["gflops"] = 2 * call.macs_per_image * batch / (stats["median_ms"] / 1e3) / 1e9
        if call.device == "cpu":  # against the cores its threads can use, not every core of the machine
            peak, _ = cpu_peak_gflops(min(threads or os.cpu_count() or 1, os.cpu_count() or 1))
            row["peak_share"] = row["gflops"] / peak if peak else None
    if call.device == "cuda":

        row["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


END_TO_END_CALLS = 20


def end_to_end_ms(call) -> float | None:
    """Median of host-to-host calls for device-timed rows (the column every GPU backend shares); None on CPU
    and for rows timed in another process (bench ab --python-a)."""
    if call.timing == "host" or not hasattr(call, "end_to_end"):
        return None
    samples = []
    for _ in range(END_TO_END_CALLS + 1):
        start = time.perf_counter()
        call.end_to_end()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples[1:]) * 1e3, 4)


def prepare_timed(spec, target, batch, settings):
    backend = spec.load()()
    start = time.perf_counter()
    call = backend.prepare(target, batch, settings.threads)
    call.timed()
    return call, time.perf_counter() - start


def _skipped(target, backend: str, reason: str) -> dict:
    return {"target": target.name, "target_kind": target.kind, "backend": backend, "batch": None,
            "status": "skipped", "reason": reason}


def run_benchmarks(targets, backend_names=None, settings: Settings | None = None, progress=None,
                   only: set | None = None) -> dict:
    """Time every (target, backend, batch); `only`: the (target name, backend, batch) keys to time (reruns)."""

    settings, compute = (settings or Settings()).settled()
    resolved = [resolve_target(t) for t in targets]
    backends = resolve_backends(backend_names)
    for target in resolved:
        check_engine_batches(target, settings.batches)
    rows = []
    for name, spec in backends.items():
        backend_rows = []
        for target in resolved:
            if target.kind not in spec.targets:
                continue
            reason = spec.load()().skip_reason(target)
            if reason:
                backend_rows.append(_skipped(target, name, reason))
                continue
            for batch in settings.batches:
                if only is not None and (target.name, name, batch) not in only:
                    continue
                if progress:
                    progress(f"{target.name} · {name} · batch {batch}")
                try:
                    call, first = prepare_timed(spec, target, batch, settings)
                    samples = time_call(call, settings)
                    backend_rows.append(make_row(target, name, batch, samples, call, first, settings.threads))
                except UserError:
                    raise
                except Exception as exc:  # noqa: BLE001  a backend failing here is reported, not fatal
                    backend_rows.append({**_skipped(target, name, f"{type(exc).__name__}: {exc}"),
                                         "status": "failed", "batch": batch})
        if not backend_rows and backend_names and only is None:  # asked for by name, but no target suits it
            backend_rows.append(_skipped(resolved[0], name, spec.load()().skip_reason(resolved[0]) or
                                         f"{name} runs {', '.join(spec.targets)} targets only"))
        rows += backend_rows
    return {"schema": SCHEMA, "created": time.time(), "environment": environment(compute),
            "settings": settings.as_dict(), "rows": rows}


def run_ab(target_a, target_b, backend_names=None, settings: Settings | None = None, rounds: int = 6,
           progress=None) -> tuple[dict, dict]:
    """Two targets timed interleaved A/B/A/B... per (backend, batch): the fair comparison on a noisy machine."""
    settings, compute = (settings or Settings()).settled()
    a, b = resolve_target(target_a), resolve_target(target_b)
    backends = resolve_backends(backend_names)
    reports = {key: {"schema": SCHEMA, "created": time.time(), "environment": environment(compute),
                     "settings": {**settings.as_dict(), "ab_rounds": rounds}, "rows": []} for key in "ab"}
    for name, spec in backends.items():
        reasons = [spec.load()().skip_reason(t) for t in (a, b)]
        if any(reasons):
            if backend_names:
                for key, target, reason in zip("ab", (a, b), reasons):
                    reports[key]["rows"].append({"target": target.name, "target_kind": target.kind, "backend": name,
                                                 "batch": None, "status": "skipped", "reason": reason or reasons[0]})
            continue
        for batch in settings.batches:
            if progress:
                progress(f"A/B · {name} · batch {batch}")
            calls = {key: prepare_timed(spec, t, batch, settings) for key, t in zip("ab", (a, b))}
            samples = {"a": [], "b": []}
            for _ in range(rounds):
                for key in "ab":
                    samples[key] += time_call(calls[key][0], settings, settings.duration_s / rounds)
            for key, target in zip("ab", (a, b)):
                call, first = calls[key]
                row = make_row(target, name, batch, samples[key], call, first, settings.threads)
                row["target"] = "A/B"  # rows of the two reports pair up by backend and batch
                row["ab_target"] = target.name
                reports[key]["rows"].append(row)
    return reports["a"], reports["b"]


def compare_reports(base: dict, new: dict, min_effect: float = 0.10, alpha: float = 0.01) -> list[dict]:

    for report, label in ((base, "BASE"), (new, "NEW")):
        if report.get("schema", "").split("/")[0] != SCHEMA.split("/")[0]:
            raise UserError(f"{label} is not a genforge benchmark report (schema {report.get('schema')!r})")
    key = lambda r: (r["target"], r["backend"], r["batch"])  # noqa: E731
    base_rows = {key(r): r for r in base["rows"] if r["status"] == "ok"}
    out = []
    for row in new["rows"]:
        if row["status"] != "ok" or key(row) not in base_rows:
            continue
        result = compare_samples(base_rows[key(row)]["samples_ms"], row["samples_ms"], min_effect, alpha)
        out.append({"target": row["target"], "backend": row["backend"], "batch": row["batch"],
                    "base_median_ms": base_rows[key(row)]["stats"]["median_ms"],
                    "new_median_ms": row["stats"]["median_ms"], **result})
    if not out:
        raise UserError("the two reports share no (target, backend, batch) row to compare")
    return out


# -- A/B across two genforge installations ---------------------------------------------------------
class Worker:
    """A `genforge bench worker` in another Python (another genforge version), timing on request."""

    def __init__(self, python: str, target: Path, backend: str, batch: int, threads: int | None):
        command = [python, "-m", "genforge", "bench", "worker", str(target), "--backend", backend,
                   "--batch", str(batch)] + (["--threads", str(threads)] if threads else [])
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.hello = self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise UserError(f"benchmark worker {self.process.args[0]} exited (code {self.process.wait()}); "
                            "is genforge installed in that Python?")
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            self.process.kill()
            raise UserError(f"benchmark worker {self.process.args[0]} answered {line.strip()[:80]!r}, not genforge's "
                            "JSON; is that Python's genforge one that has `genforge bench worker`?") from None
        return answer

    def request(self, verb: str, seconds: float, min_iters: int = 0) -> dict:
        self.process.stdin.write(f"{verb} {seconds} {min_iters}\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("quit 0 0\n")
            self.process.stdin.close()
            self.process.wait(timeout=30)


def serve_worker(target, backend_name: str, batch: int, threads: int | None, stdin, stdout) -> None:
    """The worker side: prepare once, then answer `warmup S 0`, `time S N` and `quit` lines with JSON."""
    spec = resolve_backends([backend_name])[backend_name]
    resolved = resolve_target(target)
    settings, _ = Settings(threads=threads).settled()
    call, first = prepare_timed(spec, resolved, batch, settings)
    stdout.write(json.dumps({"version": __version__, "first_call_s": first, "device": call.device,
                             "timing": call.timing,
                             "macs_per_image": call.macs_per_image}) + "\n")
    stdout.flush()
    for line in stdin:
        verb, seconds, min_iters = line.split()
        if verb == "quit":
            return
        if verb == "warmup":
            time_call(call, Settings(warmup_s=float(seconds), min_iters=0), duration_s=0.0)
            samples = []
        else:
            samples = time_call(call, Settings(warmup_s=0.0, min_iters=int(min_iters)), duration_s=float(seconds))
        stdout.write(json.dumps({"samples": samples}) + "\n")
        stdout.flush()


def run_ab_versions(target, python_a: str, python_b: str, backend_names, settings: Settings, rounds: int = 6,
                    progress=None) -> tuple[dict, dict]:
    """One target under two genforge installations (their Pythons), interleaved A/B/A/B."""
    settings, compute = settings.settled()  # both workers compute with the count decided here
    resolved = resolve_target(target)
    backends = [n for n, s in resolve_backends(backend_names).items()
                if resolved.kind in s.targets and not s.load()().skip_reason(resolved)]
    reports = {key: {"schema": SCHEMA, "created": time.time(), "environment": environment(compute),
                     "settings": {**settings.as_dict(), "ab_rounds": rounds, "python": python}, "rows": []}
               for key, python in (("a", python_a), ("b", python_b))}
    for name in backends:
        for batch in settings.batches:
            workers = {"a": Worker(python_a, resolved.path, name, batch, settings.threads)}
            try:
                workers["b"] = Worker(python_b, resolved.path, name, batch, settings.threads)
                if progress:  # after both workers answered: a worker that is not genforge's is the only line
                    progress(f"A/B versions · {name} · batch {batch}")
                samples = {"a": [], "b": []}
                for key in "ab":
                    workers[key].request("warmup", settings.warmup_s)
                for _ in range(rounds):
                    for key in "ab":
                        answer = workers[key].request("time", settings.duration_s / rounds,
                                                      max(1, settings.min_iters // rounds))
                        samples[key] += answer["samples"]
                for key in "ab":
                    hello = workers[key].hello
                    call = SimpleNamespace(device=hello["device"], macs_per_image=hello["macs_per_image"],
                                           timing=hello.get("timing", "host"))
                    row = make_row(resolved, name, batch, samples[key], call, hello["first_call_s"],
                                   settings.threads)
                    row.update(target="A/B", ab_target=f"{resolved.name} (genforge {hello['version']})")
                    reports[key]["rows"].append(row)
            finally:
                for worker in workers.values():
                    worker.close()
    return reports["a"], reports["b"]
