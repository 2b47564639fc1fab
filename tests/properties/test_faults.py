"""genforge keeps its promises when things break: a full disk, read-only places, two writers, signals, kill -9
during export, a crash folder that cannot be written. Commands whose answer comes from genforge's entry point
(main: disk errors, signals) run in a subprocess.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, copy_run, fingerprint, one_line, refused, run_genforge

from genforge.core.errors import UserError
from genforge.core.runs import checkpoint as ckpt


# -- faults: a full disk, read-only places, two writers, signals, kill -9 ----------------------------------
@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str):
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root (the injected-ENOSPC variant runs instead)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the file system under `folder` until it has no byte left."""
    with contextlib.suppress(OSError), open(folder / "filler", "wb") as out:
        while True:
            out.write(b"\0" * 4096)
            out.flush()
            os.fsync(out.fileno())


INJECT_ENOSPC = ("import errno, os, sys\n"
                 "def full(fd):\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
                 "os.fsync = full\n"
                 "from genforge.app.cli import main\nmain(sys.argv[1:])\n")


def genforge_with_full_disk(*args) -> subprocess.CompletedProcess:
    """genforge with every fsync failing as on a full disk (the variant that needs no root)."""
    return subprocess.run([sys.executable, "-c", INJECT_ENOSPC, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_what_was_there(run, exported, tmp_path):
    disk = tmp_path / "disk"
    with mounted_tmpfs(disk, "4m"):
        resumed = copy_run(run, disk / "run")
        shutil.copy(exported, disk / "old.onnx")
        (disk / "old.json").write_text('{"previous": "report"}')
        (disk / "scores.json").write_text('{"previous": "scores"}')
        before = fingerprint(disk)
        fill(disk)
        one_line(run_genforge("train", "--resume", resumed, "--steps", "8", "--no-progress"), 2, "disk is full")
        one_line(run_genforge("export", "onnx", run, "--out", disk / "old.onnx", "--overwrite"), 2, "disk is full")
        one_line(run_genforge("bench", exported, "--batch", "1", "--duration-s", "0.05", "--warmup-s", "0",
                              "--json", disk / "old.json"), 2, "disk is full")
        one_line(run_genforge("evaluate", run, "--n", "100", "--json", disk / "scores.json"), 2, "disk is full")
        (disk / "filler").unlink()
        assert fingerprint(disk) == before, "every earlier file intact"
        assert ckpt.read_checkpoint(ckpt.step_checkpoints(resumed / "checkpoints")[-1]).step == 4


@pytest.mark.slow
def test_an_injected_full_disk_is_one_line_and_keeps_what_was_there(run, exported, tmp_path):
    resumed = copy_run(run, tmp_path / "run")
    old = tmp_path / "old.json"
    old.write_text('{"previous": "report"}')
    before = fingerprint(tmp_path)
    one_line(genforge_with_full_disk("train", "--resume", resumed, "--steps", "8", "--no-progress"), 2, "disk is full")
    one_line(genforge_with_full_disk("bench", exported, "--batch", "1", "--duration-s", "0.05", "--warmup-s", "0",
                                     "--json", old), 2, "disk is full")
    one_line(genforge_with_full_disk("evaluate", run, "--n", "100", "--json", old), 2, "disk is full")
    one_line(genforge_with_full_disk("export", "onnx", run, "--out", tmp_path / "new.onnx"), 2, "disk is full")
    after = fingerprint(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not set(after) - set(before), set(after) - set(before)


@pytest.mark.slow
def test_read_only_run_directory_and_cache(run, tmp_path):
    place = tmp_path / "ro"
    with mounted_tmpfs(place, "16m"):
        frozen = copy_run(run, place / "run")
        (place / "cache").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(place)], check=True)
        one_line(run_genforge("train", "--resume", frozen, "--steps", "8", "--no-progress"), 2, "read-only")
        result = run_genforge("export", "onnx", frozen, "--out", tmp_path / "x.onnx")
        assert result.returncode == 0 and (tmp_path / "x.onnx").is_file(), result.stderr
        result = run_genforge("evaluate", frozen, "--n", "100", env_extra={"GENFORGE_CACHE": str(place / "cache")})
        assert result.returncode == 0 and "could not cache" in result.stderr, result.stderr


def wait_for(condition, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_training(out: Path, *args) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("genforge")
    return subprocess.Popen([str(exe), "train", "--steps", "100000", *TINY, "--checkpoint-every", "50",
                             "--sample-every", "0", *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def logged_steps(out: Path) -> int:
    path = out / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_a_second_writer_on_a_run_directory_is_refused(run, tmp_path):
    busy = copy_run(run, tmp_path / "busy")
    exe = Path(sys.executable).with_name("genforge")
    first = subprocess.Popen([str(exe), "train", "--resume", str(busy), "--steps", "100000", "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: logged_steps(busy) > 6, what="the first resume to train")
        one_line(run_genforge("train", "--resume", busy, "--steps", "100000", "--no-progress"), 2,
                 "in use by genforge process", str(first.pid))
    finally:
        first.kill()
        first.wait()
    result = run_genforge("train", "--resume", busy, "--steps", "10", "--no-progress")
    assert result.returncode == 0 or "already reached" in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_training_between_steps_and_resume_goes_on(sig, status, tmp_path):
    out = tmp_path / "run"
    process = start_training(out)
    wait_for(lambda: logged_steps(out) >= 2, what="training to start")
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert process.returncode == status and len(lines) == 1, (process.returncode, stderr)
    assert "is safe" in lines[0] and f"genforge train --resume {out}" in lines[0], lines[0]
    stopped = ckpt.step_checkpoints(out / "checkpoints")[-1]
    step = ckpt.read_checkpoint(stopped).step
    assert stopped.name in lines[0] and step >= 2
    result = run_genforge("train", "--resume", out, "--steps", str(step + 3), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert ckpt.read_checkpoint(ckpt.step_checkpoints(out / "checkpoints")[-1]).step == step + 3


def test_kill_9_during_export_leaves_nothing_after_the_next_export(run, tmp_path):
    exe = Path(sys.executable).with_name("genforge")
    for _ in range(3):
        process = subprocess.Popen([str(exe), "export", "onnx", str(run), "--out", str(tmp_path / "a.onnx"),
                                    "--precision", "int8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: list(tmp_path.glob(".genforge-export-*")), timeout=60, what="the export to start")
        process.kill()
        process.wait()
        if list(tmp_path.glob(".genforge-export-*")):
            break
    assert list(tmp_path.glob(".genforge-export-*")), "the killed export left its temporary folder"
    result = run_genforge("export", "onnx", run, "--out", tmp_path / "b.onnx")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.onnx"]


def test_the_bug_handler_falls_back_when_the_crash_folder_cannot_be_written(tmp_path):
    code = ("import sys\nfrom genforge.app import cli\n"
            "def boom(*a, **k):\n    raise RuntimeError('planted bug')\n"
            "cli.get_registry = boom\ncli.main(['models'])\n")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the crash folder should be")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "GENFORGE_CRASH_DIR": str(blocker / "crashes")})
    line = one_line(result, 1, "planted bug", "genforge-crash-")
    assert str(blocker) not in line


def test_bad_arguments_from_python_raise_genforge_errors_that_are_value_errors(run):
    from genforge.core import runtime
    from genforge.core.numerics import check_output_values

    with pytest.raises(UserError, match="NaN"):
        check_output_values(np.array([np.nan], dtype=np.float32), "images")
    with pytest.raises(ValueError, match="seed"):
        runtime.load(run).generate(n=2, seed=-3)
    with pytest.raises(UserError, match="memory"):
        runtime.load(run).generate(n=10**12)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_standard_output_on_a_full_device_is_one_line():
    exe = Path(sys.executable).with_name("genforge")
    with open("/dev/full", "w") as full:
        result = subprocess.run([str(exe), "models"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    one_line(result, 2, "cannot write standard output", "disk is full")


def test_a_suite_target_without_a_model_and_a_report_with_wrong_types_are_one_line(genforge_cli, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text("[[targets]]\nname = 'a'\n")
    refused(genforge_cli, ("bench", "suite", suite, "--smoke", "--out", tmp_path / "out"), ["has no model"])
    report = tmp_path / "r.json"
    row = {"target": "t", "target_kind": "onnx", "backend": "ort-cpu", "batch": 1, "status": "ok",
           "samples_ms": [1.0], "stats": {k: 1.0 for k in ("n", "min_ms", "median_ms", "mean_ms", "p90_ms", "p95_ms",
                                                          "p99_ms", "max_ms", "std_ms", "cv")},
           "throughput_img_s": 1.0, "first_call_s": 0.1, "peak_rss_mib": 1.0, "device": "cpu", "gflops": None,
           "peak_share": None}
    row["stats"]["median_ms"] = "fast"
    report.write_text(json.dumps({"schema": "genforge.bench/1", "environment": {}, "settings": {}, "rows": [row]}))
    refused(genforge_cli, ("bench", "compare", report, report), ["not a genforge benchmark report"])


def test_a_damaged_classifier_cache_is_rebuilt_and_plugins_new_refuses_an_unwritable_place(run, genforge_cli,
                                                                                          tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GENFORGE_CACHE", str(cache))
    genforge_cli("evaluate", run, "--n", "100")
    for path in (cache / "classifiers").glob("*"):
        path.write_bytes(b"\x00garbage")
    result = genforge_cli("evaluate", run, "--n", "100")
    assert "fd" in result.stdout
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    refused(genforge_cli, ("plugins", "new", "my-gan", "--kind", "model", "--out", blocker / "pkg"),
            ["cannot be written"])


def test_a_library_warning_or_a_repeated_warning_never_comes_before_the_error_line(tmp_path):
    (tmp_path / "noisylib.py").write_text("import warnings\n\ndef chatter():\n"
                                          "    warnings.warn('a library talking to itself', UserWarning)\n")
    code = ("import sys, warnings\nsys.path.insert(0, sys.argv[1])\nimport noisylib\nfrom genforge.app import cli\n"
            "real = cli.get_registry\n"
            "def noisy():\n    noisylib.chatter()\n"
            "    for line in (1, 2):\n"
            "        warnings.warn_explicit('said once', UserWarning, 'x.py', line, module='genforge.core.data')\n"
            "    return real()\n"
            "cli.get_registry = noisy\ncli.main(['evaluate', sys.argv[1] + '/no-such-run'])\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert lines[0] == "Warning: said once" and lines[1].startswith("Error: ") and len(lines) == 2, result.stderr


def test_ctrl_c_after_the_last_file_was_written_ends_with_one_line(tmp_path):
    code = ("import atexit, os, signal, time\n"
            "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(5)))\n"
            "from genforge.app.cli import main\nmain(['models'])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "dcgan" in result.stdout
    assert result.returncode == 130, result.stderr
    assert result.stderr.splitlines() == ["genforge: interrupted (Ctrl-C) while exiting; every file was already "
                                          "written"], result.stderr
