"""genforge's own test helpers (not part of the package: plugin authors have genforge.testing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SAMPLE_PLUGINS = Path(__file__).parent / "sample_plugins"


def sample_plugin(name: str) -> str:
    """The source of tests/sample_plugins/NAME.py, a real plugin module, for the install_plugin fixture."""
    return (SAMPLE_PLUGINS / f"{name}.py").read_text()


def assert_one_line_error(result, *fragments) -> None:
    """A user error: exit 2, one line on stderr, no traceback, naming each fragment (case-insensitive)."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
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
