"""Progress that fits where it runs: a notebook widget in Jupyter (with ipywidgets; lines without), a bar on a
terminal, and in a log (stderr not a terminal: CI, a pipe, a file) one line every 10 percent instead of a bar
redrawn every few steps."""

from __future__ import annotations

import importlib.util
import sys
import time

LINES = 10  # log lines over the whole work: one per 10%


def in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    try:
        return shell is not None and "IPKernelApp" in shell.get_ipython().config
    except AttributeError:
        return False


class LineProgress:
    """tqdm's small interface (update, set_postfix, close), printing a line at every 10% and at the end."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, stream=None, delay: float = 0.0):
        self.total, self.desc, self.unit, self.n = max(int(total), 1), desc, unit, initial
        self.stream, self.delay = stream or sys.stderr, delay
        self.start, self.started_at, self.postfix = initial, time.perf_counter(), {}
        self.next_mark = initial * LINES // self.total + 1  # in tenths of the work

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.perf_counter() - self.started_at < self.delay:  # short work shows nothing
            self.next_mark = self.n * LINES // self.total + 1
        elif self.n * LINES >= self.next_mark * self.total:
            self.next_mark = self.n * LINES // self.total + 1
            self.print()

    def set_postfix(self, values: dict, refresh: bool = False) -> None:
        self.postfix = values

    def print(self) -> None:
        elapsed = time.perf_counter() - self.started_at
        rate = (self.n - self.start) / elapsed if elapsed > 0 else 0.0
        extra = "".join(f" {k}={v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {100 * self.n / self.total:3.0f}% ({self.n}/{self.total} {self.unit}s, "
              f"{rate:.3g} {self.unit}/s, {elapsed:.0f}s){extra}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.n < self.total and self.n > self.start:
            self.print()


class NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, values: dict, refresh: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, desc: str, unit: str = "step", initial: int = 0, enabled: bool = True,
             delay: float = 0.0):
    """The progress display for `total` units of work: a notebook widget, a compact terminal bar, or lines;
    nothing at all for work that ends within `delay` seconds."""
    if not enabled:
        return NoProgress()
    if in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm

        return tqdm(total=total, initial=initial, unit=unit, desc=desc, delay=delay)
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True, mininterval=0.2,
                    delay=delay,
                    bar_format="{desc}: {percentage:3.0f}%|{bar:10}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]"
                               "{postfix}")
    return LineProgress(total, desc, unit, initial, delay=delay)
