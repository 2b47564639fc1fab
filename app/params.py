"""click option types for paths genforge writes: checked (core/files.py) when the option is parsed."""

from __future__ import annotations

import math

import click

from genforge.core.files import check_output_dir, check_output_file
from genforge.core.limits import MAX_THREADS
from genforge.core.options import parse_model_options


class OutputFile(click.ParamType):
    """A click option type for files to write: checked by check_output_file when the option is parsed."""

    name = "file"

    def __init__(self, what: str, suffixes: tuple[str, ...] | None = None):
        self.what, self.suffixes = what, suffixes

    def convert(self, value, param, ctx):
        return check_output_file(value, self.what, self.suffixes)


class FiniteRange(click.FloatRange):
    """A float option within bounds and finite: click's FloatRange lets nan through (it compares false with
    both ends) and inf where a side is open-ended."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number", param, ctx)
        return value


PROBABILITY = FiniteRange(0, 1, min_open=True, max_open=True)  # a significance level or a decay, strictly inside


class OutputDir(click.ParamType):
    """A click option type for folders to write into: checked by check_output_dir when the option is parsed."""

    name = "folder"

    def __init__(self, what: str):
        self.what = what

    def convert(self, value, param, ctx):
        return check_output_dir(value, self.what)


sampling_option = click.option("--sampling", multiple=True, metavar="KEY=VALUE",
                               help="A sampling option of the run's model, e.g. --sampling steps=10 for diffusion "
                                    "(see the model's sampling_options).")


def sampling_of(pairs) -> dict | None:
    """--sampling KEY=VALUE pairs as a dict (None when none is given); the model's Config converts the values."""
    return parse_model_options(pairs, "--sampling", "steps=10") if pairs else None


THREADS_HELP = "Threads for torch, ONNX Runtime and OpenMP (default: the free cores of this machine)."
threads_option = click.option("--threads", type=click.IntRange(1, MAX_THREADS), help=THREADS_HELP)
