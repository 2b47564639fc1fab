"""The benchmark results store: every recorded report's rows with their raw samples, keyed by commit, branch,
time and machine fingerprint, in SQLite (a file) or any database SQLAlchemy reaches (a team's PostgreSQL).

`genforge bench record` and `genforge bench run --record` write here; `genforge bench history` reads.
One record is one transaction, so concurrent CI jobs writing to one store lose nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from genforge.core.errors import UserError
from genforge.core.files import genforge_cache_dir

STORE_SCHEMA = "genforge.benchstore/1"
DEFAULT_STORE_NAME = "bench-history.sqlite"

metadata = sa.MetaData()
meta_table = sa.Table("genforge_store_meta", metadata,
                      sa.Column("key", sa.String(64), primary_key=True),
                      sa.Column("value", sa.Text, nullable=False))
records_table = sa.Table("genforge_bench_records", metadata,
                         sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                         sa.Column("commit_sha", sa.String(64), nullable=False, index=True),
                         sa.Column("branch", sa.String(255)),
                         sa.Column("recorded_at", sa.Float, nullable=False),
                         sa.Column("report_created", sa.Float),
                         sa.Column("fingerprint", sa.String(16), nullable=False, index=True),
                         sa.Column("machine", sa.Text, nullable=False),
                         sa.Column("settings", sa.Text, nullable=False))
rows_table = sa.Table("genforge_bench_rows", metadata,
                      sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                      sa.Column("record_id", sa.Integer, sa.ForeignKey("genforge_bench_records.id"), nullable=False,
                                index=True),
                      sa.Column("target", sa.String(512), nullable=False),
                      sa.Column("backend", sa.String(128), nullable=False),
                      sa.Column("batch", sa.Integer),
                      sa.Column("status", sa.String(16), nullable=False),
                      sa.Column("median_ms", sa.Float),
                      sa.Column("samples_ms", sa.Text),
                      sa.Column("stats", sa.Text))


def default_store() -> Path:
    """Where records go without --store: GENFORGE_BENCH_STORE, else the genforge cache."""
    if os.environ.get("GENFORGE_BENCH_STORE"):
        return Path(os.environ["GENFORGE_BENCH_STORE"])
    return genforge_cache_dir() / DEFAULT_STORE_NAME


def machine_of(environment: dict) -> dict:
    """What makes two reports comparable: CPU model and flags, cores and threads, GPU and driver, libraries."""
    cpu, gpu, versions = environment["cpu"], environment.get("gpu") or {}, environment["versions"]
    return {"cpu": cpu["model"], "flags": sorted(cpu["flags"]), "cores": cpu["cores"],
            "threads": environment["threads"].get("torch"),
            "gpu": gpu.get("name"), "driver": gpu.get("driver"),
            "libraries": {k: v for k, v in sorted(versions.items()) if k != "genforge"}}


def fingerprint_of(machine: dict) -> str:
    return hashlib.sha256(json.dumps(machine, sort_keys=True).encode()).hexdigest()[:12]


def describe_machine(machine: dict) -> str:
    libraries = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items() if v)
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['threads']} threads, "
            f"GPU {machine['gpu'] or 'none'}{' (driver ' + machine['driver'] + ')' if machine['driver'] else ''}; "
            f"{libraries}")


def store_url(store) -> str:
    """A SQLAlchemy URL: a path becomes a SQLite file, anything with '://' is used as it is."""
    text = str(store)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().absolute()}"


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  not a URL at all; the caller reports that
        return url


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def commit_and_branch(commit: str | None, branch: str | None) -> tuple[str, str | None]:
    """The commit and branch given, else what CI says (GitHub Actions, GitLab CI), else git in this folder."""
    commit = commit or os.environ.get("GITHUB_SHA") or os.environ.get("CI_COMMIT_SHA") or _git("rev-parse", "HEAD")
    if not commit:
        raise UserError("no commit to record under: pass --commit SHA (commit= in Python), or run inside a git "
                        "checkout")
    if not isinstance(commit, str) or len(commit) > 64 or not commit.strip() or any(c.isspace() for c in commit):
        raise UserError(f"--commit (commit=) must be one word of at most 64 characters (a SHA or a tag), "
                        f"not {commit!r}")
    branch = (branch or os.environ.get("GITHUB_HEAD_REF") or os.environ.get("GITHUB_REF_NAME")
              or os.environ.get("CI_COMMIT_REF_NAME") or _git("rev-parse", "--abbrev-ref", "HEAD"))
    if branch is not None and (not isinstance(branch, str) or len(branch) > 255):
        raise UserError(f"--branch (branch=) must be a branch name of at most 255 characters, not {branch!r}")
    return commit, branch


@dataclass
class Record:
    id: int
    commit: str
    branch: str | None
    recorded_at: float
    fingerprint: str
    machine: dict
    settings: dict
    line: str = ""  # what was recorded, in one line


def record_report(report: dict, store=None, commit: str | None = None, branch: str | None = None) -> Record:
    """Record one report (bench --json) in the store under its commit and branch (detected when not given)."""
    commit, branch = commit_and_branch(commit, branch)
    with open_store(store) as opened:
        record = opened.record(report, commit, branch)
        record.line = (f"recorded {sum(r['status'] == 'ok' for r in report['rows'])} row(s) of commit {commit[:10]}"
                       f"{' on ' + branch if branch else ''} in {opened.shown} (machine {record.fingerprint})")
    return record


class BenchStore:
    """An open store. Use `open_store(path_or_url)`; close() when done (or use it as a context manager)."""

    def __init__(self, engine: sa.Engine, shown: str):
        self.engine, self.shown = engine, shown

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def record(self, report: dict, commit: str, branch: str | None = None) -> Record:
        """Store every row of `report` under `commit` in one transaction; returns the new record."""
        machine = machine_of(report["environment"])
        values = {"commit_sha": commit, "branch": branch, "recorded_at": time.time(),
                  "report_created": report.get("created"), "fingerprint": fingerprint_of(machine),
                  "machine": json.dumps(machine, sort_keys=True), "settings": json.dumps(report["settings"])}
        rows = [{"target": r["target"], "backend": r["backend"], "batch": r["batch"], "status": r["status"],
                 "median_ms": r["stats"]["median_ms"] if r["status"] == "ok" else None,
                 "samples_ms": json.dumps(r["samples_ms"]) if r["status"] == "ok" else None,
                 "stats": json.dumps(r["stats"]) if r["status"] == "ok" else None} for r in report["rows"]]
        with self._guard("writing to"), self.engine.begin() as connection:
            record_id = connection.execute(records_table.insert().values(**values)).inserted_primary_key[0]
            if rows:
                connection.execute(rows_table.insert(), [{**row, "record_id": record_id} for row in rows])
        return Record(record_id, commit, branch, values["recorded_at"], values["fingerprint"], machine,
                      report["settings"])

    def records(self, branch: str | None = None, fingerprint: str | None = None) -> list[Record]:
        query = sa.select(records_table).order_by(records_table.c.recorded_at, records_table.c.id)
        if branch:
            query = query.where(records_table.c.branch == branch)
        if fingerprint:
            query = query.where(records_table.c.fingerprint.startswith(fingerprint))
        with self._guard("reading"), self.engine.connect() as connection:
            return [Record(r.id, r.commit_sha, r.branch, r.recorded_at, r.fingerprint, json.loads(r.machine),
                           json.loads(r.settings)) for r in connection.execute(query)]

    def rows(self, record_ids: list[int]) -> dict[int, list[dict]]:
        """The ok rows of each record, samples included."""
        out: dict[int, list[dict]] = {i: [] for i in record_ids}
        if not record_ids:
            return out
        query = (sa.select(rows_table).where(rows_table.c.record_id.in_(record_ids), rows_table.c.status == "ok")
                 .order_by(rows_table.c.id))
        with self._guard("reading"), self.engine.connect() as connection:
            for r in connection.execute(query):
                out[r.record_id].append({"target": r.target, "backend": r.backend, "batch": r.batch,
                                         "median_ms": r.median_ms, "samples_ms": json.loads(r.samples_ms)})
        return out

    def _guard(self, doing: str):
        return _store_errors(f"{doing} the benchmark store {self.shown}")


class _store_errors:
    """Database failures (locked past the timeout, server gone, disk full) as one line."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None and isinstance(exc, SQLAlchemyError):
            detail = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
            raise UserError(f"{self.what} failed: {detail}") from None
        return False


