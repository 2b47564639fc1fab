"""The plugin registry and the CLI's plugin commands, driven through the public API."""

import json
import sys

import pytest
from helpers import assert_one_line_error, run_genforge, sample_plugin

from genforge.core.errors import PluginError, UserError
from genforge.core.registry import get_registry


def test_builtins_are_registered_through_the_hooks():
    registry = get_registry()
    assert {"dcgan", "cgan", "vae"} <= set(registry.specs("models"))
    assert {"digits", "shapes", "image-folder", "mnist", "fashion-mnist", "cifar10"} <= set(registry.specs("datasets"))
    builtin = registry.plugins["genforge.plugins.builtin"]
    assert builtin.builtin and "register_models" in builtin.hooks and builtin.errors == []
    assert registry.model("dcgan").plugin == "genforge"


def test_third_party_plugin_is_discovered_and_imported_lazily(install_plugin):
    site = install_plugin("acme_plugin", sample_plugin("acme_plugin"))
    (site / "acme_impl.py").write_text(sample_plugin("acme_impl"))
    registry = get_registry()
    spec = registry.model("acme-gan")
    assert spec.plugin == "acme-gan"
    assert "acme_impl" not in sys.modules, "registering must not import the implementation"
    assert spec.load().__name__ == "DCGAN"
    assert "acme_impl" in sys.modules
    info = registry.plugins["acme_plugin"]
    assert info.version == "1.2.3" and not info.builtin
    assert info.registered == {"models": ["acme-gan"], "datasets": ["acme-data"]}


def test_plugins_json_lists_external_plugin(install_plugin, genforge_cli):
    install_plugin("acme_plugin", sample_plugin("acme_plugin"))
    data = json.loads(genforge_cli("plugins", "--json").stdout)
    acme = next(p for p in data if p["name"] == "acme_plugin")
    assert acme["distribution"] == "acme-gan" and acme["version"] == "1.2.3"
    assert acme["hooks"] == ["register_datasets", "register_models"]
    assert acme["errors"] == []
    assert "acme-gan" in genforge_cli("models").stdout


@pytest.mark.parametrize("body, fragment", [
    ("import no_such_module_xyz\n", "import failed: ModuleNotFoundError"),
    ("from genforge import hookimpl\n@hookimpl\ndef register_models(register, bogus):\n    pass\n", "bogus"),
    ("from genforge import hookimpl\n@hookimpl\ndef register_models(register):\n    raise RuntimeError('boom')\n",
     "register_models raised RuntimeError: boom"),
    ("from genforge import hookimpl\n@hookimpl\ndef register_widgets(register):\n    pass\n", "register_widgets"),
])
def test_broken_plugin_is_isolated_and_named(install_plugin, genforge_cli, body, fragment):
    install_plugin("broken_plugin", body, dist="broken-dist")
    install_plugin("acme_plugin", sample_plugin("acme_plugin"))
    data = json.loads(genforge_cli("plugins", "--json").stdout)
    broken = next(p for p in data if p["name"] == "broken_plugin")
    assert any(fragment in e for e in broken["errors"]), broken["errors"]
    models = genforge_cli("models").stdout
    assert "dcgan" in models and "acme-gan" in models


def test_strict_mode_makes_load_errors_fatal(install_plugin, monkeypatch):
    install_plugin("broken_plugin", "raise ImportError('nope')\n", dist="broken-dist")
    monkeypatch.setenv("GENFORGE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="broken_plugin.*nope"):
        get_registry()


def test_load_plugins_selects_external_plugins(install_plugin, monkeypatch):
    install_plugin("acme_plugin", sample_plugin("acme_plugin"))
    monkeypatch.setenv("GENFORGE_LOAD_PLUGINS", "")
    assert "acme_plugin" not in get_registry().plugins
    assert "dcgan" in get_registry().specs("models")
    from genforge.core.registry import reset_registry

    reset_registry()
    monkeypatch.setenv("GENFORGE_LOAD_PLUGINS", "acme_plugin")
    assert "acme-gan" in get_registry().specs("models")


def test_duplicate_name_is_an_error_naming_both_distributions(install_plugin, monkeypatch):
    install_plugin("dup_plugin", """
from genforge import hookimpl
from genforge.core.specs import ModelSpec
@hookimpl
def register_models(register):
    register(ModelSpec("dcgan", "x:y"))
""", dist="other-gans")
    registry = get_registry()
    assert registry.model("dcgan").plugin == "genforge"
    errors = registry.plugins["dup_plugin"].errors
    assert any("'dcgan' is registered by both genforge and other-gans" in e for e in errors), errors
    from genforge.core.registry import reset_registry

    reset_registry()
    monkeypatch.setenv("GENFORGE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="both genforge and other-gans"):
        get_registry().specs("models")


def test_unknown_name_suggests_close_matches(genforge_cli):
    with pytest.raises(UserError, match="did you mean dcgan"):
        get_registry().model("dcgn")
    result = genforge_cli("train", "--model", "dcgn", "--steps", "1", expect=2)
    assert_one_line_error(result, "unknown model 'dcgn'", "dcgan")


def test_help_and_plugins_do_not_import_torch(tmp_path):
    import subprocess

    script = (
        "import sys\n"
        "from genforge.app.cli import main\n"
        "for args in (['--help'], ['plugins'], ['plugins', '--json']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, (args, exit.code)\n"
        "heavy = sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_broken_plugin_leaves_the_console_script_working(install_plugin):
    site = install_plugin("broken_plugin", "raise RuntimeError('kaputt')\n", dist="broken-dist")
    env = {"PYTHONPATH": str(site)}
    for args in (["--help"], ["plugins"], ["models"]):
        result = run_genforge(*args, env_extra=env)
        assert result.returncode == 0, (args, result.stderr)
    listing = run_genforge("plugins", "--json", env_extra=env)
    broken = next(p for p in json.loads(listing.stdout) if p["name"] == "broken_plugin")
    assert broken["errors"] == ["import failed: RuntimeError: kaputt"]
    assert "broken_plugin" in listing.stderr and "kaputt" in listing.stderr
    strict = run_genforge("models", env_extra={**env, "GENFORGE_STRICT_PLUGINS": "1"})
    assert strict.returncode == 2 and "kaputt" in strict.stderr and "Traceback" not in strict.stderr


def test_version():
    result = run_genforge("--version")
    from genforge import __version__

    assert result.returncode == 0 and __version__ in result.stdout


def test_metrics_and_backends_are_listed(genforge_cli):
    metrics = genforge_cli("metrics").stdout
    assert all(name in metrics for name in ("fd", "kid", "cond_acc", "neg_elbo", "inception"))
    backends = genforge_cli("backends").stdout
    assert all(name in backends for name in ("torch", "torch-compile", "ort-cpu", "ort-cuda", "ort-trt", "tensorrt"))
