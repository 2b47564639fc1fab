"""genforge's pytest plugin (entry point `pytest11`): fixtures for testing genforge plugins.

    def test_cli(genforge_cli):
        result = genforge_cli("models")            # in-process; asserts exit status 0
        assert "my-gan" in result.stdout

    def test_bad_input(genforge_cli):
        result = genforge_cli("train", "--model", "nope", expect=2)

    def test_fresh_plugin(install_plugin):
        install_plugin("my_plugin", "from genforge import hookimpl\\n...")  # a real entry point on sys.path

pytest loads this module in every session where genforge is installed, so it imports only
click and pytest at module level; genforge's CLI and registry load when a fixture is used.
"""

from __future__ import annotations

import sys
import textwrap
import traceback

import pytest


@pytest.fixture
def genforge_cli():
    """Run `genforge ARGS` in-process; returns click's result, asserting its exit status (expect=0)."""
    from click.testing import CliRunner

    from genforge.app.cli import cli  # lazy: keeps pytest start-up free of genforge's CLI

    def run(*args, expect: int = 0):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        if result.exit_code != expect:
            tb = "".join(traceback.format_exception(result.exception)) if result.exception else ""
            raise AssertionError(f"exit {result.exit_code} != {expect}\nstdout: {result.stdout}\n"
                                 f"stderr: {result.stderr}\n{tb}")
        return result

    return run


@pytest.fixture
def genforge_cache(tmp_path, monkeypatch):
    """A private GENFORGE_CACHE (feature classifiers) for one test."""
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "genforge-cache"))
    return tmp_path / "genforge-cache"


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """install_plugin(module, source, dist=..., version=...): a plugin module behind a real `genforge`
    entry point (a dist-info on sys.path), with the plugin registry reloaded; returns the site folder."""
    from genforge.core.registry import reset_registry  # lazy: see the module docstring

    site = tmp_path / "site"
    site.mkdir()
    made = []

    def install(module: str, source: str, dist: str = "acme-gan", version: str = "1.2.3", ep_name: str | None = None):
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[genforge]\n{ep_name or module} = {module}\n")
        made.append(module)
        reset_registry()
        return site

    monkeypatch.syspath_prepend(str(site))
    yield install
    for module in made:
        for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
            del sys.modules[name]
    reset_registry()
