"""Training on two CPU processes (gloo), started by torch's elastic launcher through `genforge train --nproc 2`."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import assert_one_line_error, sample_plugin

from genforge.core.contract import open_dataset
from genforge.core.runs import checkpoint as ckpt
from genforge.core.training.batches import BatchSampler
from genforge.core.training.distributed import Placement

pytestmark = pytest.mark.slow  # starts torch.distributed process groups


def cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "genforge.app.cli", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout)


def test_each_process_takes_a_disjoint_share_of_every_global_batch():
    dataset, _ = open_dataset("digits", "train", image_size=16)
    whole = BatchSampler(dataset, 16, seed=3)
    shares = [BatchSampler(dataset, 16, seed=3, placement=Placement(rank, 2, rank)) for rank in (0, 1)]
    for step in (0, 1, 150):  # 150: a later epoch, reshuffled
        images, labels = whole.batch(step)
        parts = [share.batch(step) for share in shares]
        assert [len(p[0]) for p in parts] == [8, 8]
        ours = torch.cat([p[0] for p in parts])
        assert sorted(map(tuple, ours.flatten(1).tolist())) == sorted(map(tuple, images.flatten(1).tolist()))
        assert not any(torch.equal(a, b) for a in parts[0][0] for b in parts[1][0])


def test_two_processes_match_one_with_the_same_global_batch(install_plugin, tmp_path):
    site = install_plugin("regression_plugin", sample_plugin("regression_plugin"), dist="regression")
    env = {"PYTHONPATH": str(site)}
    common = ["train", "--model", "regression", "--steps", "12", "--image-size", "16", "--batch-size", "16",
              "--sample-every", "0", "--no-progress"]
    one = cli(*common, "--out", tmp_path / "one", env=env)
    two = cli(*common, "--nproc", "2", "--out", tmp_path / "two", env=env)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    a = ckpt.read_checkpoint(ckpt.find_checkpoint(tmp_path / "one")).model
    b = ckpt.read_checkpoint(ckpt.find_checkpoint(tmp_path / "two")).model
    assert ckpt.read_checkpoint(ckpt.find_checkpoint(tmp_path / "two")).step == 12
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_two_processes_end_with_identical_weights_and_only_rank_zero_writes(tmp_path):
    import json

    run = tmp_path / "run"
    result = cli("train", "--nproc", "2", "--steps", "6", "--image-size", "16", "--batch-size", "16",
                 "-o", "g_width=8", "-o", "d_width=8", "--checkpoint-every", "3", "--sample-every", "3",
                 "--no-progress", "--out", run)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    done = [r for r in records if r["kind"] == "distributed"]
    assert len(done) == 1 and done[0]["world_size"] == 2
    assert len(set(done[0]["model_checksums"])) == 1  # BatchNorm statistics included
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == sorted(set(steps)), "one process logs"
    assert [p.name for p in ckpt.step_checkpoints(run / "checkpoints")] == ["step-00000003", "step-00000006"]
    assert result.stdout.count("trained dcgan") == 1


def worker_pids(parent: int) -> dict[int, int]:
    """RANK -> pid of the training processes below `parent` (read from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        env = dict(item.split(b"=", 1) for item in environ if b"=" in item)
        if b"-m\0genforge\0train" in cmdline and b"RANK" in env and b"TORCHELASTIC_RUN_ID" in env:
            if is_descendant(int(entry.name), parent):
                found[int(env[b"RANK"])] = int(entry.name)
    return found


def is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the worker processes")
def test_a_killed_worker_stops_the_run_with_a_message_and_resume_continues(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "genforge.app.cli", "train", "--nproc", "2", "--steps", "400",
               "--image-size", "16", "--batch-size", "16", "-o", "g_width=8", "-o", "d_width=8",
               "--checkpoint-every", "5", "--sample-every", "0", "--no-progress", "--out", str(run)]
    parent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ckpt.step_checkpoints(run / "checkpoints"):
        time.sleep(0.2)
    workers = worker_pids(parent.pid)
    assert set(workers) == {0, 1}, workers
    os.kill(workers[1], signal.SIGKILL)
    killed_at = time.monotonic()
    out, err = parent.communicate(timeout=120)
    assert time.monotonic() - killed_at < 60
    assert parent.returncode == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert "training stopped: process 1" in lines[-1] and "SIGKILL" in lines[-1] and "--resume" in lines[-1]
    assert "Traceback" not in err
    last = ckpt.step_checkpoints(run / "checkpoints")[-1]
    ckpt.read_checkpoint(last)
    resumed = subprocess.run([sys.executable, "-m", "genforge.app.cli", "train", "--resume", str(run),
                              "--nproc", "2", "--steps", str(ckpt.read_checkpoint(last).step + 10), "--no-progress"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert ckpt.read_checkpoint(ckpt.step_checkpoints(run / "checkpoints")[-1]).step == \
        ckpt.read_checkpoint(last).step + 10


@pytest.mark.parametrize("args, fragment", [
    (("--nproc", "3", "--batch-size", "16"), "does not split over 3 processes"),
    (("--nproc", "32", "--batch-size", "16"), "smaller than --nproc 32"),
    (("--nproc", "2", "--device", "cuda"), "cuda"),
    (("--sync-batchnorm",), "--sync-batchnorm needs CUDA"),
])
def test_bad_combinations_are_one_line(args, fragment, genforge_cli, tmp_path):
    if "--device" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_one_line_error(genforge_cli("train", "--steps", "2", *args, "--out", tmp_path / "run", expect=2), fragment)
    assert not (tmp_path / "run").exists()


def test_only_rank_0_logs(install_plugin, tmp_path):
    site = install_plugin("regression_plugin", sample_plugin("regression_plugin"), dist="regression")
    result = cli("train", "--model", "regression", "--steps", "20", "--image-size", "16", "--batch-size", "16",
                 "--sample-every", "0", "--no-progress", "--nproc", "2", "--log-to", "csv", "--out", tmp_path / "run",
                 env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    with (tmp_path / "run" / "metrics.csv").open() as file:
        steps = [line.split(",")[0] for line in file.read().splitlines()[1:]]
    assert steps == ["10", "20"]
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert kinds == ["train", "train", "distributed"]


def test_two_processes_on_an_image_folder_read_every_image_once_per_epoch(install_plugin, tmp_path):
    import hashlib

    import numpy as np
    from PIL import Image

    from genforge.plugins import image_folder

    install_plugin("regression_plugin", sample_plugin("regression_plugin"), dist="regression")
    site = install_plugin("recording_plugin", sample_plugin("recording_plugin"), dist="recording")
    rng = np.random.default_rng(0)
    for i in range(44):  # 40 train images (every tenth file is test): five global batches of 8
        folder = tmp_path / "photos" / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    seen = tmp_path / "seen"
    seen.mkdir()
    env = {"PYTHONPATH": str(site), "GENFORGE_TEST_SEEN": str(seen), "GENFORGE_CACHE": str(tmp_path / "cache")}
    result = cli("train", "--model", "recording", "--dataset", "image-folder", "--data-dir", tmp_path / "photos",
                 "--steps", "5", "--batch-size", "8", "--image-size", "16", "--sample-every", "0", "--no-progress",
                 "--nproc", "2", "--out", tmp_path / "run", env=env)
    assert result.returncode == 0, result.stderr
    ranks = [(seen / f"rank-{rank}.txt").read_text().split()[4:] for rank in (0, 1)]  # after the 4-image probe
    train, _ = image_folder.load("train", 16, None, str(tmp_path / "photos"))
    everything = {hashlib.blake2b(image.numpy().tobytes(), digest_size=8).hexdigest()
                  for image in train.uint8(torch.arange(len(train)))}
    assert len(ranks[0]) == len(ranks[1]) == 20
    assert not set(ranks[0]) & set(ranks[1])
    assert set(ranks[0]) | set(ranks[1]) == everything and len(everything) == 40


def test_an_abort_after_the_last_barrier_is_not_a_failed_run(install_plugin, tmp_path):
    install_plugin("regression_plugin", sample_plugin("regression_plugin"), dist="regression")
    site = install_plugin("aborting_plugin", sample_plugin("aborting_plugin"), dist="aborting")
    result = cli("train", "--model", "aborting", "--steps", "4", "--image-size", "16", "--batch-size", "16",
                 "--sample-every", "0", "--no-progress", "--nproc", "2", "--out", tmp_path / "run",
                 env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    assert ckpt.read_checkpoint(ckpt.find_checkpoint(tmp_path / "run")).step == 4
