"""The user's files: reading TOML and JSON (regular files only, bounded nesting), writing every file
atomically, and checking output paths before any work, with one-line errors. Folders genforge makes,
deletes and locks: core/folders.py."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import tomllib
from pathlib import Path

from genforge.core.errors import UserError

MAX_NESTING = 64  # tables and lists inside each other in a JSON or TOML file genforge reads
TOO_DEEP = object()  # what a parser that ran out of stack read


def check_regular_file(path, what: str = "file") -> Path:
    """A path to read must be a regular file: a FIFO, device or socket would hang or never end."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{what} {path} is a folder; pass a file")
    if not stat.S_ISREG(mode):
        raise UserError(f"{what} {path} is not a regular file (a pipe, device or socket); pass a file")
    return path


def nesting_depth(value) -> int:
    depth, level = 0, [(value, 1)]
    while level:
        item, d = level.pop()
        if isinstance(item, dict | list):
            depth = max(depth, d)
            if d > MAX_NESTING:
                return d
            level.extend((child, d + 1) for child in (item.values() if isinstance(item, dict) else item))
    return depth


def _check_nesting(value, what: str, path) -> None:
    if value is TOO_DEEP or nesting_depth(value) > MAX_NESTING:
        raise UserError(f"{what} {path} nests tables or lists more than {MAX_NESTING} deep; genforge never writes "
                        "such files: pass the file genforge wrote")


def read_toml(path, what: str = "config file") -> dict:
    check_regular_file(path, what)
    try:
        value = tomllib.loads(Path(path).read_text())
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} {path} cannot be read ({type(exc).__name__}); pass a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{what} {path} is not valid TOML: {exc}") from None
    except RecursionError:
        value = TOO_DEEP
    _check_nesting(value, what, path)
    return value


def read_json(path, what: str = "file", fix: str = "") -> dict:
    suffix = f"; {fix}" if fix else ""
    try:
        check_regular_file(path, what)
    except UserError as exc:
        raise UserError(exc.message + suffix) from None
    try:
        value = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise UserError(f"{what} {path} is corrupt (not JSON){suffix}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise UserError(f"{what} {path} cannot be read ({type(exc).__name__}){suffix}") from None
    except RecursionError:
        value = TOO_DEEP
    if value is TOO_DEEP or nesting_depth(value) > MAX_NESTING:
        raise UserError(f"{what} {path} nests tables or lists more than {MAX_NESTING} deep{suffix}")
    return value


# -- writing -------------------------------------------------------------------------------------
def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def genforge_cache_dir() -> Path:
    """genforge's cache folder: GENFORGE_CACHE, else ~/.cache/genforge."""
    return Path(os.environ.get("GENFORGE_CACHE", Path.home() / ".cache" / "genforge"))


PLAIN_FILE_MODE = 0o666  # what open() asks for; the umask takes away from it


def current_umask() -> int:
    """The process's umask, read without changing it (Linux: /proc/self/status; elsewhere set and restore)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` for a writer to fill (a library's save(), say); then fsync and
    rename over `path`. On any failure the temporary file is removed and the previous `path` stays intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, PLAIN_FILE_MODE & ~current_umask())  # mkstemp makes 0600; the user's umask decides
    finally:
        os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno is not None and not exc.filename:
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise
    _fsync_folder(path.parent)


def write_atomic(path, content: str | bytes) -> Path:
    """The one way genforge writes a file: temporary file in the same folder, fsync, rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(content.encode() if isinstance(content, str) else content)
    return Path(path)


def write_json(path, value, indent: int = 2) -> Path:
    return write_atomic(path, json.dumps(value, indent=indent) + "\n")


def check_distinct_outputs(outputs: dict, inputs: dict | None = None) -> None:
    """Before any work: no output path may be an input, replace a file inside an input folder, or be another
    output."""
    seen: dict[Path, str] = {}
    for label, path in (inputs or {}).items():
        if path is not None:
            seen[Path(path).resolve()] = label
    input_paths = dict(seen)
    for label, path in outputs.items():
        if path is None:
            continue
        resolved = Path(path).resolve()
        if resolved in seen:
            raise UserError(f"{label} {path} is also {seen[resolved]}; writing it would destroy that: choose "
                            "another path")
        for folder, folder_label in input_paths.items():
            if folder.is_dir() and folder in resolved.parents and resolved.exists():
                raise UserError(f"{label} {path} would replace a file of {folder_label} {folder}, which this command "
                                "reads; write it elsewhere")
        seen[resolved] = label


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
