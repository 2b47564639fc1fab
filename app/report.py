"""The report of `genforge run`: one self-contained HTML page (pictures embedded) and its Markdown twin for CI
job summaries, with every number as in report.json and everything escaped."""

from __future__ import annotations

import base64
import html

from genforge.benchmarks.rows import COLUMNS, NOISY_CV, markdown_cell, row_cells

METRICS = {  # key: (human name, one-line explanation)
    "fd": ("FD", "Fréchet distance between generated and test images in genforge's own classifier features; "
                 "lower is better"),
    "fd_floor": ("FD floor", "the same distance between the dataset's train and test images: what a perfect "
                             "generator would score"),
    "fd_ceiling": ("FD ceiling", "the distance of uniform noise: what a generator that learnt nothing scores"),
    "fd_over_floor": ("FD / floor", "1 is as good as real data; the lower the better"),
    "kid": ("KID", "kernel distance in the same features (x1000), less biased than FD on few samples"),
    "kid_std": ("KID spread", "standard deviation of KID over its subsets"),
    "cond_acc": ("class accuracy", "share of samples the classifier assigns to the class they were asked for"),
    "classifier_test_accuracy": ("classifier accuracy", "the feature classifier's accuracy on the test split"),
    "n": ("samples", "generated images scored"),
    "neg_elbo": ("-ELBO", "test negative evidence lower bound, nats per image; lower is better"),
}


def fmt(value) -> str:
    """How numbers appear in the tables (tests compare the JSON through this)."""
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def gate_verdicts(report: dict) -> list[str]:
    """One line per export: its fidelity and, where a quality gate applies, its result against the threshold."""
    gate = report["pipeline"]["export"]["max_fd_increase"]
    lines = []
    for export in report["exports"]:
        line = f"{export['precision']}: PSNR {export['psnr_db']:.1f} dB against PyTorch"
        if export.get("fd_change") is not None:
            verdict = "passed" if export["fd_change"] <= gate else "failed"
            line += f", FD {export['fd_change']:+.1%} (gate {gate:.0%}): {verdict}"
        elif export.get("gate"):  # a restoration model's gate: its paired metric
            line += f", {export['gate']}: {'passed' if export['gate_passed'] else 'failed'}"
        lines.append(line)
    return lines


def best_speedup(rows: list[dict]) -> tuple[float, dict] | None:
    """The largest speed-up of any row over PyTorch eager at the same batch size."""
    torch_ms = {r["batch"]: r["stats"]["median_ms"] for r in rows if r["status"] == "ok" and r["backend"] == "torch"}
    best = None
    for row in rows:
        if row["status"] == "ok" and row["backend"] != "torch" and row["batch"] in torch_ms:
            ratio = torch_ms[row["batch"]] / row["stats"]["median_ms"]
            if best is None or ratio > best[0]:
                best = (ratio, row)
    return best


def verdict(report: dict) -> list[str]:
    train, quality = report["pipeline"]["train"], report["quality"]
    lines = [f"{train['model']} on {train['dataset']}, {report['train']['steps']} steps on {report['train']['device']}"]
    if isinstance(quality.get("fd_over_floor"), float):
        lines.append(f"quality: FD {quality['fd']:.4g} = {quality['fd_over_floor']:.2f}x the floor "
                     f"({quality['fd_floor']:.4g}, train vs test)")
    lines += gate_verdicts(report)
    best = best_speedup(report["bench"])
    if best:
        ratio, row = best
        lines.append(f"best speed-up over PyTorch eager: {ratio:.2f}x ({row['target']}, {row['backend']}, batch "
                     f"{row['batch']})")
    noisy = [r for r in report["bench"] if r["status"] == "ok" and r["stats"]["cv"] > NOISY_CV]
    if noisy:
        lines.append(f"{len(noisy)} benchmark row(s) noisy (CV over {NOISY_CV:.0%}): their medians are less certain "
                     "(a busy machine, or calls so short that timer and scheduler jitter show)")
    return lines


