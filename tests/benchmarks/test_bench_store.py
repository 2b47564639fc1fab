"""The benchmark results store (benchmarks/store.py) on SQLite and a real PostgreSQL: recording, concurrent
writers, damaged and foreign databases, and `genforge bench record` / `bench --record`."""

import json
import subprocess
import sys
import time

import pytest
from helpers import ENVIRONMENT, ROW, assert_one_line_error, fake_report, sample_plugin

from genforge.benchmarks.store import fingerprint_of, machine_of, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A store URL or path on each engine; PostgreSQL gets a fresh database of its own per test."""
    if request.param == "sqlite":
        return str(tmp_path / "bench.sqlite")
    import sqlalchemy as sa

    server = request.getfixturevalue("postgres_url")
    name = f"genforge_{abs(hash(request.node.nodeid)) % 10**9}_{time.monotonic_ns() % 10**6}"
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server.rsplit("/", 1)[0] + "/" + name


def test_a_record_keeps_every_row_with_its_samples_commit_branch_and_machine(store):
    report = fake_report({ROW: 10.0, ("m.onnx", "ort-cpu", 8): 40.0})
    with open_store(store) as opened:
        record = opened.record(report, "abc123", "main")
        records = opened.records()
        rows = opened.rows([record.id])[record.id]
    assert [(r.commit, r.branch, r.fingerprint) for r in records] == [("abc123", "main", record.fingerprint)]
    assert record.fingerprint == fingerprint_of(machine_of(ENVIRONMENT))
    assert records[0].machine["cpu"] == "Test CPU" and records[0].machine["libraries"]["torch"] == "2.13.0"
    assert "genforge" not in records[0].machine["libraries"], "genforge's own version is what history measures"
    assert [(r["target"], r["batch"]) for r in rows] == [("m.onnx", 1), ("m.onnx", 8)], "skipped rows kept out"
    assert rows[0]["samples_ms"] == report["rows"][0]["samples_ms"]


def test_the_machine_fingerprint_changes_with_cpu_threads_gpu_and_libraries():
    base = fingerprint_of(machine_of(ENVIRONMENT))
    changes = [("cpu", {**ENVIRONMENT["cpu"], "model": "Other CPU"}),
               ("cpu", {**ENVIRONMENT["cpu"], "flags": ["avx2", "avx512f"]}),
               ("threads", {"requested": 2, "torch": 2}),
               ("gpu", {"name": "NVIDIA H100", "driver": "580"}),
               ("versions", {**ENVIRONMENT["versions"], "onnxruntime": "1.21.0"})]
    prints = {fingerprint_of(machine_of({**ENVIRONMENT, key: value})) for key, value in changes}
    assert base not in prints and len(prints) == len(changes)
    same = {**ENVIRONMENT, "versions": {**ENVIRONMENT["versions"], "genforge": "9.9"}}
    assert fingerprint_of(machine_of(same)) == base


WRITER = """
import sys, time
sys.path[:0] = [{here!r}, {tests!r}]  # this module's folder, and tests/ for its helpers
from helpers import fake_report
from genforge.benchmarks.store import open_store
with open_store(sys.argv[1]) as store:
    for i in range(int(sys.argv[3])):
        store.record(fake_report({{("m.onnx", "ort-cpu", 1): 10.0, ("m.onnx", "ort-cpu", 8): 30.0}}, seed=i),
                     sys.argv[2] + "-" + str(i), "main")