def open_store(store=None, create: bool = True) -> BenchStore:
    """Open (and, for writing, create) the store at a path or SQLAlchemy URL; a damaged or foreign database, or
    an unreachable server, is one line."""
    if store is not None and not isinstance(store, str | os.PathLike):
        raise UserError(f"--store (store=) must be a path or a database URL, not {type(store).__name__}")
    url = store_url(store if store is not None else default_store())
    shown = _shown(url)
    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # noqa: BLE001  sqlalchemy raises ArgumentError and ValueError variously
        raise UserError(f"--store {store!r} is neither a path nor a database URL like "
                        "postgresql+psycopg://user@host/db") from None
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        path = Path(parsed.database or "")
        shown = str(path)
        if path.is_dir():
            raise UserError(f"--store {path} is a folder; pass a file path such as {path / DEFAULT_STORE_NAME}")
        if not path.exists() and not create:
            raise UserError(f"no benchmark store at {path}; record one first with `genforge bench record` "
                            "or `genforge bench --record`")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # a writer waits for another's transaction instead of failing at once (two CI jobs on one store)
        engine = sa.create_engine(url, connect_args={"timeout": 60} if sqlite else {"connect_timeout": 15})
    except ModuleNotFoundError as exc:
        raise UserError(f"the database driver {exc.name!r} for {shown} is not installed; "
                        f"pip install 'genforge[postgres]' for PostgreSQL") from None
    except SQLAlchemyError as exc:
        raise UserError(f"cannot use --store {shown}: {' '.join(str(exc).split())[:200]}") from None
    store_ = BenchStore(engine, shown)
    try:
        _prepare(engine, shown, sqlite, create)
    except BaseException:
        engine.dispose()
        raise
    return store_


