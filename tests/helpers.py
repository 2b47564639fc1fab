"""genforge's own test helpers (not part of the package: plugin authors have genforge.testing)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SAMPLE_PLUGINS = Path(__file__).parent / "sample_plugins"
PROGRESS_LINE = re.compile(r"^.+: +\d+% \(\d+/\d+ \w+, ")  # core/progress.py's lines in a log
BENCH_PROGRESS = ("timing ", "rerunning ")  # what `genforge bench` says as it goes


def sample_plugin(name: str) -> str:
    """The source of tests/sample_plugins/NAME.py, a real plugin module, for the install_plugin fixture."""
    return (SAMPLE_PLUGINS / f"{name}.py").read_text()


def assert_one_line_error(result, *fragments) -> None:
    """A user error: exit 2, one line on stderr (after any benchmark timing lines; no progress line, since a
    mistake is found before the work starts), no traceback, naming each fragment (case-insensitive)."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines()
             if line.strip() and not line.lstrip().startswith(BENCH_PROGRESS)]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


def run_genforge(*args, env_extra=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """Run the installed `genforge` console script in a subprocess."""
    env = {**os.environ, **(env_extra or {})}
    exe = Path(sys.executable).with_name("genforge")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


TINY = ("--image-size", "16", "--batch-size", "16", "-o", "g_width=8", "-o", "d_width=8", "-o", "latent_dim=16",
        "--no-progress")


def fingerprint(*folders) -> dict:
    """Every file's hash; the run lock's holder pid is genforge's own bookkeeping, not a file of the user's."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and p.name != ".genforge-lock"}


def refused(genforge_cli, args, fragments, keep=()):
    """In-process: exit 2, one line naming each fragment, every file under `keep` unchanged."""
    before = fingerprint(*keep)
    assert_one_line_error(genforge_cli(*args, expect=2), *fragments)
    assert fingerprint(*keep) == before


def one_line(result: subprocess.CompletedProcess, status: int, *fragments) -> str:
    """A subprocess answered with one line on stderr (after any progress lines) and no traceback."""
    progress = ("  timing ", "note: ")
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(progress)
             and not PROGRESS_LINE.match(line)]
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    return lines[0]


def copy_run(run, where: Path) -> Path:
    shutil.copytree(run, where)
    return where


# -- benchmark reports made up for the store, history and compare tests ---------------------------------
ENVIRONMENT = {
    "cpu": {"model": "Test CPU", "cores": 2, "clock_ghz": 3.0, "flags": ["avx2", "fma"], "fp32_peak_gflops": 100.0,
            "peak_method": "test"},
    "gpu": None,
    "versions": {"python": "3.11.7", "genforge": "0.1.0", "torch": "2.13.0", "onnxruntime": "1.20.0",
                 "onnx": "1.17.0", "tensorrt": None},
    "threads": {"requested": 1, "torch": 1},
}


def fake_report(medians: dict, seed: int = 0, environment=None, noise: float = 0.02, samples: int = 20) -> dict:
    """A schema-valid report with rows {(target, backend, batch): median_ms}, samples spread by `noise`."""
    from genforge.benchmarks.measure import SCHEMA
    from genforge.benchmarks.stats import summarize

    rng = np.random.default_rng(seed)
    rows = []
    for (target, backend, batch), median in medians.items():
        seconds = median / 1e3 * (1 + rng.uniform(-noise, noise, samples))
        rows.append({"target": target, "target_kind": "onnx", "target_path": f"/nowhere/{target}", "backend": backend,
                     "batch": batch, "status": "ok", "samples_ms": [float(s * 1e3) for s in seconds],
                     "stats": summarize(seconds), "throughput_img_s": batch / median * 1e3, "first_call_s": 0.1,
                     "peak_rss_mib": 100.0, "device": "cpu", "gflops": None, "peak_share": None, "timing": "host",
                     "end_to_end_ms": None})
    rows.append({"target": "m.onnx", "target_kind": "onnx", "backend": "ort-cuda", "batch": None,
                 "status": "skipped", "reason": "no CUDA"})
    return {"schema": SCHEMA, "created": time.time(), "environment": environment or ENVIRONMENT,
            "settings": {"batches": [1], "warmup_s": 0.1, "min_iters": 2, "duration_s": 0.1, "threads": 1},
            "rows": rows}


ROW = ("m.onnx", "ort-cpu", 1)
