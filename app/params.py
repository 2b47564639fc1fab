"""click option types for paths genforge writes: checked (core/files.py) when the option is parsed."""

from __future__ import annotations

import click

from genforge.core.files import check_output_dir, check_output_file


class OutputFile(click.ParamType):
    """A click option type for files to write: checked by check_output_file when the option is parsed."""

    name = "file"

    def __init__(self, what: str, suffixes: tuple[str, ...] | None = None):
        self.what, self.suffixes = what, suffixes

    def convert(self, value, param, ctx):
        return check_output_file(value, self.what, self.suffixes)


class OutputDir(click.ParamType):
    """A click option type for folders to write into: checked by check_output_dir when the option is parsed."""

    name = "folder"

    def __init__(self, what: str):
        self.what = what

    def convert(self, value, param, ctx):
        return check_output_dir(value, self.what)
