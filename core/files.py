"""The user's files: reading TOML and JSON, and checking output paths before any work, with one-line errors."""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path

import click

from genforge.core.errors import UserError


def read_toml(path, what: str = "config file") -> dict:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} {path} cannot be read ({type(exc).__name__}); pass a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{what} {path} is not valid TOML: {exc}") from None


def read_json(path, what: str = "file", fix: str = "") -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist{'; ' + fix if fix else ''}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{what} {path} is corrupt (not JSON){'; ' + fix if fix else ''}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise UserError(f"{what} {path} cannot be read ({type(exc).__name__}){'; ' + fix if fix else ''}") from None


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _writable_folder(folder: Path, what: str, path: Path) -> None:
    """The nearest existing ancestor of `folder` must be a folder we can create files in."""
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{what} {path} cannot be written: {ancestor} is a file, not a folder; choose another path")
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be written ({exc.strerror or type(exc).__name__} in {ancestor}); "
                        "choose a folder you can write to") from None


def check_output_file(path, what: str = "output file", suffixes: tuple[str, ...] | None = None) -> Path:
    """A file genforge is about to write: not a folder, a known suffix, in a writable place. Checked before work."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name{' ending in ' + suffixes[0] if suffixes else ''}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise UserError(f"{what} {path} must end in {', '.join(suffixes)}")
    _writable_folder(path.parent, what, path)
    return path


def check_output_dir(path, what: str = "output folder") -> Path:
    """A folder genforge is about to write into: not a file, in a writable place. Checked before work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder; choose another path")
    _writable_folder(path, what, path)
    return path


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
