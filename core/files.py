"""Reading the user's TOML and JSON files with one-line errors instead of tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from genforge.core.errors import UserError


def read_toml(path, what: str = "config file") -> dict:
    import tomllib

    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{what} {path} is not valid TOML: {exc}") from None


def read_json(path, what: str = "file", fix: str = "") -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist{'; ' + fix if fix else ''}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{what} {path} is corrupt (not JSON){'; ' + fix if fix else ''}") from None
