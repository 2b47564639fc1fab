"""How a benchmark row reads: one layout for the console table, Markdown and the HTML report."""

from __future__ import annotations

import html

NOISY_CV = 0.20  # a row whose coefficient of variation exceeds this is flagged: the machine was busy or throttled
COLUMNS = ["target", "backend", "batch", "median ms", "p90 ms", "p99 ms", "CV", "img/s", "GFLOP/s", "% peak",
           "first call s", "timing", "end-to-end ms"]


def row_cells(row: dict) -> list[str]:
    """The cells of one report row under COLUMNS (a skipped or failed row says why)."""
    head = [str(row["target"]), str(row["backend"]), str(row["batch"] or "–")]
    if row["status"] != "ok":
        return head + [f"{row['status']}: {row.get('reason', '')}"] + [""] * (len(COLUMNS) - 4)
    stats = row["stats"]
    return head + [f"{stats['median_ms']:.2f}", f"{stats['p90_ms']:.2f}", f"{stats['p99_ms']:.2f}",
                   f"{stats['cv']:.1%}" + (" noisy" if stats["cv"] > NOISY_CV else ""),
                   f"{row['throughput_img_s']:.0f}",
                   f"{row['gflops']:.1f}" if row.get("gflops") else "–",
                   f"{100 * row['peak_share']:.0f}%" if row.get("peak_share") else "–",
                   f"{row['first_call_s']:.2f}", row.get("timing", "host"),
                   f"{row['end_to_end_ms']:.2f}" if row.get("end_to_end_ms") else "–"]


def environment_line(env: dict) -> str:
    cpu, gpu = env["cpu"], env["gpu"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    return (f"CPU: {cpu['model']} ({cpu['cores']} cores; {', '.join(cpu['flags'])}); "
            f"GPU: {gpu['name'] if gpu else 'none'}; {versions}")


def markdown_cell(text: str) -> str:
    """A cell safe in a Markdown table: HTML escaped, one line, and Markdown's own syntax (pipes, links, images,
    emphasis, code) escaped so a target's name cannot become a link or an image."""
    text = html.escape(" ".join(str(text).split()), quote=False)  # quotes are plain text in Markdown
    return "".join("\\" + ch if ch in MARKDOWN_SPECIALS else ch for ch in text)


MARKDOWN_SPECIALS = set("\\`*_{}[]()!|<>#")


def markdown_table(report: dict) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(markdown_cell(c) for c in row_cells(r)) + " |" for r in report["rows"]]
    return "\n".join(lines + ["", markdown_cell(environment_line(report["environment"]))])


MAX_SUMMARY_ROWS = 40  # a pull-request comment stays short


def comparison_markdown(rows: list[dict], different_machines: bool, fingerprint: str) -> str:
    """`bench compare --summary`: the regressions and improvements as a table, the unchanged counted."""
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("slower", "faster", "unconfirmed", "same")}
    changed = sorted((r for r in rows if r["verdict"] != "same"), key=lambda r: -r["ratio"])
    lines = [f"### genforge bench compare: {counts['slower']} slower, {counts['faster']} faster, "
             f"{counts['unconfirmed']} unconfirmed, {counts['same']} unchanged (machine {fingerprint})", ""]
    if different_machines:
        lines += ["**Warning: BASE and NEW come from different machines; a difference may be the machine's.**", ""]
    if changed:
        lines += ["| target | backend | batch | base ms | new ms | ratio [95% CI] | verdict | reruns |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {markdown_cell(r['target'])} | {markdown_cell(r['backend'])} | {r['batch']} | "
                  f"{r['base_median_ms']:.3f} | {r['new_median_ms']:.3f} | "
                  f"{r['ratio']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['verdict']} | {r.get('reruns', 0)} |"
                  for r in changed[:MAX_SUMMARY_ROWS]]
        if len(changed) > MAX_SUMMARY_ROWS:
            lines.append(f"\n...and {len(changed) - MAX_SUMMARY_ROWS} more (see the job's log).")
    lines += ["", "unconfirmed: slower in the first run, not in a rerun (`--confirm`); exit status 1 only for slower."]
    return "\n".join(lines) + "\n"
