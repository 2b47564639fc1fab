"""Every answer to the user in one line: usage errors, user errors, Ctrl-C, a full disk or a read-only place.

The root command group (OneLineErrors) turns each into one line on stderr with its exit status, whoever
invokes the CLI (the console script, click's test runner); control characters are escaped and long
messages cut. Anything else goes on to the bug handler in cli.main.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import traceback

import click

from genforge.core.errors import GenforgeError

DISK_ERRORS = {errno.ENOSPC: "the disk is full: free space there or write elsewhere",
               errno.EDQUOT: "the disk quota is used up: free space there or write elsewhere",
               errno.EROFS: "that place is read-only: write elsewhere or make it writable",
               errno.EACCES: "permission denied: write elsewhere or change its permissions",
               errno.EPERM: "permission denied: write elsewhere or change its permissions"}
MAX_MESSAGE = 400  # characters of one error line


def one_line(message: str) -> str:
    """An error line as a terminal should show it: control characters escaped, whitespace folded, cut short."""
    text = " ".join(str(message).split())
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 14] + " ... (cut)"


def say(message: str) -> None:
    try:
        click.echo(message, err=True)
    except OSError:
        pass


def printing(exc: BaseException) -> bool:
    """The error came from printing (click.echo, rich), not from writing a file."""
    return any(frame.filename.endswith(("click/utils.py", "rich/console.py", "rich/file_proxy.py"))
               for frame in traceback.extract_tb(exc.__traceback__))


def stdout_broken() -> bool:
    """Standard output cannot take what is buffered (a full device, a closed pipe); it is then silenced."""
    try:
        sys.stdout.flush()
    except OSError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return True
    return False


def disk_error(exc: BaseException) -> str | None:
    """The one line for a full disk, a read-only place or a refused write anywhere, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        number = getattr(exc, "errno", None)
        if isinstance(exc, OSError) and number in DISK_ERRORS:
            where = exc.filename or ("standard output" if printing(exc) or stdout_broken()
                                     else "a file genforge was writing")
            return f"cannot write {where}: {DISK_ERRORS[number]}; files written before are intact"
        text = str(exc)
        for number, words in ((errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")):
            if words in text:
                return f"cannot write: {words.lower()} ({DISK_ERRORS[number]}); files written before are intact"
        exc = exc.__cause__ or exc.__context__
    return None


class OneLineErrors(click.Group):
    """The root group: every answer to the user (usage errors, user errors, Ctrl-C, a full disk or a read-only
    place) is one line on stderr with its exit status, whoever invokes the CLI (the console script, click's
    test runner). Anything else propagates to main's bug handler."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except (click.exceptions.Abort, KeyboardInterrupt):
            say("Error: interrupted (Ctrl-C); nothing more was written")
            sys.exit(130)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "genforge"
            say(f"Error: {one_line(exc.format_message())} (see `{command} --help`)")
            sys.exit(2)
        except click.ClickException as exc:
            say(f"Error: {one_line(exc.format_message())}")
            sys.exit(exc.exit_code)
        except GenforgeError as exc:
            say(f"Error: {one_line(exc.message)}")
            sys.exit(exc.exit_code)
        except Exception as exc:
            disk = disk_error(exc)
            if disk is None:
                raise
            say(f"Error: {one_line(disk)}")
            sys.exit(2)
        sys.exit(status if isinstance(status, int) and not isinstance(status, bool) else 0)
