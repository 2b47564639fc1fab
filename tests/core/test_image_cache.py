"""Image folders decoded once into a uint8 cache and read a batch at a time: the same images as decoding
them directly, rebuilt when the folder changes, never half written, disjoint shards per rank."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

from genforge.core.training.batches import BatchSampler
from genforge.core.training.distributed import Placement
from genforge.plugins import image_folder


def make_folder(root, n=40, size=12, classes=("a", "b")):
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / classes[i % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    return root


def caches(cache):
    root = cache / "images"
    return sorted(p.name for p in root.iterdir() if p.name != ".locks") if root.exists() else []


def test_the_cache_holds_what_direct_decoding_gives_and_is_built_once(tmp_path, genforge_cache, monkeypatch):
    from genforge.core import image_cache

    builds = []
    build = image_cache.build
    monkeypatch.setattr(image_cache, "build", lambda *args: (builds.append(args[0]), build(*args)))
    root = make_folder(tmp_path / "photos")
    train, info = image_folder.load("train", 8, None, str(root))
    test, _ = image_folder.load("test", 8, None, str(root))
    assert len(builds) == 1 and len(caches(genforge_cache)) == 1
    files, _ = image_folder.find_images(root)
    expected = image_folder.read_square(files[0][0], 8, "RGB").transpose(2, 0, 1)
    images, labels = train.batch(torch.tensor([0]))
    assert np.array_equal(train.uint8(torch.tensor([0]))[0].numpy(), expected)
    assert images.shape == (1, 3, 8, 8) and float(images.min()) >= -1 and float(images.max()) <= 1
    assert len(train) == 36 and len(test) == 4 and info.split_sizes == {"train": 36, "test": 4}
    assert sorted(train.labels.tolist()) == sorted([f[1] for i, f in enumerate(files) if i % 10 != 9])


def test_a_changed_folder_gets_a_new_cache_and_an_open_one_keeps_reading_the_old_images(tmp_path, genforge_cache):
    root = make_folder(tmp_path / "photos")
    train, _ = image_folder.load("train", 8, None, str(root))
    before = train.uint8(torch.arange(len(train))).clone()
    first = root / "a" / "00000.png"
    Image.new("RGB", (12, 16), "white").save(first)
    os.utime(first, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert torch.equal(train.uint8(torch.arange(len(train))), before)
    changed, _ = image_folder.load("train", 8, None, str(root))
    assert len(caches(genforge_cache)) == 2
    assert int(changed.uint8(torch.tensor([0]))[0].min()) == 255


def test_unreadable_images_are_counted_and_reported_once(tmp_path, genforge_cache, capfd):
    root = make_folder(tmp_path / "photos")
    (root / "a" / "broken.png").write_bytes(b"not a png")
    image_folder.load("train", 8, None, str(root))
    said = capfd.readouterr().err
    assert "skipped 1 unreadable image(s)" in said and "broken.png" in said
    image_folder.load("train", 8, None, str(root))
    assert "unreadable" not in capfd.readouterr().err


def test_cache_files_get_the_umask_mode(tmp_path, genforge_cache):
    root = make_folder(tmp_path / "photos")
    old = os.umask(0o022)
    try:
        image_folder.load("train", 8, None, str(root))
    finally:
        os.umask(old)
    (name,) = caches(genforge_cache)
    folder = genforge_cache / "images" / name
    assert {oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {"0o644"}
    assert oct(folder.stat().st_mode & 0o777) == "0o755"


def test_a_build_killed_midway_leaves_no_half_cache_and_the_next_build_cleans_up(tmp_path, genforge_cache):
    root = make_folder(tmp_path / "photos", n=3000, size=48)
    code = ("import sys\nfrom genforge.plugins import image_folder\n"
            "image_folder.load('train', 32, None, sys.argv[1])\n")
    env = {**os.environ, "GENFORGE_CACHE": str(genforge_cache), "GENFORGE_DATA_WORKERS": "1"}
    process = subprocess.Popen([sys.executable, "-c", code, str(root)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        building = list((genforge_cache / "images").glob(".building-*/images.u8")) if (
            genforge_cache / "images").exists() else []
        if building and building[0].stat().st_size > 0:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert building, "the build never started"
    assert [name for name in caches(genforge_cache) if not name.startswith(".building-")] == []
    train, _ = image_folder.load("train", 32, None, str(root))
    assert len(train) == 2700 and caches(genforge_cache) == [train.folder.name]


def test_ranks_read_disjoint_shards_that_together_are_the_epoch(tmp_path, genforge_cache):
    root = make_folder(tmp_path / "photos", n=100)
    train, _ = image_folder.load("train", 8, None, str(root))
    read = train.batch
    seen = {0: [], 1: []}
    for rank in (0, 1):
        train.batch = lambda indices, rank=rank: (seen[rank].extend(indices.tolist()), read(indices))[1]
        sampler = BatchSampler(train, 10, seed=3, placement=Placement(rank=rank, world_size=2, local_rank=rank))
        for step in range(sampler.steps_per_epoch):
            images, _ = sampler.batch(step)
            assert images.shape == (5, 3, 8, 8)
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(90))


def test_an_image_folder_written_as_shards_reads_back_the_same_images_and_trains(tmp_path, genforge_cache,
                                                                                   genforge_cli):
    from genforge.plugins import webdataset_shards

    root = make_folder(tmp_path / "photos", n=60)
    genforge_cli("datasets", "shards", root, "--out", tmp_path / "shards", "--per-shard", "25")
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [
        ".genforge-shards", "classes.json", "shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    from_shards, info = webdataset_shards.load("train", 8, None, str(tmp_path / "shards"))
    from_folder, folder_info = image_folder.load("train", 8, None, str(root))
    everything = torch.arange(len(from_folder))
    assert torch.equal(from_shards.uint8(everything), from_folder.uint8(everything))
    assert torch.equal(from_shards.labels, from_folder.labels)
    assert info.class_names == ("a", "b") and info.split_sizes == folder_info.split_sizes
    pattern = str(tmp_path / "shards" / "shard-{000000..000001}.tar")
    assert len(webdataset_shards.load("train", 8, None, pattern)[0]) == 45
    genforge_cli("train", "--dataset", "webdataset", "--data-dir", tmp_path / "shards", "--steps", "2",
                 "--image-size", "16", "--batch-size", "8", "-o", "g_width=8", "-o", "d_width=8", "--out",
                 tmp_path / "run")
    assert (tmp_path / "run" / "samples.png").is_file()


def test_shards_of_a_missing_place_or_into_a_full_folder_are_one_line(tmp_path, genforge_cli):
    from helpers import refused

    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep me")
    root = make_folder(tmp_path / "photos", n=4)
    refused(genforge_cli, ("datasets", "shards", root, "--out", full), ["full"], [full])
    refused(genforge_cli, ("train", "--dataset", "webdataset", "--data-dir", tmp_path / "none-{0..3}.tar",
                           "--out", tmp_path / "r"), ["does not exist"])
    assert not (tmp_path / "r").exists()


def test_a_long_build_shows_progress_and_a_short_one_stays_quiet(capfd):
    from genforge.core.progress import LineProgress

    quiet = LineProgress(10, "short work", "image", delay=60)
    for _ in range(10):
        quiet.update()
    quiet.close()
    shown = LineProgress(10, "long work", "image")
    for _ in range(10):
        shown.update()
    err = capfd.readouterr().err
    assert "short work" not in err and err.count("long work") == 10
