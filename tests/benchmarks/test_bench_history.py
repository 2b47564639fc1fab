"""History and change points (benchmarks/history.py, changepoints.py), `bench history`, and the false-alarm
guards of `bench compare`: --confirm reruns, the Markdown summary, machines flagged."""

import json

import numpy as np
import pytest
from helpers import ENVIRONMENT, ROW, assert_one_line_error, fake_report, sample_plugin

from genforge.benchmarks.changepoints import find_steps
from genforge.benchmarks.confirm import confirm_regressions
from genforge.benchmarks.history import build_history
from genforge.benchmarks.store import open_store


def noisy(levels, rng, noise=0.10):
    return np.asarray(levels) * (1 + rng.uniform(-noise, noise, len(levels)))


def test_a_step_is_found_at_its_commit_with_size_and_confidence():
    rng = np.random.default_rng(3)
    steps = find_steps(noisy([10.0] * 20 + [12.0] * 20, rng, 0.03))
    assert len(steps) == 1
    step = steps[0]
    assert step.index == 20 and step.change == pytest.approx(0.2, abs=0.03) and step.confidence > 0.99
    assert step.first_possible <= 20 <= step.last_possible
    assert step.before_ms == pytest.approx(10, rel=0.03) and step.after_ms == pytest.approx(12, rel=0.03)


def test_flat_noisy_histories_show_no_step():
    rng = np.random.default_rng(4)
    false_steps = sum(bool(find_steps(noisy([10.0] * 40, rng))) for _ in range(40))
    assert false_steps <= 2, "alpha 0.01: a false step in 40 flat histories is rare"


def test_two_steps_both_ways_and_the_minimum_effect():
    rng = np.random.default_rng(5)
    steps = find_steps(noisy([10.0] * 15 + [13.0] * 15 + [10.5] * 15, rng, 0.02))
    assert [s.index for s in steps] == [15, 30] and steps[0].change > 0 > steps[1].change
    small = find_steps(noisy([10.0] * 20 + [10.3] * 20, rng, 0.001))
    assert small == [], "3% is below the default minimum effect of 5%"
    assert [s.index for s in find_steps(noisy([10.0] * 20 + [10.3] * 20, rng, 0.001), min_effect=0.02)] == [20]
    assert find_steps([10.0, 12.0, 10.0]) == [], "too short for a step with two commits each side"


def record_history(store, medians, fingerprint_env=None, branch="main", prefix="c"):
    with open_store(store) as opened:
        for i, median in enumerate(medians):
            opened.record(fake_report({ROW: median}, seed=i, environment=fingerprint_env), f"{prefix}{i:03d}", branch)


def test_history_pools_a_commit_and_never_mixes_machines(tmp_path):
    store = tmp_path / "s.sqlite"
    record_history(store, [10.0] * 10 + [13.0] * 10)
    other = {**ENVIRONMENT, "cpu": {**ENVIRONMENT["cpu"], "model": "Faster CPU"}}
    record_history(store, [5.0] * 6, other, prefix="c")  # the same commits timed on another machine
    record_history(store, [10.0], branch="main", prefix="c")  # c000 again on the first machine: pooled
    with open_store(store) as opened:
        history = build_history(opened)
    assert len(history) == 2 and {s.machine["cpu"] for s in history} == {"Test CPU", "Faster CPU"}
    first = next(s for s in history if s.machine["cpu"] == "Test CPU")
    assert len(first.points) == 20 and first.points[0].runs == 2
    assert [(s.index, round(s.change, 1)) for s in first.steps] == [(10, 0.3)]
    other_series = next(s for s in history if s.machine["cpu"] == "Faster CPU")
    assert other_series.steps == [] and all(p.median_ms < 6 for p in other_series.points)


