"""What the Python API returns, made to read well: a line in a REPL, a table or a picture in Jupyter.

Each is a plain container (the numbers stay reachable as attributes or dict items) with __repr__ for the
REPL and _repr_html_ / _repr_png_ for notebooks.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def grid_png(images: np.ndarray, captions=None, nrow: int | None = None) -> bytes:
    """A PNG of images (N, C, H, W) in [-1, 1], as genforge's sample grids are drawn."""
    import torch

    from genforge.core.images import grid_image

    buffer = io.BytesIO()
    grid_image(torch.from_numpy(np.ascontiguousarray(images)), nrow=nrow, captions=captions).save(buffer, "PNG")
    return buffer.getvalue()


def inline_png(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def html_table(rows: list[list], header: list[str]) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class Samples:
    """Generated images (N, C, H, W) float32 in [-1, 1], with the labels asked for (conditional models)."""

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: list = field(default_factory=list)
    nrow: int | None = None  # one class per column when the labels were genforge's default (0, 1, 2, ...)
    tile_captions: list | None = None  # a restoration model's grid: damaged, restored, clean

    def captions(self):
        if self.tile_captions is not None:
            return self.tile_captions
        if self.labels is None:
            return None
        names = list(self.class_names)
        return [names[int(v)] if 0 <= int(v) < len(names) else str(int(v)) for v in self.labels]

    def save(self, path) -> Path:
        """The samples as one grid picture (.png, .jpg, .webp), written atomically."""
        import torch

        from genforge.core.images import save_grid

        return save_grid(torch.from_numpy(self.images), Path(path), nrow=self.nrow, captions=self.captions())

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        labelled = f", labels {self.labels[:8].tolist()}{'...' if len(self.labels) > 8 else ''}" \
            if self.labels is not None else ""
        return f"Samples({n} images, {c}x{h}x{w}{labelled})"

    def _repr_png_(self) -> bytes:
        return grid_png(self.images, self.captions(), self.nrow)


class Scores(dict):
    """Quality scores by metric name (a dict), with the verdict against the dataset's own floor."""

    def verdict(self) -> str | None:
        for key, where in (("psnr_masked", "in the hole"), ("psnr", "over the image")):  # restoration models
            value, damaged = self.get(key), self.get(f"{key}_input")
            if isinstance(value, float) and isinstance(damaged, float):
                return (f"restored PSNR {where} {value:.2f} dB, {value - damaged:+.2f} dB against the damaged input "
                        f"({damaged:.2f} dB); higher is better")
        fd, floor = self.get("fd"), self.get("fd_floor")
        if isinstance(fd, float) and floor:
            return (f"FD {fd:.4g} is {fd / floor:.2f}x the floor (the FD between the dataset's own train and test "
                    f"images, {floor:.4g}); lower is better")
        return None

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_shown(v)}" for k, v in self.items() if k != "skipped")
        return f"Scores({shown})"

    def _repr_html_(self) -> str:
        rows = [[k, _shown(v)] for k, v in self.items() if k != "skipped"]
        rows += [[k, f"skipped: it {why}"] for k, why in self.get("skipped", {}).items()]
        verdict = self.verdict()
        return html_table(rows, ["metric", "value"]) + (f"<p>{html.escape(verdict)}</p>" if verdict else "")


class BenchReport(dict):
    """A benchmark report (the JSON `genforge bench --json` writes): rows, environment, settings."""

    def __repr__(self) -> str:
        """The rows as an aligned text table."""
        from genforge.benchmarks.rows import COLUMNS, environment_line, row_cells

        timed = [r for r in self.get("rows", []) if r["status"] == "ok"]
        rows = [COLUMNS, *(row_cells(r) for r in timed)]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(COLUMNS))]
        lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        lines += [f"{r['status']}: {r['target']} on {r['backend']}: {r.get('reason', '')}"
                  for r in self.get("rows", []) if r["status"] != "ok"]
        return "\n".join(lines + [environment_line(self.get("environment", {}))])

    def _repr_markdown_(self) -> str:
        from genforge.benchmarks.rows import markdown_table

        return markdown_table(self)

    def record(self, store=None, commit: str | None = None, branch: str | None = None):
        """Keep this report in the results store (a SQLite path or a SQLAlchemy URL; default as `genforge bench
        --record`) under `commit` and `branch` (default: from CI or git); returns the stored record."""
        from genforge.benchmarks.store import record_report

        return record_report(self, store, commit, branch)
