import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    has_cuda = False
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        pass
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; none is present")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Feature classifiers are cached in a folder of the test session, never in the user's."""
    os.environ["GENFORGE_CACHE"] = str(tmp_path_factory.mktemp("genforge-cache"))
    yield


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Every test sees the plugins as they are installed now, with no env overrides."""
    from genforge.core.registry import reset_registry

    monkeypatch.delenv("GENFORGE_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("GENFORGE_LOAD_PLUGINS", raising=False)
    reset_registry()
    yield
    reset_registry()


class CliResult:
    def __init__(self, result):
        self.exit_code = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.exception = result.exception


@pytest.fixture
def run_cli():
    """Invoke the genforge CLI in-process; asserts the exit code."""
    from click.testing import CliRunner

    from genforge.core.app.cli import cli

    def run(*args, expect=0):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        if result.exit_code != expect:
            import traceback

            tb = "".join(traceback.format_exception(result.exception)) if result.exception else ""
            raise AssertionError(f"exit {result.exit_code} != {expect}\nstdout: {result.stdout}\n"
                                 f"stderr: {result.stderr}\n{tb}")
        return CliResult(result)

    return run


def assert_one_line_error(result, *fragments):
    """A user error: exit 2, one line on stderr, no traceback, naming what is wrong."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


@pytest.fixture
def make_plugin(tmp_path, monkeypatch):
    """Install a third-party plugin through a real entry point (a dist-info on sys.path)."""
    site = tmp_path / "site"
    site.mkdir()
    made = []

    def make(module: str, body: str, dist: str = "acme-gan", version: str = "1.2.3", ep_name: str | None = None):
        (site / f"{module}.py").write_text(textwrap.dedent(body))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[genforge]\n{ep_name or module} = {module}\n")
        made.append(module)
        return site

    monkeypatch.syspath_prepend(str(site))
    yield make
    for module in made:
        for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
            del sys.modules[name]


def run_genforge(*args, env_extra=None, cwd=None):
    """Run the installed console script in a subprocess."""
    env = {**os.environ, **(env_extra or {})}
    exe = Path(sys.executable).with_name("genforge")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


SMALL_MODELS = {
    "dcgan": {"g_width": 8, "d_width": 8, "latent_dim": 16},
    "cgan": {"g_width": 8, "d_width": 8, "latent_dim": 16, "embed_dim": 8},
    "vae": {"width": 8, "latent_dim": 8},
}


def train_small(out, model="dcgan", dataset="digits", **overrides):
    """A tiny run (a few steps, narrow networks) for tests that need a trained run directory."""
    from genforge.core.trainer import Trainer, TrainConfig

    values = dict(model=model, dataset=dataset, image_size=16, batch_size=16, steps=4, sample_every=2,
                  checkpoint_every=2, log_every=1, model_options=SMALL_MODELS[model])
    values.update(overrides)
    trainer = Trainer(TrainConfig(**values), out, progress=False)
    trainer.fit()
    return trainer
