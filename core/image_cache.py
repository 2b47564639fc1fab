"""A folder of image files decoded once into a uint8 file under the genforge cache, then read a batch at a time.

Large sets do not fit in memory decoded (200,000 images at 128 px are 10 GB), and decoding them again
on every command costs minutes. The first command that opens a folder decodes it, in worker processes
(the free cores, or GENFORGE_DATA_WORKERS), into GENFORGE_CACHE/images/KEY/images.u8: one (C, H, W)
uint8 block per image, in file order. KEY hashes every file's path, size and modification time with the
image size and colour mode, so a changed folder gets a new cache and a run that is reading the old one
goes on reading it unchanged. The cache is written in a temporary folder (with genforge's marker) and
renamed into place: a build killed midway leaves no half cache, and the next build removes the dead one.

Images are read with pread, not memory-mapped: mapped pages count in the process's resident memory as
an epoch touches them, and the point is that training memory does not grow with the image count.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from genforge.core.data import to_float
from genforge.core.errors import UserError
from genforge.core.files import genforge_cache_dir
from genforge.core.folders import folder_written_whole
from genforge.core.progress import progress

FORMAT = 1  # bump when the files' layout changes: older caches are then never read
KIND = "image-cache"
CHUNK = 64  # images a worker decodes per task


def files_key(files: Sequence[tuple[Path, int]], image_size: int, mode: str) -> str:
    """A hash of what decoded files depend on: each file's path, size, modification time and label."""
    digest = hashlib.blake2b(f"{FORMAT} {image_size} {mode}\n".encode(), digest_size=12)
    for path, label in files:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{label}\n".encode())
    return digest.hexdigest()


def data_workers() -> int:
    """Decoding processes: GENFORGE_DATA_WORKERS, else the machine's free cores."""
    from genforge.core.compute import default_threads

    value = os.environ.get("GENFORGE_DATA_WORKERS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise UserError(f"GENFORGE_DATA_WORKERS is {value!r}; set it to a whole number of 1 or more")
        return int(value)
    return default_threads()


class CachedImages(torch.utils.data.Dataset):
    """Some rows of an image cache (a split), served as float images in [-1, 1] a batch at a time."""

    def __init__(self, folder: Path, rows: np.ndarray, labels: np.ndarray, shape: tuple[int, int, int]):
        self.folder, self.shape = Path(folder), tuple(shape)
        self.rows = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64))
        self.labels = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
        rows_hash = hashlib.blake2b(self.rows.numpy().tobytes(), digest_size=8).hexdigest()
        self.fingerprint = f"{self.folder.name}-{rows_hash}"  # the cache's key names the images: no hashing them
        self._fd, self._pid = None, None

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self):
        return {**self.__dict__, "_fd": None, "_pid": None}

    def _file(self) -> int:
        if self._pid != os.getpid():  # a DataLoader worker or a forked process opens its own
            self._fd, self._pid = os.open(self.folder / "images.u8", os.O_RDONLY), os.getpid()
        return self._fd

    def uint8(self, indices: torch.Tensor) -> torch.Tensor:
        """The images at `indices` (of this split) as uint8 (N, C, H, W), read in file order."""
        size = int(np.prod(self.shape))
        rows = self.rows[indices].numpy()
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), size), dtype=np.uint8)
        fd = self._file()
        for position in order:
            out[position] = np.frombuffer(os.pread(fd, size, int(rows[position]) * size), dtype=np.uint8)
        return torch.from_numpy(out).view(len(rows), *self.shape)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return to_float(self.uint8(indices)), self.labels[indices]

    def __getitem__(self, index):
        images, labels = self.batch(torch.tensor([int(index)]))
        return images[0], int(labels[0])


