"""The HTML page of `genforge run`: every number as in report.json, everything escaped."""

from __future__ import annotations

import html

from genforge.benchmarks.rows import COLUMNS, row_cells


def fmt(value) -> str:
    """How numbers appear in the HTML tables (tests compare the JSON through this)."""
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)



def _table(columns: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict) -> str:
    quality = _table(["metric", "value"], [[k, v] for k, v in report["quality"].items() if k != "skipped"])
    exports = _table(["precision", "file", "size MB", "PSNR dB", "max abs error", "FD change"],
                     [[e["precision"], e["file"], e["size_mb"], e["psnr_db"], e["max_abs_error"], e["fd_change"]]
                      for e in report["exports"]])
    bench = _table(COLUMNS, [row_cells(r) for r in report["bench"]])
    env = report["environment"]
    env_rows = [["CPU", env["cpu"]["model"]], ["cores", env["cpu"]["cores"]],
                ["CPU flags", " ".join(env["cpu"]["flags"])], ["fp32 peak GFLOP/s", env["cpu"]["fp32_peak_gflops"]],
                ["GPU", env["gpu"]["name"] if env["gpu"] else None]]
    env_rows += [[name, version] for name, version in env["versions"].items()]
    timings = _table(["step", "seconds"], [[k, v] for k, v in report["timings_s"].items()])
    train = report["pipeline"]["train"]
    title = f"genforge report: {train['model']} on {train['dataset']}"
    pictures = "".join(f'<img src="{name}" alt="{name[:-4]}">' for name in report["images"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th{{background:#f3f3f3}}img{{max-width:48%;vertical-align:top;margin:4px}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{report['train']['steps']} training steps on {html.escape(report['train']['device'])}.</p>
<h2>Samples and loss</h2>{pictures}
<h2 id="quality">Quality</h2>{quality}
<h2 id="exports">Exports</h2>{exports}
<h2 id="bench">Benchmark</h2>{bench}
<h2 id="environment">Environment</h2>{_table(["item", "value"], env_rows)}
<h2>Timings</h2>{timings}
<p>Numbers as in report.json; raw benchmark samples in bench.json.</p>
</body></html>
"""
