"""The plugin author's kit: genforge.testing's checks, `genforge plugins check/new`, hook deprecation.

A planted fault of each kind the checks cover must fail with a message saying what to change;
scaffolded packages must pass their own tests as generated (installed for real, in a subprocess).
"""

import json
import os
import subprocess
import sys
import warnings

import pytest
from helpers import assert_one_line_error, sample_plugin

from genforge.testing import PluginCheckFailed, check_dataset_plugin, check_model_plugin


@pytest.fixture
def kit(install_plugin):
    """install(model_edits, dataset_edits): the kit plugin with faults planted by text replacement."""
    def install(model_edits=(), dataset_edits=()):
        model, dataset = sample_plugin("kit_impl"), sample_plugin("kit_data")
        for old, new in model_edits:
            assert old in model, old
            model = model.replace(old, new)
        for old, new in dataset_edits:
            assert old in dataset, old
            dataset = dataset.replace(old, new)
        site = install_plugin("kit_plugin", sample_plugin("kit_plugin"), dist="kit-dist")
        (site / "kit_impl.py").write_text(model)
        (site / "kit_data.py").write_text(dataset)
        for name in ("kit_impl", "kit_data"):
            sys.modules.pop(name, None)

    return install


def test_a_good_plugin_passes_every_check(kit, genforge_cache):
    kit()
    report = check_model_plugin("kit", dataset="kit-data")
    assert len(report.steps) >= 6 and any("int8 ONNX" in step for step in report.steps)
    assert check_dataset_plugin("kit-data").steps


def test_a_plugin_with_rounding_jitter_passes_the_kit(kit, genforge_cli, genforge_cache):
    """A relative jitter of 1e-6, drawn afresh in every call, is rounding: the seeded two-run check passes."""
    kit(model_edits=[("torch.tanh(self.fc(z))",
                      "torch.tanh(self.fc(z)) * (1 + 1e-6 * float(np.random.default_rng().standard_normal()))")])
    report = check_model_plugin("kit", dataset="kit-data")
    assert any("the same weights (up to rounding)" in step for step in report.steps)


MODEL_FAULTS = {
    "non-deterministic step": (
        # unseeded latents: Adam's first update follows the gradient's sign, which then differs in most weights
        [("z = ctx.randn(len(images), *self.latent_shape)",
          "z = torch.from_numpy(np.random.default_rng().standard_normal((len(images), *self.latent_shape)))"
          ".float()")],
        "two training runs with the same seed ended with different weights"),
    "wrong output range after training": (
        [("        ctx.optimize(\"g\", loss)\n",
          "        ctx.optimize(\"g\", loss)\n        self.G.gain.fill_(5.0)\n")],
        "outside [-1, 1]"),
    "generator drawing its own noise": (
        [("torch.tanh(self.fc(z))", "torch.tanh(self.fc(z + torch.randn_like(z)))")],
        "different images for the same noise"),
}


@pytest.mark.parametrize("fault", MODEL_FAULTS)
def test_a_planted_model_fault_fails_its_check(fault, kit, genforge_cache):
    edits, message = MODEL_FAULTS[fault]
    kit(model_edits=edits)
    with pytest.raises(PluginCheckFailed, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_model_plugin("kit", dataset="kit-data")


DATASET_FAULTS = {
    "bad metadata (a name exports cannot find)": (
        [('DataInfo("kit-data", ', 'DataInfo("Kit Data", ')], "DataInfo name is 'Kit Data', not the registered name"),
    "labels out of range": ([("labels = torch.arange(n) % 4", "labels = torch.arange(n) % 6")],
                            "labels must be in 0..3"),
    "values out of range": ([("return ImageTensorDataset(images, labels), ", "return FloatSet(images, labels), ")],
                            "must be in [-1, 1]"),
}
FLOAT_SET = '''

class FloatSet(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images.float(), labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i] / 127.5 - 1 + (i == len(self.images) - 3) * 4, int(self.labels[i])
'''


@pytest.mark.parametrize("fault", DATASET_FAULTS)
def test_a_planted_dataset_fault_fails_its_check(fault, kit):
    edits, message = DATASET_FAULTS[fault]
    if "values" in fault:
        edits = [*edits, ("from genforge import DataInfo, ImageTensorDataset, check_split\n",
                          "from genforge import DataInfo, ImageTensorDataset, check_split\n" + FLOAT_SET)]
    kit(dataset_edits=edits)
    with pytest.raises(PluginCheckFailed, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_dataset_plugin("kit-data")


def test_plugins_check_command(kit, genforge_cli, genforge_cache):
    kit()
    result = genforge_cli("plugins", "check", "kit", "--dataset", "kit-data")
    assert "every check passed" in result.stdout and "ok  fp32 ONNX" in result.stdout
    assert "every check passed" in genforge_cli("plugins", "check", "kit-data").stdout
    kit(model_edits=MODEL_FAULTS["generator drawing its own noise"][0])
    failed = genforge_cli("plugins", "check", "kit", "--dataset", "kit-data", expect=1)
    assert "FAILED kit" in failed.stderr and "Traceback" not in failed.stderr
    assert_one_line_error(genforge_cli("plugins", "check", "nope", expect=2), "no model or dataset plugin")


def test_builtins_pass_the_checks(genforge_cli):
    result = genforge_cli("plugins", "check", "cgan", "-o", "g_width=8", "-o", "d_width=8", "-o", "latent_dim=16")
    assert "every check passed" in result.stdout and "cond_acc" in result.stdout
    assert "every check passed" in genforge_cli("plugins", "check", "shapes").stdout


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["model", "dataset"])
def test_a_scaffolded_plugin_passes_its_own_tests(kind, tmp_path, genforge_cli):
    folder = tmp_path / f"genforge-my-{kind}"
    genforge_cli("plugins", "new", f"my-{kind}", "--kind", kind, "--out", folder)
    assert {p.name for p in folder.iterdir()} >= {"pyproject.toml", "README.md", "tests", f"genforge_my_{kind}"}
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                              "--target", str(site), str(folder)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": str(site), "GENFORGE_CACHE": str(tmp_path / "cache")}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=folder,
                           capture_output=True, text=True, env=env, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "2 passed" in tests.stdout
    assert_one_line_error(genforge_cli("plugins", "new", f"my-{kind}", "--kind", kind, "--out", folder, expect=2),
                          "already exists")
    assert_one_line_error(genforge_cli("plugins", "new", "My_Bad", "--kind", kind, expect=2), "lowercase")


def test_a_deprecated_hook_warns_and_is_listed(install_plugin, genforge_cli, monkeypatch):
    from genforge.core import hookspecs
    from genforge.core.registry import get_registry

    monkeypatch.setitem(hookspecs.DEPRECATED_HOOKS, "register_commands", "a command through register_commands_v2")
    install_plugin("old_plugin", "from genforge import hookimpl\n@hookimpl\ndef register_commands(cli):\n    pass\n",
                   dist="old-dist")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = get_registry()
    assert any("register_commands, which is deprecated" in str(w.message) for w in caught)
    assert registry.plugins["old_plugin"].deprecated == ["register_commands (use a command through "
                                                         "register_commands_v2)"]
    listed = json.loads(genforge_cli("plugins", "--json").stdout)
    assert next(p for p in listed if p["name"] == "old_plugin")["deprecated"]
