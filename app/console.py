"""Tables on the terminal (rich), shared by the CLI modules."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=escape(title), title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[escape("" if v is None else str(v)) for v in row])
    Console(width=None if sys.stdout.isatty() else 160).print(table)