def _prepare(engine: sa.Engine, shown: str, sqlite: bool, create: bool) -> None:
    try:
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
    except DBAPIError as exc:
        detail = " ".join(str(exc.orig).split())[:200]
        if sqlite and "not a database" in detail:
            raise UserError(f"{shown} is not a SQLite database (damaged, or another kind of file); pass a new path "
                            "for the benchmark store") from None
        raise UserError(f"cannot open the benchmark store {shown}: {detail}") from None
    if meta_table.name not in tables:
        ours = set(metadata.tables) | {"sqlite_sequence"}
        if sqlite and tables and not tables <= ours:  # only our own: another writer is creating the store now
            raise UserError(f"{shown} is a SQLite database of something else ({', '.join(sorted(tables)[:3])}...), "
                            "not a genforge benchmark store; pass a new path")
        if not create:
            raise UserError(f"{shown} holds no genforge benchmark store; record one first with `genforge bench "
                            "record`")
        with _store_errors(f"creating the benchmark store {shown}"), engine.begin() as connection:
            if engine.dialect.name == "postgresql":  # CREATE TABLE IF NOT EXISTS races in PostgreSQL's catalogue
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(7142026)"))
            for table in metadata.sorted_tables:
                connection.execute(sa.schema.CreateTable(table, if_not_exists=True))
                for index in table.indexes:
                    connection.execute(sa.schema.CreateIndex(index, if_not_exists=True))
    _check_schema(engine, shown, create)


def _schema_of(engine: sa.Engine, shown: str) -> str | None:
    with _store_errors(f"reading the benchmark store {shown}"), engine.connect() as connection:
        return connection.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema")).scalar()


def _check_schema(engine: sa.Engine, shown: str, create: bool) -> None:
    """The store's schema row; a writer adds it where the tables stand without it (its own new store, or one
    another writer is creating at this moment: SQLite commits each CREATE TABLE on its own)."""
    value = _schema_of(engine, shown)
    if value is None and create:
        try:
            with engine.begin() as connection:
                connection.execute(meta_table.insert().values(key="schema", value=STORE_SCHEMA))
        except IntegrityError:
            pass  # the other writer added it first
        value = _schema_of(engine, shown)
    if value is None:
        raise UserError(f"{shown} holds no genforge benchmark store; record one first with `genforge bench record`")
    if value != STORE_SCHEMA:
        raise UserError(f"{shown} is a benchmark store of schema {value!r}; this genforge reads {STORE_SCHEMA!r}")