def summary_line(report: dict) -> str:
    return "; ".join(verdict(report))


def quality_rows(report: dict) -> list[list]:
    rows = [[METRICS.get(k, (k, ""))[0], v, METRICS.get(k, (k, ""))[1]]
            for k, v in report["quality"].items() if k != "skipped"]
    rows += [[name, "skipped", f"it {reason}"] for name, reason in report["quality"].get("skipped", {}).items()]
    return rows


def export_rows(report: dict) -> list[list]:
    gate = report["pipeline"]["export"]["max_fd_increase"]
    rows = []
    for e in report["exports"]:
        passed = e.get("gate_passed", None if e["fd_change"] is None else e["fd_change"] <= gate)
        change = f"{e['fd_change']:+.1%}" if e["fd_change"] is not None else e.get("gate") or "–"  # or PSNR
        rows.append([e["precision"], e["file"], e["size_mb"], e["psnr_db"], e["max_abs_error"], change,
                     "no gate" if passed is None else "passed" if passed else "failed"])
    return rows


EXPORT_COLUMNS = ["precision", "file", "size MB", "PSNR dB", "max abs error", "quality change", "gate"]


def environment_rows(env: dict) -> list[list]:
    threads = env.get("threads", {})
    rows = [["CPU", env["cpu"]["model"]], ["cores", env["cpu"]["cores"]], ["CPU flags", " ".join(env["cpu"]["flags"])],
            ["fp32 peak GFLOP/s", env["cpu"]["fp32_peak_gflops"]], ["GPU", env["gpu"]["name"] if env["gpu"] else None],
            ["threads", f"{threads.get('threads', threads.get('torch'))} ({threads.get('chosen', 'library default')})"],
            ["load average (1, 5, 15 min)", ", ".join(map(str, threads.get("load_average") or [])) or None]]
    return rows + [[name, version] for name, version in env["versions"].items()]