"""


def test_concurrent_writers_lose_nothing(store, tmp_path):
    """Four processes record into one new store at the same moment (creating it too): every record and row arrives."""
    script = tmp_path / "writer.py"
    here = __import__("pathlib").Path(__file__).parent
    script.write_text(WRITER.format(here=str(here), tests=str(here.parent)))
    writers = [subprocess.Popen([sys.executable, str(script), store, f"job{j}", "10"], stderr=subprocess.PIPE,
                                text=True) for j in range(4)]
    errors = [w.communicate(timeout=240)[1] for w in writers]
    assert all(w.returncode == 0 for w in writers), errors
    with open_store(store) as opened:
        records = opened.records()
        rows = opened.rows([r.id for r in records])
    assert sorted(r.commit for r in records) == sorted(f"job{j}-{i}" for j in range(4) for i in range(10))
    assert all(len(rows[r.id]) == 2 for r in records)


def test_cli_records_a_report_and_bench_records_as_it_runs(store, tmp_path, genforge_cli, install_plugin,
                                                              monkeypatch):
    install_plugin("fake_backend_plugin", sample_plugin("fake_backend_plugin"), dist="fake-bench")
    (tmp_path / "model.onnx").write_bytes(b"fast")
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.setenv("CI_COMMIT_SHA", "cafe0001")
    monkeypatch.setenv("CI_COMMIT_REF_NAME", "feature")
    result = genforge_cli("bench", tmp_path / "model.onnx", "--backend", "fake", "--batch", "1,2", "--warmup-s",
                          "0.01", "--duration-s", "0.05", "--json", tmp_path / "r.json", "--record", "--store", store)
    assert "recorded 2 row(s) of commit cafe0001 on feature" in result.stdout
    genforge_cli("bench", "record", tmp_path / "r.json", "--store", store, "--commit", "beef0002", "--branch", "main")
    with open_store(store) as opened:
        records = opened.records()
        assert [(r.commit, r.branch) for r in records] == [("cafe0001", "feature"), ("beef0002", "main")]
        assert opened.rows([records[1].id])[records[1].id][0]["samples_ms"] == \
            json.loads((tmp_path / "r.json").read_text())["rows"][0]["samples_ms"]


def test_a_damaged_or_foreign_database_file_is_one_line_and_left_alone(tmp_path, genforge_cli):
    (tmp_path / "r.json").write_text(json.dumps(fake_report({ROW: 10.0})))
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    foreign = tmp_path / "foreign.sqlite"
    import sqlite3

    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE users (name TEXT)")
    foreign_bytes = foreign.read_bytes()
    text = tmp_path / "notes.txt"
    text.write_text("my notes\n" * 100)
    for path, fragment in ((damaged, "not a SQLite database"), (text, "not a SQLite database"),
                           (foreign, "not a genforge benchmark store")):
        before = path.read_bytes()
        assert_one_line_error(genforge_cli("bench", "record", tmp_path / "r.json", "--store", path, "--commit", "a1",
                                           expect=2), fragment)
        assert_one_line_error(genforge_cli("bench", "history", "--store", path, expect=2), fragment)
        assert path.read_bytes() == before
    assert foreign.read_bytes() == foreign_bytes


def test_store_mistakes_are_one_line(tmp_path, genforge_cli, monkeypatch):
    (tmp_path / "r.json").write_text(json.dumps(fake_report({ROW: 10.0})))
    record = ("bench", "record", tmp_path / "r.json")
    assert_one_line_error(genforge_cli(*record, "--store", "postgresql+psycopg://nobody@127.0.0.1:1/none",
                                       "--commit", "a1", expect=2), "127.0.0.1")
    assert_one_line_error(genforge_cli(*record, "--store", "nosuchdb://x/y", "--commit", "a1", expect=2), "--store")
    assert_one_line_error(genforge_cli(*record, "--store", tmp_path, "--commit", "a1", expect=2), "is a folder")
    assert_one_line_error(genforge_cli(*record, "--store", tmp_path / "s.sqlite", "--commit", "a b", expect=2),
                          "--commit")
    for name in ("GITHUB_SHA", "CI_COMMIT_SHA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # not a git checkout
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert_one_line_error(genforge_cli(*record, "--store", tmp_path / "s.sqlite", expect=2), "--commit")
    assert_one_line_error(genforge_cli("bench", "history", "--store", tmp_path / "none.sqlite", expect=2),
                          "no benchmark store")
    assert not (tmp_path / "s.sqlite").exists() and not (tmp_path / "none.sqlite").exists()
    assert_one_line_error(genforge_cli("bench", tmp_path / "r.json", "--store", "x.sqlite", expect=2), "--record")


def test_the_python_api_records_a_report_and_refuses_in_python_terms(tmp_path, install_plugin, monkeypatch):
    import genforge
    from genforge.core.errors import UserError

    install_plugin("fake_backend_plugin", sample_plugin("fake_backend_plugin"), dist="fake-bench")
    (tmp_path / "model.onnx").write_bytes(b"fast")
    report = genforge.bench(tmp_path / "model.onnx", backends=["fake"], batches=[1], warmup_s=0.01, duration_s=0.05)
    record = report.record(tmp_path / "s.sqlite", commit="f00d", branch="main")
    assert record.commit == "f00d" and "recorded 1 row(s)" in record.line
    with open_store(tmp_path / "s.sqlite") as opened:
        assert [r.commit for r in opened.records()] == ["f00d"]
    with pytest.raises(UserError, match="store="):
        report.record(123, commit="f00d")
    with pytest.raises(UserError, match="commit="):
        report.record(tmp_path / "s.sqlite", commit="two words")
    assert not (tmp_path / "123").exists()


def test_the_default_store_is_genforge_bench_store_else_the_cache(tmp_path, genforge_cli, genforge_cache, monkeypatch):
    (tmp_path / "r.json").write_text(json.dumps(fake_report({ROW: 10.0})))
    monkeypatch.delenv("GENFORGE_BENCH_STORE", raising=False)
    genforge_cli("bench", "record", tmp_path / "r.json", "--commit", "a1")
    assert (genforge_cache / "bench-history.sqlite").is_file()
    monkeypatch.setenv("GENFORGE_BENCH_STORE", str(tmp_path / "team.sqlite"))
    genforge_cli("bench", "record", tmp_path / "r.json", "--commit", "a2")
    with open_store(tmp_path / "team.sqlite") as opened:
        assert [r.commit for r in opened.records()] == ["a2"]
