"""A store's history: one series per (machine, target, backend, batch), its steps, plots and summaries.

Series never mix machines: each machine fingerprint has its own, and a machine that changed (a new CPU,
another torch) starts a new series rather than a false step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from genforge.benchmarks.changepoints import Step, find_steps
from genforge.benchmarks.rows import MAX_SUMMARY_ROWS, markdown_cell
from genforge.benchmarks.store import BenchStore, describe_machine


@dataclass
class Point:
    commit: str
    recorded_at: float
    median_ms: float
    p25_ms: float
    p75_ms: float
    runs: int  # records of this commit pooled into the point


@dataclass
class Series:
    fingerprint: str
    machine: dict
    target: str
    backend: str
    batch: int | None
    points: list[Point]
    steps: list[Step] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.target} · {self.backend} · batch {self.batch}"

    @property
    def file_name(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"{self.target}-{self.backend}-b{self.batch}").strip("-")
        return f"history-{self.fingerprint}-{slug}.png"


def build_history(store: BenchStore, branch: str | None = None, fingerprint: str | None = None,
                  min_effect: float = 0.05, alpha: float = 0.01) -> list[Series]:
    """Every series in the store (optionally one branch, one machine), oldest commit first, with its steps.

    A commit's records are pooled: its point is the median of all their samples, placed at its first record."""
    records = store.records(branch, fingerprint)
    rows = store.rows([r.id for r in records])
    grouped: dict[tuple, dict[str, list]] = {}
    machines = {}
    for record in records:
        machines[record.fingerprint] = record.machine
        for row in rows[record.id]:
            key = (record.fingerprint, row["target"], row["backend"], row["batch"])
            grouped.setdefault(key, {}).setdefault(record.commit, []).append((record.recorded_at, row["samples_ms"]))
    out = []
    for (print_, target, backend, batch), commits in grouped.items():
        points = []
        for commit, runs in commits.items():
            samples = np.concatenate([np.asarray(s, dtype=np.float64) for _, s in runs])
            p25, median, p75 = np.percentile(samples, [25, 50, 75])
            points.append(Point(commit, min(t for t, _ in runs), float(median), float(p25), float(p75), len(runs)))
        points.sort(key=lambda p: p.recorded_at)
        series = Series(print_, machines[print_], target, backend, batch, points)
        if len(points) >= 4:
            series.steps = find_steps([p.median_ms for p in points], min_effect, alpha)
        out.append(series)
    return sorted(out, key=lambda s: (s.fingerprint, s.target, s.backend, s.batch or 0))


def step_line(series: Series, step: Step) -> str:
    points = series.points
    commit = points[step.index].commit
    where = (f" (it may have begun at any commit from {points[step.first_possible].commit[:10]} to "
             f"{points[step.last_possible].commit[:10]})" if step.first_possible != step.last_possible else "")
    word = "slower" if step.change > 0 else "faster"
    return (f"{series.name} [{series.fingerprint}]: {abs(step.change):.1%} {word} from commit {commit[:10]} "
            f"({step.before_ms:.3f} -> {step.after_ms:.3f} ms, confidence {step.confidence:.1%}){where}")


def recent_slowdowns(history: list[Series], recent: int) -> list[tuple[Series, Step]]:
    """Slower steps that began within the newest `recent` commits of their series."""
    return [(s, step) for s in history for step in s.steps
            if step.change > 0 and step.index >= len(s.points) - recent]


def history_markdown(history: list[Series], plot_url: str | None = None, recent: int | None = None) -> str:
    """A job summary or pull-request comment: the steps found (newest first), linked to their plots."""
    steps = [(s, step) for s in history for step in s.steps]
    if recent is not None:
        steps = [(s, step) for s, step in steps if step.index >= len(s.points) - recent]
    steps.sort(key=lambda item: item[0].points[item[1].index].recorded_at, reverse=True)
    machines = {s.fingerprint: s.machine for s in history}
    scope = f" in the newest {recent} commits" if recent is not None else ""
    lines = [f"### genforge benchmark history: {len(steps)} step(s){scope} in {len(history)} series", ""]
    if steps:
        lines += ["| series | machine | commit | change | before ms | after ms | confidence | plot |",
                  "|---|---|---|---|---|---|---|---|"]
        for series, step in steps[:MAX_SUMMARY_ROWS]:
            plot = f"[plot]({plot_url.rstrip('/')}/{series.file_name})" if plot_url else markdown_cell(series.file_name)
            lines.append(f"| {markdown_cell(series.name)} | {series.fingerprint} | "
                         f"{markdown_cell(series.points[step.index].commit[:10])} | "
                         f"{'slower' if step.change > 0 else 'faster'} {abs(step.change):.1%} | "
                         f"{step.before_ms:.3f} | {step.after_ms:.3f} | {step.confidence:.1%} | {plot} |")
        if len(steps) > MAX_SUMMARY_ROWS:
            lines.append(f"\n...and {len(steps) - MAX_SUMMARY_ROWS} more (see `genforge bench history`).")
    lines += ["", "Machines (series are never mixed across them):", ""]
    lines += [f"- `{fp}`: {markdown_cell(describe_machine(m))}" for fp, m in machines.items()]
    return "\n".join(lines) + "\n"
