"""The plugin guide's code runs: its files are written out as a package, installed, trained."""

import re
import sys
import tomllib
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def guide_files() -> dict[str, str]:
    """Code blocks of the guide whose first line names a file (`# my_gan/model.py`)."""
    files = {}
    for body in re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S):
        first = body.splitlines()[0]
        match = re.match(r"# (\S+\.py)", first)
        if match:
            files[match.group(1)] = body
    return files


@pytest.fixture
def guide_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    files = guide_files()
    for name, body in files.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        (path.parent / "__init__.py").touch()
    entry_points = {"my_gan": "my_gan.plugin", "my_data": "my_data.plugin", "my_metric": "my_metric.plugin",
                    "my_backend": "my_backend.plugin", "my_command": "my_command.plugin",
                    "my_logger": "my_logger.plugin"}
    project = tomllib.loads(re.search(r"```toml\n# pyproject.toml\n(.*?)```", GUIDE.read_text(), re.S).group(1))
    assert project["project"]["entry-points"]["genforge"] == {"my_gan": "my_gan.plugin"}
    info = site / "genforge_guide-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: genforge-guide\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[genforge]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [n for n in sys.modules if n.split(".")[0] in ("my_gan", "my_data", "my_metric", "my_backend",
                                                                "my_command", "my_logger")]:
        del sys.modules[name]


def test_guide_names_its_files():
    assert {"my_gan/plugin.py", "my_gan/model.py", "my_data/plugin.py", "my_data/stripes.py", "my_metric/plugin.py",
            "my_backend/plugin.py", "my_backend/backend.py", "my_command/plugin.py", "my_logger/plugin.py",
            "my_logger/logger.py"} <= set(guide_files())


def test_every_hook_is_documented_with_its_signature():
    import inspect

    from genforge.core import hookspecs

    guide = GUIDE.read_text()
    hooks = [f for name, f in vars(hookspecs).items() if name.startswith("register_") and callable(f)]
    assert len(hooks) == 6
    for hook in hooks:
        signature = f"{hook.__name__}({', '.join(inspect.signature(hook).parameters)})"
        assert f"### `{signature}`" in guide, signature


def test_guide_model_and_dataset_train_evaluate_and_export(guide_site, genforge_cli, tmp_path):
    run = tmp_path / "run"
    genforge_cli("train", "--model", "my-gan", "--dataset", "stripes", "--steps", "3", "--image-size", "16",
            "--batch-size", "16", "--no-progress", "--out", run)
    assert (run / "samples.png").exists()
    assert "my-gan" in genforge_cli("models").stdout
    genforge_cli("export", "onnx", run, "--out", tmp_path / "my-gan.onnx")
    genforge_cli("evaluate", run, "--n", "50", "--metrics", "fd")


def test_guide_hook_examples_run(guide_site, genforge_cli, tmp_path, train_small):
    run = train_small(tmp_path / "run").out
    scores = tmp_path / "scores.json"
    genforge_cli("evaluate", run, "--n", "20", "--metrics", "pixel_mean", "--json", scores)
    assert "pixel_mean" in scores.read_text()
    report = tmp_path / "bench.json"
    genforge_cli("bench", run, "--backend", "torch-eval", "--batch", "1", "--duration-s", "0.05", "--warmup-s", "0.01",
                 "--json", report)
    assert '"status": "ok"' in report.read_text()
    from click.testing import CliRunner

    from genforge.app.cli import cli
    from genforge.core.registry import get_registry

    get_registry().add_commands(cli)
    try:
        assert "hello from my plugin" in CliRunner().invoke(cli, ["hello"]).stdout
    finally:
        cli.commands.pop("hello", None)


def test_guide_logger_writes_its_file(guide_site, genforge_cli, tmp_path):
    run = tmp_path / "run"
    genforge_cli("train", "--steps", "20", "--image-size", "16", "--batch-size", "16", "-o", "g_width=8", "-o",
                 "d_width=8", "--no-progress", "--log-to", "losses-txt", "--out", run)
    lines = (run / "losses.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["10", "20"] and "g_loss=" in lines[0]
    assert "losses-txt" in genforge_cli("loggers").stdout


def test_guide_code_passes_the_projects_linter(tmp_path):
    import subprocess

    for name, body in guide_files().items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    config = Path(__file__).resolve().parents[2] / "pyproject.toml"
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(config),
                             str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