def _table(columns: list[str], rows: list[list], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _picture(name: str, data: bytes | None, caption: str) -> str:
    if not data:
        return ""
    source = "data:image/png;base64," + base64.b64encode(data).decode()
    return (f'<figure><img src="{source}" alt="{html.escape(name)}" title="{html.escape(name)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def render_html(report: dict, pictures: dict[str, bytes]) -> str:
    """The page; `pictures` maps samples.png, loss.png, precisions.png and speed.png to PNG bytes."""
    train = report["pipeline"]["train"]
    title = f"genforge report: {train['model']} on {train['dataset']}"
    verdict_items = "".join(f"<li>{html.escape(line)}</li>" for line in verdict(report))
    config_rows = [[k, v if not isinstance(v, dict) else ", ".join(f"{a}={b}" for a, b in v.items())]
                   for k, v in report.get("train_config", {}).items()]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th{{background:#f3f3f3}}figure{{display:inline-block;margin:4px;vertical-align:top}}
img{{max-width:100%}}#quality-table td:last-child{{text-align:left}}
#verdict{{background:#f5f9ff;border:1px solid #bcd;padding:.5em 1.5em}}</style></head>
<body><h1>{html.escape(title)}</h1>
<section id="verdict"><h2>Verdict</h2><ul>{verdict_items}</ul></section>
<h2 id="samples">Samples</h2>
{_picture("precisions.png", pictures.get("precisions.png"), "every precision from the same noise")}
{_picture("samples.png", pictures.get("samples.png"), "training samples (EMA weights when on)")}
<h2 id="quality">Quality</h2>{_table(["metric", "value", "what it is"], quality_rows(report), "quality-table")}
<h2 id="exports">Exports</h2>{_table(EXPORT_COLUMNS, export_rows(report), "exports-table")}
<h2 id="bench">Speed</h2>
{_picture("speed.png", pictures.get("speed.png"), "median latency and throughput against batch, p10-p90 bands")}
{_table(COLUMNS, [row_cells(r) for r in report["bench"]], "bench-table")}
<p>Rows marked noisy had a coefficient of variation over {NOISY_CV:.0%}. CPU rows are timed host to host;
GPU rows with CUDA events on device-resident data (column "timing"), end to end in the last column.</p>
{_history_html(report, pictures)}
<h2 id="training">Training</h2>
{_picture("loss.png", pictures.get("loss.png"), "losses, training scalars and throughput")}
{_table(["option", "value"], config_rows, "training-table")}
<h2 id="environment">Environment</h2>{_table(["item", "value"], environment_rows(report["environment"]),
                                                "environment-table")}
<h2>Timings</h2>{_table(["step", "seconds"], [[k, v] for k, v in report["timings_s"].items()], "timings-table")}
<p>Numbers as in report.json; raw benchmark samples in bench.json.</p>
</body></html>
"""


def _history_html(report: dict, pictures: dict[str, bytes]) -> str:
    """The speed history section, when the pipeline recorded its benchmark in a store ([bench] store)."""
    history = report.get("history")
    if not history:
        return ""
    steps = "".join(f"<li>{html.escape(line)}</li>" for line in history["steps"]) or "<li>no step in any row</li>"
    plots = "".join(_picture(s["plot"], pictures.get(s["plot"]), f"{s['name']}: {s['commits']} commit(s)")
                    for s in history["series"])
    return (f'<h2 id="history">Speed history</h2><p>{html.escape(history["line"])}</p>'
            f"<ul>{steps}</ul>{plots}")


def _markdown_table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(markdown_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(markdown_cell(fmt(v)) for v in row) + " |" for row in rows])


def _history_markdown(report: dict) -> list[str]:
    history = report.get("history")
    if not history:
        return []
    lines = ["### Speed history", "", markdown_cell(history["line"]), ""]
    return lines + [f"- {markdown_cell(line)}" for line in history["steps"] or ["no step in any row"]] + [""]


def render_markdown(report: dict) -> str:
    """The Markdown twin (for a CI job summary): the verdict and every table, no pictures."""
    train = report["pipeline"]["train"]
    parts = [f"## genforge report: {markdown_cell(train['model'])} on {markdown_cell(train['dataset'])}", "",
             *[f"- {markdown_cell(line)}" for line in verdict(report)], "", "### Quality", "",
             _markdown_table(["metric", "value", "what it is"], quality_rows(report)), "", "### Exports", "",
             _markdown_table(EXPORT_COLUMNS, export_rows(report)), "", "### Speed", "",
             _markdown_table(COLUMNS, [row_cells(r) for r in report["bench"]]), "",
             *_history_markdown(report), "### Environment", "",
             _markdown_table(["item", "value"], environment_rows(report["environment"]))]
    return "\n".join(parts) + "\n"


def render_history_html(history: list, pictures: dict[str, bytes]) -> str:
    """`bench history --plots`: a standalone page, the steps, then every series' plot, grouped by machine."""
    from genforge.benchmarks.history import step_line
    from genforge.benchmarks.store import describe_machine

    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>genforge benchmark history</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em}"
             "li{margin:.3em 0}</style></head><body><h1>genforge benchmark history</h1>",
             "<section id='history'><h2>Steps</h2><ul>"]
    parts += [f"<li>{html.escape(step_line(s, step))}</li>" for s in history for step in s.steps] or [
        "<li>no step in any series</li>"]
    parts.append("</ul>")
    for fingerprint in dict.fromkeys(s.fingerprint for s in history):
        machine = next(s.machine for s in history if s.fingerprint == fingerprint)
        parts.append(f"<h2>Machine {fingerprint}</h2><p>{html.escape(describe_machine(machine))}</p>")
        parts += [_picture(s.file_name, pictures.get(s.file_name), s.name) for s in history
                  if s.fingerprint == fingerprint]
    return "\n".join(parts + ["</section></body></html>"]) + "\n"