def open_cache(key: str, tasks: list, decode_task: Callable, total: int, where: str, unit: str = "image"
               ) -> tuple[Path, dict]:
    """The cache folder named `key` (built first when missing) and its info.json record.

    Each task is decoded by decode_task(task) -> [(uint8 array (H, W) or (H, W, C), or an error string;
    label), ...], one entry per source image in order; it must be a module-level function (worker
    processes call it). `total` counts the tasks' `unit`s, for the progress bar. Images that cannot be read
    are left out, counted and reported once, at the build.
    """
    folder = genforge_cache_dir() / "images" / key
    if not (folder / "info.json").is_file():
        locks = folder.parent / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / key, "a") as lock:  # one builder; the others wait for it (kept: removing races)
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (folder / "info.json").is_file():
                build(folder, tasks, decode_task, total, where, unit)
    return folder, json.loads((folder / "info.json").read_text())


def file_tasks(files: Sequence[tuple[Path, int]], image_size: int, mode: str, decode: Callable) -> list:
    """Tasks of CHUNK files each for decode_files; decode(path, image_size, mode) -> uint8 array."""
    return [(decode, [(str(p), label) for p, label in files[i:i + CHUNK]], image_size, mode)
            for i in range(0, len(files), CHUNK)]


def decode_files(task) -> list:
    decode, items, image_size, mode = task
    out = []
    for path, label in items:
        try:
            out.append((np.ascontiguousarray(decode(path, image_size, mode), dtype=np.uint8), label))
        except Exception as exc:  # noqa: BLE001  any unreadable file is skipped and counted
            out.append((f"{Path(path).name}: {type(exc).__name__}", label))
    return out


def _decoded(tasks, decode_task, workers):
    if workers <= 1 or len(tasks) <= 1:
        yield from map(decode_task, tasks)
        return
    import multiprocessing

    with multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn").Pool(workers) as pool:
        yield from pool.imap(decode_task, tasks)


def build(folder: Path, tasks: list, decode_task: Callable, total: int, where: str, unit: str) -> None:
    """Decode every task into a temporary folder beside `folder`, then rename it into place."""
    with folder_written_whole(folder, KIND, ".building-") as temporary:
        kept, bad, shape, position = [], [], None, 0
        bar = progress(total, f"decoding {total} {unit}s of {where} once (cached)", unit=unit, delay=1.0)
        with open(temporary / "images.u8", "wb") as out:
            for results in _decoded(tasks, decode_task, data_workers()):
                for result, label in results:
                    array = None if isinstance(result, str) else (
                        result[None] if result.ndim == 2 else result.transpose(2, 0, 1))
                    if array is None or (shape is not None and array.shape != shape):
                        bad.append(result if array is None else f"image {position}: {array.shape}, not {shape}")
                    else:
                        shape = array.shape
                        out.write(np.ascontiguousarray(array).tobytes())
                        kept.append((position, label))
                    position += 1
                bar.update(len(results) if unit == "image" else 1)
            out.flush()
            os.fsync(out.fileno())
        bar.close()
        if bad:
            print(f"warning: skipped {len(bad)} unreadable image(s) in {where} (first: {bad[0]})", file=sys.stderr)
        np.save(temporary / "rows.npy", np.array(kept, dtype=np.int64).reshape(-1, 2))
        info = {"format": FORMAT, "count": len(kept), "shape": list(shape or ()), "sources": position,
                "unreadable": len(bad), "first_unreadable": bad[0] if bad else None}
        (temporary / "info.json").write_text(json.dumps(info) + "\n")


@functools.lru_cache(maxsize=8)
def _rows(folder: Path) -> np.ndarray:
    """A cache's (source index, label) table: its folder never changes once renamed into place."""
    return np.load(folder / "rows.npy")


def split_of(folder: Path, info: dict, take: Callable[[np.ndarray], np.ndarray]) -> CachedImages:
    """The cached images whose original file index `take` selects (a boolean mask over file indices)."""
    table = _rows(Path(folder))
    chosen = np.nonzero(take(table[:, 0]))[0] if len(table) else np.zeros(0, dtype=np.int64)
    return CachedImages(folder, chosen, table[chosen, 1] if len(table) else chosen, tuple(info["shape"]))
