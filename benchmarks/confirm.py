"""`bench compare --confirm`: a suspected regression is timed again before it fails a build, so a false alarm
needs two unlucky runs (docs/ci.md)."""

from __future__ import annotations

from pathlib import Path

from genforge.benchmarks.measure import Settings, compare_reports, run_benchmarks
from genforge.core.errors import UserError


def confirm_regressions(base: dict, new: dict, rows: list[dict], rerun, reruns: int = 1,
                        min_effect: float = 0.10, alpha: float = 0.01) -> list[dict]:
    """Rerun each row compare_reports(base, new) called slower, up to `reruns` times; it stays slower only if it
    is slower again in every pairing of a NEW run with a BASE run, else its verdict becomes "unconfirmed".

    rerun(keys) returns (fresh BASE report or None, fresh NEW report) with those (target, backend, batch)
    rows. With a fresh BASE, the fresh NEW must be slower than both BASE runs and the first NEW slower than
    the fresh BASE too, so that a lucky-fast BASE run cannot fail a build on its own. Each row gets "reruns",
    the reruns its verdict took."""
    key = lambda r: (r["target"], r["backend"], r["batch"])  # noqa: E731
    for row in rows:
        row["reruns"] = 0
    suspects = [r for r in rows if r["verdict"] == "slower"]
    bases, news = [base], [new]
    for _ in range(reruns):
        if not suspects:
            break
        fresh_base, fresh = rerun({key(r) for r in suspects})
        pairs = [(b, fresh) for b in bases]
        if fresh_base is not None:
            pairs += [(fresh_base, n) for n in news] + [(fresh_base, fresh)]
            bases.append(fresh_base)
        news.append(fresh)
        verdicts: dict = {}
        for reference, candidate in pairs:
            if not reference["rows"] or not candidate["rows"]:
                continue
            for result in compare_reports(reference, candidate, min_effect, alpha):
                verdicts.setdefault(key(result), []).append(result["verdict"])
        still = []
        for row in suspects:
            row["reruns"] += 1
            found = verdicts.get(key(row), [])
            if len(found) == len(pairs) and all(v == "slower" for v in found):
                still.append(row)
            else:
                row["verdict"] = "unconfirmed"
        suspects = still
    return rows


def _target_paths(report: dict, keys: set) -> dict | None:
    """{path: target name} of the report's rows under `keys`, or None when a path is not recorded or gone."""
    paths = {}
    for row in report["rows"]:
        if (row["target"], row["backend"], row["batch"]) in keys:
            if not row.get("target_path") or not Path(row["target_path"]).exists():
                return None
            paths[str(Path(row["target_path"]).resolve())] = row["target"]
    return paths


def rerun_reports(base: dict, new: dict, progress=None):
    """The rerun for confirm_regressions: NEW's targets timed again with NEW's settings, and BASE's too when they
    are still here and are other files than NEW's (two builds side by side); else (None, fresh NEW)."""
    def timed(paths: dict, keys: set) -> dict:
        settings = {k: new["settings"][k] for k in ("batches", "warmup_s", "min_iters", "duration_s", "threads")}
        settings["batches"] = tuple(sorted({b for _, _, b in keys}))
        return run_benchmarks(list(paths), sorted({b for _, b, _ in keys}), Settings(**settings), progress, only=keys)

    def rerun(keys: set):
        new_paths = _target_paths(new, keys)
        if new_paths is None:
            raise UserError("--confirm reruns NEW's targets, but NEW's report does not name them or they are not "
                            "here; run `genforge bench compare` where NEW was timed")
        base_paths = _target_paths(base, keys)
        if base_paths is not None and set(base_paths) & set(new_paths):
            base_paths = None  # the same files: the base build is gone, only its samples remain
        fresh_base = timed(base_paths, keys) if base_paths else None
        return fresh_base, timed(new_paths, keys)

    return rerun
