"""genforge's errors: plain exceptions carrying the exit status the CLI ends with (app/one_line.py prints each
as one line). The kernel knows no click."""

import difflib


class GenforgeError(Exception):
    """An error genforge explains in one line; exit_code is the CLI's exit status for it."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UserError(GenforgeError, ValueError):
    """A problem with what the user asked for: one line, what to do, exit status 2. From Python it is also a
    ValueError, so callers that catch bad arguments the standard way catch it too."""

    exit_code = 2


class ContractError(UserError):
    """A plugin does not keep the contract: one line naming the plugin and what to change."""


class PluginError(UserError):
    """A plugin failed to load or register (fatal only with GENFORGE_STRICT_PLUGINS=1)."""


class TrainingDiverged(GenforgeError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""

    exit_code = 1


class TrainingStopped(GenforgeError):
    """A training process died; the others were stopped and the last checkpoint is kept."""

    exit_code = 1


class TrainingInterrupted(GenforgeError):
    """SIGINT or SIGTERM stopped training between steps; a checkpoint of the step reached was written."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.exit_code = 128 + signal_number


class ValidationFailed(GenforgeError):
    """An export missed its precision's tolerance or quality gate; nothing was written."""

    exit_code = 1


def unknown_name(kind: str, name: str, known) -> UserError:
    """The one-line error for a name that is not registered, with close matches."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known) or 'none'}"
    return UserError(f"unknown {kind} {name!r}; {hint} (see `genforge {kind}s`)")
