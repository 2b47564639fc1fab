"""The report's pictures, as PNG bytes: latency and throughput against batch, and sample grids side by side."""

from __future__ import annotations

import io

import numpy as np


def _pyplot():
    import matplotlib  # lazy: about 0.5 s to import; only reports draw charts

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: see above

    return plt


def png_of(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    _pyplot().close(fig)
    return buffer.getvalue()


def speed_chart(rows: list[dict]) -> bytes | None:
    """Median latency (ms per call) and throughput (img/s) against batch, one line per target and backend, with
    the p10-p90 band of the raw samples. Rows need samples_ms (bench.json keeps them)."""
    series: dict[str, list[tuple[int, np.ndarray]]] = {}
    for row in rows:
        if row.get("status") == "ok" and row.get("samples_ms"):
            series.setdefault(f"{row['target']} · {row['backend']}", []).append(
                (row["batch"], np.asarray(row["samples_ms"], dtype=float)))
    if not series:
        return None
    plt = _pyplot()
    fig, (latency, throughput) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for name, points in series.items():
        points.sort(key=lambda p: p[0])
        batches = np.array([b for b, _ in points], dtype=float)
        p10, median, p90 = (np.array([np.percentile(s, q) for _, s in points]) for q in (10, 50, 90))
        line, = latency.plot(batches, median, marker="o", label=name)
        latency.fill_between(batches, p10, p90, color=line.get_color(), alpha=0.2)
        throughput.plot(batches, batches / (median / 1e3), marker="o", color=line.get_color())
        throughput.fill_between(batches, batches / (p90 / 1e3), batches / (p10 / 1e3), color=line.get_color(),
                                alpha=0.2)
    for axis, title, unit in ((latency, "latency per call (median, p10-p90 band)", "ms"),
                              (throughput, "throughput (median, p10-p90 band)", "images/s")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch")
        axis.set_ylabel(unit)
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3, which="both")
    latency.legend(fontsize=7)
    fig.tight_layout()
    return png_of(fig)


def grids_side_by_side(grids: dict[str, np.ndarray], class_names=None, labels=None) -> bytes:
    """Sample grids (NCHW in [-1, 1]) of several precisions from the same noise, each titled, in one picture."""
    import torch

    from genforge.core.images import grid_image

    plt = _pyplot()
    nrow = len(class_names) if class_names and len(class_names) <= 16 else None
    pictures = {name: grid_image(torch.from_numpy(images), nrow=nrow) for name, images in grids.items()}
    first = next(iter(pictures.values()))
    width = 3.6
    fig, axes = plt.subplots(1, len(grids), figsize=(width * len(grids), width * first.height / first.width + 0.7),
                             dpi=110, squeeze=False)
    for axis, (name, picture) in zip(axes[0], pictures.items()):
        axis.imshow(picture, interpolation="nearest")
        axis.set_title(name, fontsize=10)
        axis.axis("off")
    fig.suptitle("the same noise" + (" and labels (one class per column)" if labels is not None else ""),
                 fontsize=10)
    fig.tight_layout()
    return png_of(fig)


def history_chart(series) -> bytes:
    """One series of benchmarks/history.py: median and p25-p75 per commit, its steps marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    x = np.arange(len(series.points))
    median = np.array([p.median_ms for p in series.points])
    ax.fill_between(x, [p.p25_ms for p in series.points], [p.p75_ms for p in series.points], alpha=0.25,
                    label="p25-p75 of the samples")
    ax.plot(x, median, marker="o", markersize=3, label="median")
    for step in series.steps:
        ax.axvline(step.index - 0.5, color="tab:red" if step.change > 0 else "tab:green", linestyle="--")
        ax.annotate(f"{step.change:+.1%}\nconf. {step.confidence:.1%}", (step.index - 0.4, median.max()), fontsize=8,
                    va="top")
    ticks = x if len(x) <= 20 else x[:: max(1, len(x) // 20)]
    ax.set_xticks(ticks, [series.points[i].commit[:7] for i in ticks], rotation=60, fontsize=7)
    ax.set_ylabel("ms per call")
    ax.set_title(f"{series.name} on {series.fingerprint}", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return png_of(fig)
