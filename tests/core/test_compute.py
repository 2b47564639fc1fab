"""Compute settled once: the default thread count is the free cores, --threads (threads=) overrides it
everywhere, the count reaches what runs explicitly, and reports record what was used
(benchmarks/scripts/busy_machine.py measures the slowdowns)."""

import json

import pytest
import torch
from helpers import assert_one_line_error

from genforge.core import compute as threads


@pytest.mark.parametrize("cores, busy, world, expected", [
    (2, 0.0, 1, 2), (2, 1.0, 1, 1), (2, 2.0, 1, 1), (8, 2.6, 1, 5), (8, 0.0, 2, 4), (1, 0.0, 1, 1)])
def test_the_default_is_the_cores_nobody_else_uses(cores, busy, world, expected, monkeypatch):
    monkeypatch.setattr(threads, "cores_available", lambda: cores)
    monkeypatch.setattr(threads, "busy_cores", lambda sample_s=0.05: busy)
    assert threads.default_threads(world) == expected


def test_busy_cores_reads_a_plausible_share_of_this_machine():
    import os

    busy = threads.busy_cores(0.05)
    assert 0.0 <= busy <= len(os.sched_getaffinity(0)) + 1e-6


def test_threads_reach_torch_and_the_run_config_and_the_report(genforge_cli, tmp_path):
    before = torch.get_num_threads()
    try:
        genforge_cli("train", "--steps", "2", "--image-size", "16", "--batch-size", "16", "-o", "g_width=8",
                     "-o", "d_width=8", "--threads", "1", "--no-progress", "--out", tmp_path / "run")
        assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["threads"] == 1
        assert torch.get_num_threads() == 1
        genforge_cli("bench", tmp_path / "run", "--backend", "torch", "--batch", "1", "--warmup-s", "0",
                     "--duration-s", "0.05", "--threads", "1", "--json", tmp_path / "b.json")
        recorded = json.loads((tmp_path / "b.json").read_text())["environment"]["threads"]
        assert recorded["threads"] == 1 and recorded["chosen"] == "--threads" and "load_average" in recorded
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("command", [("train",), ("sample", "x.onnx"), ("evaluate", "x.onnx"), ("bench", "x.onnx"),
                                     ("export", "onnx", "run", "--out", "x.onnx"), ("run",)])
def test_every_computing_command_takes_threads_and_checks_them(command, genforge_cli):
    assert_one_line_error(genforge_cli(*command, "--threads", "0", expect=2), "--threads")


def test_a_noisy_row_is_flagged():
    from genforge.benchmarks.rows import row_cells

    row = {"target": "t", "backend": "torch", "batch": 1, "status": "ok", "throughput_img_s": 10.0,
           "first_call_s": 0.1, "stats": {"median_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0, "cv": 0.45}}
    assert "noisy" in row_cells(row)[6]
    row["stats"]["cv"] = 0.05
    assert "noisy" not in row_cells(row)[6]


def test_the_users_omp_num_threads_is_the_default_and_genforges_own_is_not(monkeypatch):
    """OMP_NUM_THREADS set by the user is the default count; the value a genforge parent process gave its
    children is not mistaken for the user's."""
    from genforge.core.compute import OURS, decide

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv(OURS, raising=False)
    assert (decide().threads, decide().chosen) == (1, "OMP_NUM_THREADS")
    assert (decide(2).threads, decide(2).chosen) == (2, "--threads")
    monkeypatch.setenv(OURS, "1")  # what a genforge parent process exported
    assert decide().chosen == "free cores"
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    monkeypatch.delenv(OURS)
    assert decide().chosen == "free cores", "a value that is not a count is ignored"


def test_settling_changes_torch_and_nothing_else_in_the_process(monkeypatch):
    """No thread state of genforge's own and no environment change: the count travels in the Compute."""
    import os

    from genforge.core import compute

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    before_env, before_torch = dict(os.environ), torch.get_num_threads()
    try:
        settled = compute.settle(1)
        assert settled.threads == 1 and torch.get_num_threads() == 1
        assert dict(os.environ) == before_env
    finally:
        torch.set_num_threads(before_torch)
    mutable = [name for name, value in vars(compute).items()
               if not name.startswith("__") and isinstance(value, dict | list | set)]
    assert not mutable, f"module-level state in core/compute.py: {mutable}"


def test_children_get_their_share_unless_the_user_chose(monkeypatch):
    from genforge.core.compute import OURS, Compute

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    children = Compute(8, "free cores", 8).child_environment(processes=2)
    assert children["OMP_NUM_THREADS"] == children[OURS] == "4"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv(OURS, raising=False)
    assert Compute(8, "OMP_NUM_THREADS", 8).child_environment(processes=2)["OMP_NUM_THREADS"] == "3"


@pytest.mark.parametrize("bad", [0, -1, 1025, 2.0, True, "4"])
def test_one_rule_for_a_thread_count_everywhere(bad, tmp_path):
    """The Python API, pipeline files and the training options refuse the same counts in one line."""
    import genforge
    from genforge.core.errors import UserError
    from genforge.core.runs.config import config_from_dict

    for call in (lambda: genforge.sample(tmp_path, threads=bad), lambda: genforge.evaluate(tmp_path, threads=bad),
                 lambda: genforge.bench(tmp_path, threads=bad),
                 lambda: genforge.export(tmp_path, out=tmp_path / "x.onnx", threads=bad),
                 lambda: config_from_dict({"threads": bad})):
        with pytest.raises(UserError, match="threads"):
            call()
