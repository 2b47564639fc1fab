"""The Python API's argument checks: the command line's rules, said in Python.

Each check takes the value and the keyword argument's name and returns the value as genforge uses it, or
raises UserError naming that keyword (`steps=`, not `--steps`). numpy scalars count as the Python numbers
they hold; booleans never count as numbers; floats are finite.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from genforge.core.compute import check_threads
from genforge.core.errors import UserError
from genforge.core.limits import MAX_BATCH


def plain(value):
    """numpy scalars as Python numbers (np.int64(8) -> 8), containers walked; anything else as it is."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def whole(value, name: str, low: int = 1, high: int | None = None, optional: bool = False) -> int | None:
    """A whole number from low to high (numpy integers too; never a bool, a float or a string)."""
    if value is None and optional:
        return None
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        upper = f" to {high}" if high is not None else " or more"
        raise UserError(f"{name}={value!r} must be a whole number from {low}{upper}")
    return value


def number(value, name: str, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
           optional: bool = False) -> float | None:
    """A finite number within [low, high] (or (low, high] with low_open)."""
    if value is None and optional:
        return None
    value = plain(value)
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or value < low or (low_open and value == low) or value > high):
        side = "above" if low_open else "from"
        raise UserError(f"{name}={value!r} must be a finite number {side} {low:g} up to {high:g}")
    return float(value)


def flag(value, name: str, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    value = plain(value)
    if not isinstance(value, bool):
        raise UserError(f"{name}={value!r} must be True or False")
    return value


def text(value, name: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise UserError(f"{name}={value!r} must be a non-empty string")
    return value


def path_of(value, name: str, optional: bool = False) -> Path | None:
    """A path: str, os.PathLike, or an object with a .path (genforge's Run)."""
    if value is None and optional:
        return None
    value = getattr(value, "path", value)
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise UserError(f"{name}={value!r} must be a path (a string or a pathlib.Path)")
    return Path(value)


def options_dict(value, name: str, optional: bool = True) -> dict | None:
    if value is None and optional:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise UserError(f"{name}={value!r} must be a dict of option names to values, like {{'steps': 10}}")
    return plain(value)


def is_whole(low: int, high: int = 10**6):
    """A rule's check: a whole number from low to high (never a bool)."""
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def is_number(low: float, strict: bool = False, high: float = math.inf):
    """A rule's check: a finite number above low (strict) or from low, up to high (never a bool)."""
    return lambda v: (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                      and (v > low if strict else v >= low) and v <= high)


def check_table(values: dict, rules: dict, where: str, label=None) -> dict:
    """Settings (a pipeline or suite section, an API call's keywords, a command's options) against `rules`,
    {key: (check, what it must be)}: one line naming the first unknown key or the first value that breaks its
    rule. label(key) is how the user wrote the key (default: "WHERE KEY = ")."""
    label = label or (lambda key: f"{where} {key} = ")
    unknown = sorted(set(values) - set(rules))
    if unknown:
        raise UserError(f"unknown setting(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(rules))}")
    for key, value in values.items():
        check, must = rules[key]
        if not check(plain(value)):
            raise UserError(f"{label(key)}{value!r} is not valid; it must be {must}")
    return values


def known_keywords(given: dict, known, where: str) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserError(f"{where} got unknown keyword argument(s) {', '.join(unknown)}; known: "
                        f"{', '.join(sorted(known))}")


CALLBACK_HOOKS = ("check", "on_fit_start", "on_step_end", "on_evaluation", "on_checkpoint", "on_fit_end",
                  "teardown", "state_dict", "load_state_dict")


def callbacks_of(value) -> list:
    """callbacks=: a list of callback instances, or one of them (as Lightning takes it)."""
    items = [] if value is None else list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        if isinstance(item, type):
            raise UserError(f"callbacks= holds the class {item.__name__}; pass an instance: {item.__name__}()")
        if not any(callable(getattr(item, hook, None)) for hook in CALLBACK_HOOKS):
            raise UserError(f"callbacks= holds {item!r}, which is not a callback: subclass genforge.Callback and "
                            "implement its hooks (on_step_end, on_evaluation, ...)")
    return items


ONNX_OPTIONS = ("checkpoint", "opset", "batch", "ema", "rewrite", "force", "max_fd_increase", "quality_samples",
                "sampling", "check_quality", "gate_metric", "threads")
EXPORT_OPTIONS = {"onnx": ONNX_OPTIONS,
                  "tensorrt": ONNX_OPTIONS + ("min_batch", "opt_batch", "max_batch", "workspace_gib")}


def check_export_options(options: dict) -> dict:
    """export()'s keyword options by the rules of `genforge export`'s options."""
    checked = dict(plain(options))
    for name in ("opset",):
        if name in checked:
            checked[name] = whole(checked[name], name, 7, 30)
    for name in ("batch", "min_batch", "opt_batch", "max_batch"):
        if name in checked and not (name == "batch" and checked[name] in (None, "dynamic")):
            checked[name] = whole(checked[name], name, 1, MAX_BATCH)
    if "quality_samples" in checked:
        checked["quality_samples"] = whole(checked["quality_samples"], "quality_samples", 10, 1_000_000)
    if "max_fd_increase" in checked:
        checked["max_fd_increase"] = number(checked["max_fd_increase"], "max_fd_increase", -1, 1000)
    if "workspace_gib" in checked:
        checked["workspace_gib"] = number(checked["workspace_gib"], "workspace_gib", 0, 1024, low_open=True)
    for name in ("ema", "rewrite", "force", "check_quality"):
        if name in checked:
            checked[name] = flag(checked[name], name, optional=name == "ema")
    if "sampling" in checked:
        checked["sampling"] = options_dict(checked["sampling"], "sampling")
    if "threads" in checked:
        checked["threads"] = check_threads(checked["threads"])
    return checked
