"""The folders genforge makes: its marker in each (only such folders are ever deleted, and only when
they hold nothing genforge did not write), the one-writer lock of a run directory, and the removal of
temporary folders that killed processes left behind."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from genforge.core.errors import UserError
from genforge.core.files import current_umask, write_atomic

MARKER = ".genforge-{kind}"  # written into every folder genforge creates; only such folders are ever deleted
LOCK = ".genforge-lock"  # the advisory lock of a run directory (one writer at a time)


def make_owned_folder(folder, kind: str) -> Path:
    """Create `folder` (empty or new) and write genforge's marker for this kind of folder into it first."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / MARKER.format(kind=kind), f"a genforge {kind} folder: genforge may delete it\n")
    return folder


def is_owned(folder, kind: str) -> bool:
    return (Path(folder) / MARKER.format(kind=kind)).is_file()


def _ours(name: str, known: tuple[str, ...]) -> bool:
    return name in (LOCK, *known) or name.startswith(".genforge-") or (name.startswith(".") and name.endswith(".tmp"))


def removal_refusal(folder, kind: str, known: tuple[str, ...]) -> str | None:
    """Why genforge may not delete `folder` (no marker of this kind, or something in it genforge did not
    write), or None when it may."""
    folder = Path(folder)
    if not is_owned(folder, kind):
        marker = MARKER.format(kind=kind)
        return f"{folder} is not a genforge {kind} (it has no {marker} marker: genforge did not make it)"
    foreign = sorted(p.name for p in folder.iterdir() if not _ours(p.name, known))
    if foreign:
        return f"{folder} holds files genforge did not write there ({', '.join(foreign[:3])})"
    return None


def remove_owned_folder(folder, kind: str, known: tuple[str, ...], fix: str) -> None:
    """Delete a folder only when genforge made it (its marker, of this kind) and it holds nothing else."""
    folder = Path(folder)
    refusal = removal_refusal(folder, kind, known)
    if refusal:
        raise UserError(f"{refusal}; refusing to delete it: {fix}")
    trash = folder.with_name(f".{folder.name}.genforge-deleting-{os.getpid()}")
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def remove_dead_temporaries(folder, prefix: str) -> None:
    """Temporary folders `{prefix}{pid}-*` whose process is gone (killed mid-write) are removed."""
    try:
        entries = list(Path(folder).glob(f"{prefix}*"))
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def folder_written_whole(final, kind: str, prefix: str):
    """Yields a new temporary folder beside `final` (the umask's mode, genforge's marker of `kind`) to fill;
    then renames it to `final`, so `final` is whole or absent. Left behind by a failure, it is removed; left
    by a killed process, the next call removes it. A `final` another process finished first is kept."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(final.parent, prefix)
    temporary = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=final.parent))
    try:
        os.chmod(temporary, 0o777 & ~current_umask())
        make_owned_folder(temporary, kind)
        yield temporary
        try:
            os.rename(temporary, final)
        except OSError:
            if not (final.is_dir() and any(final.iterdir())):  # not another process's finished folder
                raise
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- one writer per run directory --------------------------------------------------------------------
_held: dict[Path, list] = {}


def acquire_run_lock(folder, doing: str, read_only_ok: bool = False):
    """An OS advisory lock on the run directory's lock file, released by the returned function or when the
    holder dies. A second process gets one line naming the holder's pid; the same process may take it again.
    Readers (read_only_ok) of a run directory nobody can write to go on without the lock."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        return lambda: None  # nothing to lock: the caller's own checks say what is wrong with the path
    if folder in _held:
        _held[folder][1] += 1
        return _releaser(folder)
    path = folder / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # less the umask, as open() would
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and read_only_ok:
            return lambda: None
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise UserError(f"{folder} is read-only ({exc.strerror}); genforge needs to write there to {doing}: "
                            "make it writable or copy the run elsewhere") from None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another"
        os.close(fd)
        raise UserError(f"{folder} is in use by genforge process {holder}; wait for it to end (or stop it) before "
                        f"you {doing}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _held[folder] = [fd, 1]
    return _releaser(folder)


def _releaser(folder: Path):
    done = []

    def release() -> None:
        if not done:
            done.append(True)
            _release(folder)
    return release


def _release(folder: Path) -> None:
    held = _held.get(folder)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _held[folder]
        os.close(held[0])


@contextlib.contextmanager
def run_lock(folder, doing: str, read_only_ok: bool = False):
    release = acquire_run_lock(folder, doing, read_only_ok)
    try:
        yield
    finally:
        release()