def test_history_command_prints_plots_summarizes_and_fails_on_a_recent_slowdown(tmp_path, genforge_cli):
    store = tmp_path / "s.sqlite"
    record_history(store, [10.0] * 12 + [12.5] * 3)
    out = tmp_path / "plots"
    result = genforge_cli("bench", "history", "--store", store, "--plots", out, "--summary", tmp_path / "h.md",
                          "--plot-url", "https://ci.example/plots", "--fail-recent", "3", expect=1)
    assert "% slower from commit c012" in result.stdout and "regression" in result.stderr
    pngs = list(out.glob("history-*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:4] == b"\x89PNG"
    assert pngs[0].name in (out / "index.html").read_text() or "<img" in (out / "index.html").read_text()
    summary = (tmp_path / "h.md").read_text()
    assert "| c012" in summary and f"(https://ci.example/plots/{pngs[0].name})" in summary
    assert "Test CPU" in summary
    genforge_cli("bench", "history", "--store", store, "--fail-recent", "2")  # the step began 3 commits ago
    genforge_cli("bench", "history", "--store", store, "--branch", "main")
    assert_one_line_error(genforge_cli("bench", "history", "--store", store, "--branch", "nope", expect=2),
                          "no benchmark rows")
    assert_one_line_error(genforge_cli("bench", "history", "--store", store, "--min-effect", "lots", expect=2),
                          "--min-effect")


# -- compare --confirm ----------------------------------------------------------------------------------
def compared(verdicts):
    return [{"target": "m.onnx", "backend": "b", "batch": i, "verdict": v, "ratio": 1.2, "ci_low": 1.1,
             "ci_high": 1.3, "base_median_ms": 1.0, "new_median_ms": 1.2} for i, v in enumerate(verdicts)]


def test_confirm_reruns_only_the_slower_rows_and_keeps_those_every_rerun_agrees_on(monkeypatch):
    import genforge.benchmarks.confirm as measure

    asked = []
    rerun_verdicts = iter([{0: "slower", 2: "same"}, {0: "slower"}])

    def rerun(keys):
        asked.append(sorted(k[2] for k in keys))
        return None, {"rows": [{"key": k} for k in keys], "verdicts": next(rerun_verdicts)}

    monkeypatch.setattr(measure, "compare_reports", lambda base, fresh, *a: [
        {"target": "m.onnx", "backend": "b", "batch": b, "verdict": v} for b, v in fresh["verdicts"].items()])
    rows = confirm_regressions({"rows": [1]}, {"rows": [1]}, compared(["slower", "same", "slower", "faster"]), rerun,
                               reruns=2)
    assert asked == [[0, 2], [0]]
    assert [(r["verdict"], r["reruns"]) for r in rows] == [("slower", 2), ("same", 0), ("unconfirmed", 1),
                                                          ("faster", 0)]


def test_with_a_fresh_base_a_confirmed_row_is_slower_in_every_pairing():
    """A lucky-fast first BASE run alone cannot fail the build: NEW runs are compared with every BASE run."""
    rng = np.random.default_rng(0)
    lucky_base = fake_report({ROW: 8.0}, seed=1, noise=0.01)
    new = fake_report({ROW: 10.0}, seed=2, noise=0.01)
    from genforge.benchmarks.measure import compare_reports

    rows = compare_reports(lucky_base, new)
    assert rows[0]["verdict"] == "slower"
    honest = lambda keys: (fake_report({ROW: 10.0}, seed=int(rng.integers(100)), noise=0.01),  # noqa: E731
                           fake_report({ROW: 10.0}, seed=int(rng.integers(100)), noise=0.01))
    assert confirm_regressions(lucky_base, new, [dict(r) for r in rows], honest)[0]["verdict"] == "unconfirmed"
    slow_again = lambda keys: (fake_report({ROW: 8.0}, seed=3, noise=0.01),  # noqa: E731
                               fake_report({ROW: 10.0}, seed=4, noise=0.01))
    assert confirm_regressions(lucky_base, new, [dict(r) for r in rows], slow_again)[0]["verdict"] == "slower"


@pytest.fixture
def fake_backend(install_plugin):
    install_plugin("fake_backend_plugin", sample_plugin("fake_backend_plugin"), dist="fake-bench")


def bench_json(genforge_cli, tmp_path, name, content):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.onnx").write_bytes(content)
    genforge_cli("bench", folder / "model.onnx", "--backend", "fake", "--batch", "1", "--warmup-s", "0.02",
                 "--min-iters", "30", "--duration-s", "0.15", "--json", folder / "r.json")
    return folder / "r.json"


def test_compare_confirm_fails_a_real_slowdown_and_clears_a_one_off(fake_backend, genforge_cli, tmp_path):
    base = bench_json(genforge_cli, tmp_path, "base", b"fast")
    slow = bench_json(genforge_cli, tmp_path, "slow", b"slow")
    result = genforge_cli("bench", "compare", base, slow, "--confirm", "--summary", tmp_path / "c.md", expect=1)
    assert "slower" in result.stdout and "regression" in result.stderr
    summary = (tmp_path / "c.md").read_text()
    assert "1 slower" in summary and "| slower | 1 |" in summary
    # one unlucky run: NEW's samples were 40% slow, its target is not
    unlucky = json.loads(base.read_text())
    row = unlucky["rows"][0]
    row["samples_ms"] = [s * 1.4 for s in row["samples_ms"]]
    row["stats"] = {k: (v * 1.4 if k.endswith("_ms") else v) for k, v in row["stats"].items()}
    (tmp_path / "unlucky.json").write_text(json.dumps(unlucky))
    genforge_cli("bench", "compare", base, tmp_path / "unlucky.json", expect=1)
    result = genforge_cli("bench", "compare", base, tmp_path / "unlucky.json", "--confirm", "--summary",
                          tmp_path / "u.md")
    assert "unconfirmed" in result.stdout and "1 unconfirmed" in (tmp_path / "u.md").read_text()


def test_compare_flags_reports_from_different_machines(genforge_cli, tmp_path):
    base, new = fake_report({ROW: 10.0}), fake_report({ROW: 10.0}, seed=1)
    new["environment"] = {**ENVIRONMENT, "cpu": {**ENVIRONMENT["cpu"], "model": "Other CPU"}}
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "n.json").write_text(json.dumps(new))
    result = genforge_cli("bench", "compare", tmp_path / "b.json", tmp_path / "n.json", "--summary", tmp_path / "s.md")
    assert "different machines" in result.stderr and "Other CPU" in result.stderr
    assert "different machines" in (tmp_path / "s.md").read_text()
    assert_one_line_error(genforge_cli("bench", "compare", tmp_path / "b.json", tmp_path / "n.json", "--alpha", "2",
                                       expect=2), "--alpha")
