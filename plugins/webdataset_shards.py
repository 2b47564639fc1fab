"""WebDataset tar shards: a set that lives on shared or object storage, read without copying folders.

--data-dir is a folder of .tar shards, one .tar, a brace pattern (shards/train-{000000..000099}.tar) or
anything the webdataset library opens (https://..., pipe:aws s3 cp s3://bucket/shard-000001.tar -).
Each sample holds one image (jpg, jpeg, png, webp or bmp) and optionally its class index (cls);
classes.json beside local shards names the classes. `genforge datasets shards FOLDER --out DIR`
writes such shards from an image folder.

Each machine decodes the shards once, one shard per worker process, into the image cache
(core/image_cache.py) and trains from it like an image folder: ranks read disjoint shares of every
batch. The split is every tenth sample (in shard order) for the test split when there are 20 or more.
"""

import io
import json
import os
from pathlib import Path

import numpy as np

from genforge.core.data import DataInfo, check_split
from genforge.core.errors import UserError
from genforge.core.image_cache import FORMAT, open_cache, split_of
from genforge.plugins.image_folder import read_square

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp", "bmp")
INSTALL = "pip install 'genforge[webdataset]'"


def webdataset():
    try:
        import webdataset as wds
    except ImportError:
        raise UserError(f"the webdataset dataset needs the webdataset library: {INSTALL}") from None
    return wds


def shard_urls(data_dir: str) -> list[str]:
    """The shards --data-dir names, in order."""
    path = Path(data_dir).expanduser()
    if path.is_dir():
        shards = sorted(str(p) for p in path.glob("*.tar"))
        if not shards:
            raise UserError(f"no .tar shards in {path}; write some with `genforge datasets shards FOLDER --out DIR`")
        return shards
    if "://" in data_dir or data_dir.startswith("pipe:") or "{" in data_dir:
        from braceexpand import braceexpand

        shards = list(braceexpand(data_dir))
        local = [s for s in shards if "://" not in s and not s.startswith("pipe:")]
        missing = [s for s in local if not Path(s).is_file()]
        if missing:
            raise UserError(f"shard {missing[0]} does not exist ({len(missing)} of {len(shards)} missing)")
        return shards
    if path.is_file():
        return [str(path)]
    raise UserError(f"{data_dir} is neither a folder of .tar shards, a .tar file, a brace pattern nor a URL")


def shards_key(shards: list[str], image_size: int, mode: str) -> str:
    import hashlib

    digest = hashlib.blake2b(f"{FORMAT} webdataset {image_size} {mode}\n".encode(), digest_size=12)
    for shard in shards:
        stat = os.stat(shard) if Path(shard).is_file() else None
        digest.update(f"{shard}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode() if stat else f"{shard}\n".encode())
    return digest.hexdigest()


def samples(url: str):
    """(key, image bytes or None, label) of every sample of one shard, in order."""
    wds = webdataset()
    for sample in wds.WebDataset(url, shardshuffle=False, empty_check=False):
        data = next((sample[k] for k in IMAGE_KEYS if k in sample), None)
        label = int(sample["cls"]) if "cls" in sample else -1
        yield sample.get("__key__", "?"), data, label


def decode_shard(task) -> list:
    url, image_size, mode = task
    out = []
    for key, data, label in samples(url):
        try:
            if data is None:
                raise ValueError("no image in the sample")
            out.append((np.ascontiguousarray(read_square(io.BytesIO(data), image_size, mode)), label))
        except Exception as exc:  # noqa: BLE001  any unreadable sample is skipped and counted
            out.append((f"{key} in {Path(url).name}: {type(exc).__name__}", label))
    return out


def colour_mode(first_shard: str) -> str:
    from PIL import Image

    modes = []
    for _, data, _ in samples(first_shard):
        if data is not None:
            with Image.open(io.BytesIO(data)) as image:
                modes.append(image.mode)
        if len(modes) == 16:
            break
    return "L" if modes and all(m in ("L", "LA", "1", "I;16", "I") for m in modes) else "RGB"


def class_names(shards: list[str], labels: np.ndarray) -> tuple[str, ...] | None:
    if not len(labels) or labels.max() < 0:
        return None
    names_file = Path(shards[0]).parent / "classes.json"
    if names_file.is_file():
        names = json.loads(names_file.read_text())
        if isinstance(names, list) and len(names) > labels.max():
            return tuple(str(n) for n in names)
    return tuple(str(i) for i in range(int(labels.max()) + 1))


def load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    check_split(split)
    if data_dir is None:
        raise UserError("webdataset needs --data-dir: a folder of .tar shards, a brace pattern or a URL")
    webdataset()
    shards = shard_urls(str(data_dir))
    mode = {1: "L", 3: "RGB", None: None}[channels] or colour_mode(shards[0])
    folder, cached = open_cache(shards_key(shards, image_size, mode), [(s, image_size, mode) for s in shards],
                                decode_shard, len(shards), str(data_dir), unit="shard")
    if not cached["count"]:
        raise UserError(f"none of the samples in {data_dir} holds a readable image")
    split_test = cached["sources"] >= 20
    if split == "test" and not split_test:
        raise UserError(f"{data_dir} has too few samples for a test split (20 or more are needed)")
    dataset = split_of(folder, cached, lambda index: (index % 10 == 9) == (split == "test") if split_test
                       else np.ones(len(index), dtype=bool))
    n_test = len(split_of(folder, cached, lambda index: index % 10 == 9)) if split_test else 0
    names = class_names(shards, split_of(folder, cached, lambda index: np.ones(len(index), dtype=bool)).labels.numpy())
    info = DataInfo("webdataset", dataset.shape[0], image_size, image_size, len(names) if names else None, names,
                    {"train": cached["count"] - n_test, "test": n_test})
    return dataset, info


def write_shards(folder, out, per_shard: int = 10_000) -> list[Path]:
    """An image folder (class subfolders or flat) as WebDataset shards in the new folder `out`: each sample
    the file's own bytes under its suffix and its class index as cls; classes.json names the classes.
    Written in a temporary folder beside `out` and renamed into place, so `out` is whole or absent."""
    from genforge.core.folders import folder_written_whole
    from genforge.core.progress import progress
    from genforge.plugins.image_folder import find_images

    wds = webdataset()
    files, classes = find_images(Path(folder).expanduser())
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty; give a new folder for the shards")
    with folder_written_whole(out, "shards", f".{out.name}.genforge-shards-") as temporary:
        bar = progress(len(files), f"writing {len(files)} images as shards", unit="image")
        with wds.ShardWriter(str(temporary / "shard-%06d.tar"), maxcount=per_shard, verbose=0) as sink:
            for index, (path, label) in enumerate(files):
                sample = {"__key__": f"{index:09d}", Path(path).suffix.lower().lstrip("."): Path(path).read_bytes()}
                if label >= 0:
                    sample["cls"] = label
                sink.write(sample)
                bar.update(1)
        bar.close()
        if classes:
            (temporary / "classes.json").write_text(json.dumps(classes) + "\n")
    return sorted(out.glob("*.tar"))
