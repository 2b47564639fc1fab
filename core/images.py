"""Pictures people look at: sample grids (with optional captions) and loss curves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from genforge.core.data import to_uint8
from genforge.core.errors import UserError
from genforge.core.files import atomic_path

CAPTION_CHAR_W = 6  # PIL's default bitmap font


def grid_image(images: torch.Tensor, nrow: int | None = None, padding: int = 2, captions=None, scale: int = 1):
    """NCHW images in [-1, 1] -> a PIL image laid out in a grid (each image enlarged `scale` times, nearest),
    captions under each cell at the font's own size, so they are cut only when wider than the cell."""
    pixels = to_uint8(images).cpu().numpy()
    if scale > 1:
        pixels = pixels.repeat(scale, axis=2).repeat(scale, axis=3)
    n, c, h, w = pixels.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    caption_h = 12 if captions is not None else 0
    cell_h, cell_w = h + padding + caption_h, w + padding
    canvas = np.full((rows * cell_h + padding, nrow * cell_w + padding, 3), 32, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        tile = pixels[i].transpose(1, 2, 0)
        y, x = padding + r * cell_h, padding + col * cell_w
        canvas[y:y + h, x:x + w] = tile if c == 3 else np.repeat(tile, 3, axis=2)
    picture = Image.fromarray(canvas)
    if captions is not None:
        draw = ImageDraw.Draw(picture)
        for i, text in enumerate(captions):
            r, col = divmod(i, nrow)
            draw.text((padding + col * cell_w, padding + r * cell_h + h), str(text)[: max(1, w // CAPTION_CHAR_W)],
                      fill=(230, 230, 230))
    return picture


def save_grid(images: torch.Tensor, path, nrow: int | None = None, captions=None, scale: int | None = None) -> Path:
    if not bool(torch.isfinite(images).all()):
        raise UserError(f"the images for {path} contain NaN or Inf (the generator's weights or output are broken); "
                        "nothing was written: use an earlier checkpoint or retrain")
    scale = scale or max(1, 256 // max(1, images.shape[-1] * 4))
    if captions is not None:
        scale = max(scale, math.ceil(CAPTION_CHAR_W * 10 / images.shape[-1]))  # room for 10 characters
    picture = grid_image(images, nrow, captions=captions, scale=scale)
    path = Path(path)
    with atomic_path(path) as tmp:
        picture.save(tmp, format=Image.registered_extensions()[path.suffix.lower()])
    return path


def smooth(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    """Exponential moving average (as TensorBoard's smoothing), NaNs carried over."""
    out, last = np.empty_like(values), np.nan
    for i, v in enumerate(values):
        last = v if np.isnan(last) else (last if np.isnan(v) else weight * last + (1 - weight) * v)
        out[i] = last
    return out


NOT_CURVES = ("step", "epoch", "world_size")  # bookkeeping, not series worth a line


def save_loss_curve(records: list[dict], out_path, title: str = "training") -> Path | None:
    """Every scalar series of a run's metric records (metrics.jsonl's) against the step: losses (and other
    training scalars) on top, throughput below, each raw and smoothed, under a title."""
    import matplotlib  # lazy: matplotlib takes about 0.5 s to import; only loss curves need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: see above

    records = [r for r in records if r.get("kind", "train") == "train"]
    if not records:
        return None
    keys = [k for k in records[-1] if k not in NOT_CURVES and isinstance(records[-1][k], int | float)
            and not isinstance(records[-1][k], bool) and k != "images_per_s"]
    fig, (ax, speed) = plt.subplots(2, 1, figsize=(7, 5.5), dpi=100, sharex=True,
                                    gridspec_kw={"height_ratios": [3, 1]})
    steps = [r["step"] for r in records]
    for key in keys:
        values = np.array([r.get(key, np.nan) for r in records], dtype=float)
        line, = ax.plot(steps, values, alpha=0.25, linewidth=1)
        ax.plot(steps, smooth(values), color=line.get_color(), label=f"{key} (smoothed)")
    throughput = np.array([r.get("images_per_s", np.nan) for r in records], dtype=float)
    speed.plot(steps, throughput, color="grey", linewidth=1)
    fig.suptitle(title)
    ax.set_title("losses and training scalars (faint: raw; solid: smoothed)", fontsize=9)
    ax.set_ylabel("value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    speed.set_xlabel("step")
    speed.set_ylabel("images/s")
    speed.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=Path(out_path).suffix.lstrip(".") or "png")
    plt.close(fig)
    return Path(out_path)
