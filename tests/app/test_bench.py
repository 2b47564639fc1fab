"""Benchmark statistics, measuring, compare and A/B, driven through the public API and the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, sample_plugin

from genforge.benchmarks.measure import Settings, compare_reports, run_ab, run_benchmarks
from genforge.benchmarks.stats import compare_samples, ratio_of_medians, summarize
from genforge.core.errors import UserError


@pytest.fixture
def fake_targets(install_plugin, tmp_path):
    install_plugin("fake_backend_plugin", sample_plugin("fake_backend_plugin"), dist="fake-bench")
    targets = {}
    for name in ("base", "same", "slow"):
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(b"not used by the fake backend")
        targets[name] = path
    return targets


FAST = Settings(batches=(1,), warmup_s=0.02, min_iters=30, duration_s=0.15)


def test_summary_statistics_on_known_samples():
    s = summarize([0.001, 0.002, 0.003, 0.004, 0.010])
    assert s["min_ms"] == 1 and s["max_ms"] == 10 and s["median_ms"] == 3 and s["mean_ms"] == 4
    assert s["std_ms"] == pytest.approx(np.std([1, 2, 3, 4, 10], ddof=1))
    assert s["cv"] == pytest.approx(s["std_ms"] / 4)
    assert s["p90_ms"] == pytest.approx(np.percentile([1, 2, 3, 4, 10], 90))


def test_ratio_and_verdicts_on_known_samples():
    rng = np.random.default_rng(0)
    base = rng.normal(10, 0.3, 200)
    ratio, (low, high) = ratio_of_medians(base, base * 1.25)
    assert ratio == pytest.approx(1.25) and low <= 1.25 <= high
    assert compare_samples(base, base * 1.25)["verdict"] == "slower"
    assert compare_samples(base, base / 1.25)["verdict"] == "faster"
    assert compare_samples(base, rng.normal(10, 0.3, 200))["verdict"] == "same"
    assert compare_samples(base, base * 1.05)["verdict"] == "same", "below the minimum effect"
    tiny_noisy = rng.normal(10, 5, 5)
    assert compare_samples(tiny_noisy, tiny_noisy * 1.3)["verdict"] == "same", "not significant on 5 noisy samples"


def test_planted_slowdown_is_caught_by_compare_and_ab(fake_targets, genforge_cli, tmp_path):
    base = run_benchmarks([fake_targets["base"]], ["fake"], FAST)
    slow = run_benchmarks([fake_targets["slow"]], ["fake"], FAST)
    for report in (base, slow):
        report["rows"][0]["target"] = "model.onnx"
    rows = compare_reports(base, slow)
    assert [r["verdict"] for r in rows] == ["slower"] and rows[0]["ratio"] == pytest.approx(1.25, rel=0.08)
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "slow.json").write_text(json.dumps(slow))
    result = genforge_cli("bench", "compare", tmp_path / "base.json", tmp_path / "slow.json", expect=1)
    assert "slower" in result.stdout and "regression" in result.stderr
    genforge_cli("bench", "compare", tmp_path / "base.json", tmp_path / "base.json")

    a, b = run_ab(fake_targets["base"], fake_targets["slow"], ["fake"], FAST, rounds=4)
    assert [r["verdict"] for r in compare_reports(a, b)] == ["slower"]
    result = genforge_cli("bench", "ab", fake_targets["base"], fake_targets["slow"], "--backend", "fake",
                          "--batch", "1", "--duration-s", "0.15", "--warmup-s", "0.02", "--rounds", "4", expect=1)
    assert "slower" in result.stdout


def test_identical_runs_raise_no_alarm(fake_targets):
    settings = Settings(batches=(1,), warmup_s=0.01, min_iters=20, duration_s=0.06)
    verdicts = []
    for _ in range(20):
        a, b = run_ab(fake_targets["base"], fake_targets["same"], ["fake"], settings, rounds=2)
        verdicts += [r["verdict"] for r in compare_reports(a, b)]
    assert verdicts.count("slower") == 0, verdicts


def test_report_schema_and_environment(fake_targets, tmp_path, genforge_cli):
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    genforge_cli("bench", fake_targets["base"], "--backend", "fake", "--batch", "1,8", "--duration-s", "0.05",
            "--warmup-s", "0.01", "--json", out, "--markdown", md)
    report = json.loads(out.read_text())
    assert report["schema"] == "genforge.bench/1"
    import jsonschema

    from genforge.benchmarks import measure

    schema = json.loads((Path(measure.__file__).parent / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    jsonschema.validate(json.loads((Path(measure.__file__).parent / "baselines" / "cpu.json").read_text()), schema)
    assert {"cpu", "gpu", "versions", "threads"} <= set(report["environment"])
    assert report["environment"]["versions"]["genforge"]
    rows = report["rows"]
    assert [(r["backend"], r["batch"]) for r in rows] == [("fake", 1), ("fake", 8)]
    for row in rows:
        assert set(row["stats"]) >= {"min_ms", "median_ms", "mean_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
                                     "std_ms", "cv"}
        assert len(row["samples_ms"]) >= 10 and row["throughput_img_s"] > 0 and row["gflops"] > 0
        assert row["peak_rss_mib"] > 0 and row["first_call_s"] >= 0
    table = md.read_text()
    assert "| base.onnx | fake | 8 |" in table and "CPU:" in table


def test_every_backend_skip_path_is_reported(train_small, tmp_path, genforge_cli):
    import onnxruntime as ort
    import torch

    run = train_small(tmp_path / "run").out
    quick = Settings(batches=(2,), warmup_s=0.01, min_iters=3, duration_s=0.02)
    report = run_benchmarks([run], ["torch", "ort-cpu", "tensorrt"], quick)
    rows = {r["backend"]: r for r in report["rows"]}
    assert rows["torch"]["status"] == "ok"
    assert rows["ort-cpu"]["status"] == "skipped" and ".onnx" in rows["ort-cpu"]["reason"]
    assert rows["tensorrt"]["status"] == "skipped" and ".engine" in rows["tensorrt"]["reason"]
    from genforge.exporters.onnx import export_onnx

    onnx_path = tmp_path / "m.onnx"
    export_onnx(run, onnx_path)
    report = run_benchmarks([run, onnx_path], ["torch", "ort-cpu", "ort-cuda", "ort-trt"], quick)
    rows = {(r["target"], r["backend"]): r for r in report["rows"]}
    assert set(rows) == {("run", "torch"), ("m.onnx", "ort-cpu"), ("m.onnx", "ort-cuda"), ("m.onnx", "ort-trt")}
    available = ort.get_available_providers()
    for backend, provider in (("ort-cuda", "CUDAExecutionProvider"), ("ort-trt", "TensorrtExecutionProvider")):
        if provider not in available:
            assert rows[("m.onnx", backend)]["status"] == "skipped" and provider in rows[("m.onnx", backend)]["reason"]
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    report = run_benchmarks([engine], None, quick)
    if not torch.cuda.is_available():
        assert [(r["backend"], r["status"]) for r in report["rows"]] == [("tensorrt", "skipped")]
    compiled = run_benchmarks([run], ["torch-compile"], quick)["rows"][0]
    if compiled["status"] == "ok":
        assert compiled["first_call_s"] >= compiled["stats"]["median_ms"] / 1e3
    else:
        assert compiled["status"] == "skipped" and compiled["reason"], compiled


def test_bad_input(train_small, tmp_path, genforge_cli):
    assert_one_line_error(genforge_cli("bench", tmp_path / "nope.onnx", expect=2), "does not exist")
    run = train_small(tmp_path / "run").out
    assert_one_line_error(genforge_cli("bench", run, "--backend", "torchh", expect=2), "unknown backend", "torch")
    assert_one_line_error(genforge_cli("bench", run, "--batch", "0", expect=2), "positive")
    engine = tmp_path / "g.engine"
    engine.write_bytes(b"engine bytes")
    (tmp_path / "g.engine.json").write_text(json.dumps({"profile": {"min": [1, 16, 1, 1], "opt": [8, 16, 1, 1],
                                                                    "max": [16, 16, 1, 1]}}))
    assert_one_line_error(genforge_cli("bench", engine, "--batch", "1,64", expect=2), "covers batch 1 to 16, not 64")
    (tmp_path / "junk.json").write_text("{}")
    assert_one_line_error(genforge_cli("bench", "compare", tmp_path / "junk.json", tmp_path / "junk.json", expect=2),
                          "not a genforge benchmark report")


@pytest.mark.slow
def test_suite_smoke_covers_every_target_and_backend(tmp_path, genforge_cli):
    """The standard suite in smoke form, so it never rots (CI runs this)."""
    result = genforge_cli("bench", "suite", "--smoke", "--out", tmp_path / "suite")
    report = json.loads((tmp_path / "suite" / "suite.json").read_text())
    ok = {(r["target"], r["backend"]) for r in report["rows"] if r["status"] == "ok"}
    assert ("dcgan-2steps", "torch") in ok and ("cgan-2steps", "torch") in ok and ("vae-2steps", "torch") in ok
    for name in ("dcgan-2steps-fp32.onnx", "dcgan-2steps-fp16.onnx", "dcgan-2steps-int8.onnx",
                 "cgan-2steps-int8.onnx", "vae-2steps-fp32.onnx"):
        assert (name, "ort-cpu") in ok, name
    assert all(r["status"] in ("ok", "skipped") for r in report["rows"]), [
        r for r in report["rows"] if r["status"] == "failed"]
    assert "suite.md" in result.stdout


def test_ab_across_two_genforge_installs(train_small, tmp_path, genforge_cli):
    """`--python-a/--python-b` time one target under two installations through worker processes."""
    import sys

    run = train_small(tmp_path / "run").out
    out = tmp_path / "ab.json"
    genforge_cli("bench", "ab", run, "--python-a", sys.executable, "--python-b", sys.executable, "--backend", "torch",
            "--batch", "2", "--duration-s", "0.3", "--warmup-s", "0.05", "--rounds", "3", "--min-effect", "100%",
            "--json", out)
    result = json.loads(out.read_text())
    assert [r["verdict"] for r in result["comparison"]] == ["same"]
    for key in ("a", "b"):
        row = result[key]["rows"][0]
        assert row["backend"] == "torch" and row["batch"] == 2 and len(row["samples_ms"]) >= 3
        assert "genforge" in row["ab_target"] and result[key]["settings"]["python"] == sys.executable
    assert_one_line_error(genforge_cli("bench", "ab", run, expect=2), "two targets")


def test_a_checkpoint_folder_is_a_target(train_small, tmp_path):
    run = train_small(tmp_path / "run", steps=4).out
    report = run_benchmarks([run / "checkpoints" / "step-00000002"], ["torch"],
                            Settings(batches=(2,), warmup_s=0.01, min_iters=3, duration_s=0.02))
    row = report["rows"][0]
    assert row["status"] == "ok" and row["target"] == "run@step-00000002" and row["target_kind"] == "run"


def test_every_row_says_which_timing_it_used(train_small, tmp_path, genforge_cli):
    """CPU rows are host-timed with no end-to-end column; GPU rows (gpu-marked tests) are CUDA-event timed."""
    run = train_small(tmp_path / "run").out
    genforge_cli("bench", run, "--backend", "torch", "--batch", "1", "--warmup-s", "0", "--duration-s", "0.05",
                 "--json", tmp_path / "b.json")
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(r["timing"], r["end_to_end_ms"]) for r in rows] == [("host", None)]
    from genforge.benchmarks.measure import check_report

    report = json.loads((tmp_path / "b.json").read_text())
    report["rows"][0]["timing"] = "stopwatch"
    with pytest.raises(UserError, match="timing"):
        check_report(report, tmp_path / "b.json")


@pytest.mark.gpu
def test_gpu_backends_time_with_cuda_events_and_report_end_to_end(train_small, tmp_path):
    from genforge.benchmarks.measure import Settings, run_benchmarks
    from genforge.exporters.onnx import export_onnx

    run = train_small(tmp_path / "run").out
    export_onnx(run, tmp_path / "g.onnx")
    report = run_benchmarks([run, tmp_path / "g.onnx"], ["torch", "ort-cuda"], Settings((1, 8), 0.1, 5, 0.3))
    gpu_rows = [r for r in report["rows"] if r["status"] == "ok"]
    assert gpu_rows and all(r["timing"] == "cuda-events" and r["end_to_end_ms"] > 0 for r in gpu_rows)


def test_the_share_of_peak_counts_the_threads_the_benchmark_used(fake_targets):
    """A --threads 1 row is measured against one core's peak, not the machine's."""
    from genforge.core.hardware import cpu_peak_gflops

    if cpu_peak_gflops(1)[0] is None:
        pytest.skip("this machine's clock is unknown, so there is no peak")
    row = run_benchmarks([fake_targets["base"]], ["fake"], Settings((1,), 0.0, 5, 0.02, 1))["rows"][0]
    assert row["peak_share"] == pytest.approx(row["gflops"] / cpu_peak_gflops(1)[0])
