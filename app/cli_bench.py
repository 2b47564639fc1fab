"""`genforge bench`: run, compare, ab, suite (and the worker behind `ab --python-a`).

The benchmark modules import torch, so they are imported inside the commands (see app/cli.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from genforge.app.console import print_table
from genforge.app.params import PROBABILITY, FiniteRange, OutputDir, OutputFile, threads_option
from genforge.core.errors import UserError
from genforge.core.files import check_distinct_outputs, read_json, write_atomic, write_json
from genforge.core.limits import MAX_BATCH, MAX_SECONDS
from genforge.core.precision import REFERENCE, runtime_precisions


class DefaultRunGroup(click.Group):
    """`genforge bench TARGET...` is `genforge bench run TARGET...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx, formatter):
        """The group's help, then the options of the bare form `genforge bench TARGET...` (bench run)."""
        super().format_help(ctx, formatter)
        run = self.commands["run"]
        with formatter.section("Options of `genforge bench TARGET...` (the same as `bench run`)"):
            formatter.write_dl([p.get_help_record(ctx) for p in run.get_params(ctx) if p.get_help_record(ctx)])


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"--{what} must be comma-separated numbers like 1,8,64, not {text!r}") from None
    if not values or min(values) < 1 or max(values) > MAX_BATCH:
        raise UserError(f"--{what} needs positive numbers up to {MAX_BATCH}, like 1,8,64")
    return values


def _fraction(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UserError(f"--min-effect must look like 10% or 0.1, not {text!r}") from None
    if not 0 <= value < 10:  # also refuses nan and inf
        raise UserError(f"--min-effect must be 0% or more and below 1000%, like 10%, not {text!r}")
    return value


def bench_options(function):
    options = [
        click.option("--backend", "backends",
                     help="Comma-separated backends (default: every one that fits, except torch-compile, which "
                          "compiles for minutes first and runs only when named)."),
        click.option("--batch", "batches", default="1,8,64", show_default=True, help="Batch sizes."),
        click.option("--warmup-s", default=0.5, show_default=True, type=FiniteRange(0, MAX_SECONDS)),
        click.option("--min-iters", default=10, show_default=True, type=click.IntRange(2, 1_000_000)),
        click.option("--duration-s", default=2.0, show_default=True,
                     type=FiniteRange(0, MAX_SECONDS, min_open=True), help="Timed seconds per row."),
        threads_option,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _settings(batches, warmup_s, min_iters, duration_s, threads):
    from genforge.benchmarks.measure import Settings

    return Settings.checked("the options", lambda key: f"--{key.replace('_', '-')} ",
                            batches=_int_list(batches, "batch"), warmup_s=warmup_s, min_iters=min_iters,
                            duration_s=duration_s, threads=threads)


def _backend_names(backends):
    return [b.strip() for b in backends.split(",") if b.strip()] if backends else None


def record_report(report: dict, store, commit: str | None, branch: str | None) -> None:
    from genforge.benchmarks.store import record_report as record

    click.echo(record(report, store, commit, branch).line)


def store_option(function):
    return click.option("--store", type=str, metavar="PATH_OR_URL",
                        help="Results store: a SQLite file or a SQLAlchemy URL such as "
                             "postgresql+psycopg://user@host/db (default: $GENFORGE_BENCH_STORE, else "
                             "bench-history.sqlite in the genforge cache).")(function)


def print_report(report: dict) -> None:
    from genforge.benchmarks.rows import COLUMNS, row_cells

    print_table("benchmark", COLUMNS, [row_cells(r) for r in report["rows"]])


@click.group(cls=DefaultRunGroup)
def bench():
    """Benchmark run directories, .onnx files and engines on every backend (`bench TARGET...`)."""


@bench.command("run")
@click.argument("targets", nargs=-1, required=True, type=click.Path(path_type=Path))
@bench_options
@click.option("--json", "json_out", type=OutputFile("report file"), help="Write the report (raw samples) as JSON.")
@click.option("--markdown", type=OutputFile("Markdown file"), help="Write a Markdown table (CI job summaries).")
@click.option("--precision", default=REFERENCE, show_default=True, type=click.Choice(runtime_precisions()),
              help="For run directories: bf16 times PyTorch in bfloat16 (the torch-bf16 backend; CPUs with AVX-512 "
                   "BF16 or AMX, or CUDA). Exported files carry their own precision.")
@click.option("--record", "record", is_flag=True, help="Also record the report in the results store (--store).")
@store_option
@click.option("--commit", help="With --record: the commit (default: $GITHUB_SHA, $CI_COMMIT_SHA or git HEAD).")
@click.option("--branch", help="With --record: the branch (default: from CI or git).")
def bench_run(targets, backends, batches, warmup_s, min_iters, duration_s, threads, json_out, markdown, precision,
              record, store, commit, branch):
    """Time TARGETS (run directories, .onnx, .engine) on each backend and batch size."""
    from genforge.app.api import bench as bench_targets
    from genforge.benchmarks.rows import markdown_table

    check_distinct_outputs({"--json": json_out, "--markdown": markdown},
                           {f"target {i + 1}": t for i, t in enumerate(targets)})
    if record:
        from genforge.benchmarks.store import commit_and_branch

        commit, branch = commit_and_branch(commit, branch)  # a missing commit is refused before any timing
    elif store or commit or branch:
        raise UserError("--store, --commit and --branch go with --record")
    report = bench_targets(list(targets), _backend_names(backends), _int_list(batches, "batch"), warmup_s, min_iters,
                           duration_s, threads, precision,
                           progress=lambda text: click.echo(f"  timing {text}", err=True))
    print_report(report)
    if json_out:
        write_json(json_out, report, indent=1)
        click.echo(f"wrote {json_out}")
    if markdown:
        write_atomic(markdown, markdown_table(report) + "\n")
        click.echo(f"wrote {markdown}")
    if record:
        record_report(report, store, commit, branch)


@bench.command("record")
@click.argument("report_file", type=click.Path(path_type=Path))
@store_option
@click.option("--commit", help="The commit the report measured (default: $GITHUB_SHA, $CI_COMMIT_SHA or git HEAD).")
@click.option("--branch", help="Its branch (default: $GITHUB_HEAD_REF, $GITHUB_REF_NAME, $CI_COMMIT_REF_NAME or git).")
def bench_record(report_file, store, commit, branch):
    """Record a report (`genforge bench --json`) with its raw samples in the results store, under a commit."""
    record_report(_read_report(report_file), store, commit, branch)


@bench.command("history")
@store_option
@click.option("--branch", help="Only records of this branch (default: every branch).")
@click.option("--machine", help="Only this machine fingerprint (or its first characters).")
@click.option("--min-effect", default="5%", show_default=True, help="Smallest step that counts.")
@click.option("--alpha", default=0.01, show_default=True, type=PROBABILITY,
              help="Chance of a false step in a flat history.")
@click.option("--plots", type=OutputDir("plot folder"),
              help="Write one PNG per series here (and index.html, every plot and step on one page).")
@click.option("--summary", type=OutputFile("Markdown summary"),
              help="Write a Markdown summary for a pull-request comment or $GITHUB_STEP_SUMMARY.")
@click.option("--plot-url", help="Link the summary's plots under this URL (where CI publishes --plots).")
@click.option("--fail-recent", type=click.IntRange(1), metavar="N",
              help="Exit 1 if a slower step began within the newest N commits of a series.")
def bench_history(store, branch, machine, min_effect, alpha, plots, summary, plot_url, fail_recent):
    """Each row's median and spread over commits, and the commits where a step occurred.

    \b
    Exit status: 0, or 1 with --fail-recent when a recent slowdown was found; 2 on bad input.
    """
    from genforge.app.charts import history_chart
    from genforge.app.report import render_history_html
    from genforge.benchmarks import history as h
    from genforge.benchmarks.store import describe_machine, open_store

    with open_store(store, create=False) as opened:
        history = h.build_history(opened, branch, machine, _fraction(min_effect), alpha)
    if not history:
        raise UserError(f"the store holds no benchmark rows{' for that branch or machine' if branch or machine else ''}"
                        "; record some with `genforge bench --record`")
    table = []
    for series in history:
        last = series.points[-1]
        table.append([series.fingerprint, series.target, series.backend, series.batch, len(series.points),
                      last.commit[:10], f"{last.median_ms:.3f}", f"{last.p25_ms:.3f}-{last.p75_ms:.3f}",
                      "; ".join(f"{s.change:+.1%} at {series.points[s.index].commit[:10]} ({s.confidence:.1%})"
                                for s in series.steps) or "none"])
    print_table("benchmark history", ["machine", "target", "backend", "batch", "commits", "newest", "median ms",
                                      "p25-p75 ms", "steps (confidence)"], table)
    for fingerprint in dict.fromkeys(s.fingerprint for s in history):
        machine_ = next(s.machine for s in history if s.fingerprint == fingerprint)
        click.echo(f"machine {fingerprint}: {describe_machine(machine_)}")
    for series in history:
        for step in series.steps:
            click.echo(h.step_line(series, step))
    if plots:
        pictures = {s.file_name: history_chart(s) for s in history}
        for name, data in pictures.items():
            write_atomic(plots / name, data)
        write_atomic(plots / "index.html", render_history_html(history, pictures))
        click.echo(f"wrote {len(pictures)} plot(s) and index.html to {plots}")
    if summary:
        write_atomic(summary, h.history_markdown(history, plot_url, fail_recent))
        click.echo(f"wrote {summary}")
    if fail_recent:
        slowdowns = h.recent_slowdowns(history, fail_recent)
        if slowdowns:
            click.echo(f"regression: {len(slowdowns)} slower step(s) within the newest {fail_recent} commits",
                       err=True)
            sys.exit(1)


def _read_report(path: Path) -> dict:
    from genforge.benchmarks.measure import check_report

    report = read_json(path, "benchmark report", "pass a report written by `genforge bench --json`")
    check_report(report, path)
    return report


def _print_comparison(rows) -> bool:
    table = [[r["target"], r["backend"], r["batch"], f"{r['base_median_ms']:.3f}", f"{r['new_median_ms']:.3f}",
              f"{r['ratio']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]", f"{r['p_slower']:.2g}", r["verdict"],
              r.get("reruns", 0)] for r in rows]
    print_table("comparison (new / base)", ["target", "backend", "batch", "base ms", "new ms", "ratio [95% CI]",
                                            "p(slower)", "verdict", "reruns"], table)
    slower = [r for r in rows if r["verdict"] == "slower"]
    if slower:
        click.echo(f"regression: {len(slower)} row(s) slower beyond the minimum effect", err=True)
    return bool(slower)


@bench.command("compare")
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--min-effect", default="10%", show_default=True, help="Smallest slowdown that counts.")
@click.option("--alpha", default=0.01, show_default=True, type=PROBABILITY, help="Significance level (Mann-Whitney U).")
@click.option("--confirm", "confirm", type=click.IntRange(0, 10), default=0, is_flag=False, flag_value=1,
              metavar="[N]", help="Rerun NEW's targets for each slower row (N times, 1 if bare) and fail only if "
                                  "every rerun is slower too.")
@click.option("--summary", type=OutputFile("Markdown summary"),
              help="Write a Markdown summary for a pull-request comment or $GITHUB_STEP_SUMMARY.")
def bench_compare(base, new, min_effect, alpha, confirm, summary):
    """Compare two reports row by row; exit 1 if a row is significantly slower by more than --min-effect.

    \b
    Exit status: 0 no (confirmed) regression; 1 a row slower beyond --min-effect at --alpha; 2 bad input.
    """
    from genforge.benchmarks.confirm import confirm_regressions, rerun_reports
    from genforge.benchmarks.measure import compare_reports
    from genforge.benchmarks.store import describe_machine, fingerprint_of, machine_of

    effect = _fraction(min_effect)
    check_distinct_outputs({"--summary": summary}, {"BASE": base, "NEW": new})
    base_report, new_report = _read_report(base), _read_report(new)
    rows = compare_reports(base_report, new_report, effect, alpha)
    machines = [machine_of(r["environment"]) for r in (base_report, new_report)]
    different = fingerprint_of(machines[0]) != fingerprint_of(machines[1])
    if different:
        click.echo(f"warning: BASE and NEW come from different machines ({fingerprint_of(machines[0])}: "
                   f"{describe_machine(machines[0])} | {fingerprint_of(machines[1])}: {describe_machine(machines[1])});"
                   " a difference may be the machine's, not the code's", err=True)
    if "ab_rounds" not in new_report.get("settings", {}):
        click.echo("note: these reports were timed one after the other; on a noisy machine drift between them can "
                   "look like a change. `genforge bench ab` times both interleaved.", err=True)
    if confirm:
        progress = lambda text: click.echo(f"  rerunning {text}", err=True)  # noqa: E731
        rerun = rerun_reports(base_report, new_report, progress)
        rows = confirm_regressions(base_report, new_report, rows, rerun, confirm, effect, alpha)
    else:
        for row in rows:
            row["reruns"] = 0
    regressed = _print_comparison(rows)
    if summary:
        from genforge.benchmarks.rows import comparison_markdown

        write_atomic(summary, comparison_markdown(rows, different, fingerprint_of(machines[1])))
        click.echo(f"wrote {summary}")
    if regressed:
        sys.exit(1)


@bench.command("ab")
@click.argument("target_a", type=click.Path(path_type=Path))
@click.argument("target_b", required=False, type=click.Path(path_type=Path))
@bench_options
@click.option("--python-a", help="Python of the baseline genforge install (compare two genforge versions).")
@click.option("--python-b", help="Python of the candidate genforge install (default: this one).")
@click.option("--rounds", default=6, show_default=True, type=click.IntRange(min=2), help="A/B alternations per row.")
@click.option("--min-effect", default="10%", show_default=True)
@click.option("--alpha", default=0.01, show_default=True, type=PROBABILITY)
@click.option("--json", "json_out", type=OutputFile("report file"), help="Write both reports and the comparison.")
def bench_ab(target_a, target_b, backends, batches, warmup_s, min_iters, duration_s, threads, python_a, python_b,
             rounds, min_effect, alpha, json_out):
    """Time A and B interleaved (A/B/A/B...) in one job; exit 1 if B is significantly slower than A.

    \b
    Two targets:          genforge bench ab old.onnx new.onnx
    Two genforge versions: genforge bench ab model.onnx --python-a /opt/genforge-main/bin/python
    """
    from genforge.benchmarks.measure import compare_reports, run_ab, run_ab_versions

    check_distinct_outputs({"--json": json_out}, {"target A": target_a, "target B": target_b})
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
        write_json(json_out, {"a": a, "b": b, "comparison": rows}, indent=1)
    if _print_comparison(rows):
        sys.exit(1)


@bench.command("worker", hidden=True)
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--backend", required=True)
@click.option("--batch", required=True, type=int)
@threads_option
def bench_worker(target, backend, batch, threads):
    """Serve timing requests on stdin for `bench ab --python-a/--python-b` (internal)."""
    from genforge.benchmarks.measure import serve_worker

    serve_worker(target, backend, batch, threads, sys.stdin, sys.stdout)


@bench.command("suite")
@click.argument("suite_file", required=False, type=click.Path(path_type=Path))
@click.option("--out", default="bench-suite", show_default=True, type=OutputDir("suite folder"))
@click.option("--work", type=click.Path(path_type=Path), help="Where trained generators are kept and reused.")
@click.option("--smoke", is_flag=True, help="Seconds-long version (2 training steps, short timings).")
@click.option("--baseline", type=click.Path(path_type=Path), help="Compare against this stored suite.json.")
@click.option("--min-effect", default="10%", show_default=True)
@click.option("--alpha", default=0.01, show_default=True, type=PROBABILITY)
def bench_suite(suite_file, out, work, smoke, baseline, min_effect, alpha):
    """Run the benchmark suite (default: the standard suite shipped with genforge)."""
    from genforge.app.suite import run_suite
    from genforge.benchmarks.measure import compare_reports

    report = run_suite(suite_file, out, work, smoke, echo=lambda text: click.echo(text, err=True))
    print_report(report)
    click.echo(f"wrote {out / 'suite.json'} and {out / 'suite.md'}")
    if baseline and _print_comparison(compare_reports(_read_report(baseline), report, _fraction(min_effect), alpha)):
        sys.exit(1)
