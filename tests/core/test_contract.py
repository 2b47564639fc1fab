"""The plugin contract, driven from outside: third-party plugins with one planted fault each.

Each fault must stop `genforge train` when the model or dataset is built, with one line that names
the plugin and what to change, exit 2, and nothing written.
"""

import importlib
import json
import sys

import pytest
from helpers import assert_one_line_error, sample_plugin

IMPLEMENTATION_MODULES = ("acme_impl", "acme_data", "acme_cvae_impl")


@pytest.fixture(autouse=True)
def fresh_implementations():
    """Each test writes its own implementation modules: forget the ones imported before."""
    def forget():
        for name in IMPLEMENTATION_MODULES:
            sys.modules.pop(name, None)
        importlib.invalidate_caches()

    forget()
    yield
    forget()


def install(install_plugin, model=None, dataset=None, conditional=False, model_attr="Tiny", spec_claims=""):
    plugin = sample_plugin("tiny_plugin").replace('"acme_impl:Tiny"', f'"acme_impl:{model_attr}"')
    plugin = plugin.replace('"a tiny third-party model"))', f'"a tiny third-party model"{spec_claims}))')
    site = install_plugin("acme_plugin", plugin, dist="acme-tiny")
    model = sample_plugin("tiny_model") if model is None else model
    (site / "acme_impl.py").write_text(model.replace("conditional = False", f"conditional = {conditional}"))
    (site / "acme_data.py").write_text(sample_plugin("list_dataset") if dataset is None else dataset)
    return site


MODEL_FAULTS = {
    "wrong image size": (
        [("self.shape = (channels, size, size)", "self.shape = (channels, size // 2, size // 2)"),
         ("channels * size * size", "channels * (size // 2) ** 2")],
        False, ["generator() output has shape (2, 1, 8, 8)", "make it output 16x16 images"]),
    "wrong channels": (
        [("self.shape = (channels, size, size)", "self.shape = (3, size, size)"),
         ("channels * size * size", "3 * size * size")],
        False, ["shape (2, 3, 16, 16)", "output 1 channel"]),
    "no Tanh": ([("torch.tanh(self.fc(z))", "20 * self.fc(z)")], False, ["outside [-1, 1]", "Tanh"]),
    "no generator()": ([("    def generator(self):\n        return self.G\n", "")], False,
                       ["does not implement generator()"]),
    "unset latent_shape": ([("        self.latent_shape = (config.latent_dim,)\n", "")], False,
                           ["latent_shape is ()", "set self.latent_shape"]),
    "int64-only labels": ([("F.one_hot(labels.long(), ", "F.one_hot(labels, ")], True,
                          ["int32 labels", "labels.long()"]),
    "step returns a float": ([('return {"loss": loss.detach()}', "return float(loss)")], False,
                             ["training_step returned float", "dict of scalar tensors"]),
    "step returns non-scalars": ([('return {"loss": loss.detach()}', 'return {"fake": fake.detach()}')], False,
                                 ["training_step returned", "dict of scalar tensors"]),
    "no Config": ([("    Config = TinyConfig\n", "")], False, ["Config is None, not a dataclass"]),
    "ema_by_default not a bool": ([("    Config = TinyConfig\n",
                                    "    Config = TinyConfig\n    ema_by_default = 'yes'\n")], False,
                                  ["Tiny.ema_by_default is 'yes'", "True or False"]),
    "batch_size_by_default not a count": ([("    Config = TinyConfig\n",
                                            "    Config = TinyConfig\n    batch_size_by_default = 0\n")], False,
                                          ["Tiny.batch_size_by_default is 0", "whole number, 1 or more"]),
    "noise drawn inside": ([("torch.tanh(self.fc(z))", "torch.tanh(self.fc(z + torch.randn_like(z)))")], False,
                           ["different images for the same noise", "they differ by", "rounding allows"]),
    "optimizers not a dict": ([('return {"g": torch.optim.Adam(self.G.parameters(), lr=self.config.lr)}',
                                "return torch.optim.Adam(self.G.parameters())")], False,
                              ["optimizers() returned", "dict of torch.optim optimizers"]),
}


def train_args(tmp_path, model="tiny", dataset="digits"):
    return ("train", "--model", model, "--dataset", dataset, "--steps", "2", "--image-size", "16",
            "--batch-size", "8", "--no-progress", "--out", tmp_path / "run")


@pytest.mark.parametrize("fault", MODEL_FAULTS)
def test_model_fault_fails_at_build_naming_the_plugin(fault, install_plugin, genforge_cli, tmp_path):
    edits, conditional, fragments = MODEL_FAULTS[fault]
    source = sample_plugin("tiny_model")
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new)
    install(install_plugin, model=source, conditional=conditional)
    result = genforge_cli(*train_args(tmp_path), expect=2)
    assert_one_line_error(result, "model plugin 'tiny' (acme-tiny)", *fragments)
    assert not (tmp_path / "run").exists()


def test_a_generator_with_rounding_jitter_passes_the_build_check(install_plugin, genforge_cli, tmp_path):
    """Kernels that sum in another order differ by ~1e-6 relative; that is rounding, not noise."""
    jitter = "(torch.tanh(self.fc(z)) * (1 + 1e-6 * torch.randn(())))"
    install(install_plugin, model=sample_plugin("tiny_model").replace("torch.tanh(self.fc(z))", jitter))
    genforge_cli(*train_args(tmp_path))
    assert (tmp_path / "run" / "samples.png").exists()


@pytest.mark.parametrize("model", ["dcgan", "cgan", "vae"])
def test_the_build_check_passes_fifty_times_on_a_builtin_model(model):
    """The determinism check must not refuse a correct model at random (it once compared bit for bit)."""
    from genforge.core.contract import build_model, check_model
    from genforge.core.data import DataInfo
    from genforge.core.registry import get_registry

    info = DataInfo("shapes", 3, 64, 64, 4 if model == "cgan" else None)
    built = build_model(model, info, {})
    for _ in range(50):
        check_model(get_registry().model(model), built, info)


def test_the_unfaulted_plugin_trains(install_plugin, genforge_cli, tmp_path):
    install(install_plugin, conditional=True)
    genforge_cli(*train_args(tmp_path))
    assert (tmp_path / "run" / "samples.png").exists()


def test_a_model_chooses_the_batch_it_trains_with_unless_told(install_plugin, genforge_cli, tmp_path):
    source = sample_plugin("tiny_model").replace("    Config = TinyConfig\n",
                                                 "    Config = TinyConfig\n    batch_size_by_default = 8\n")
    install(install_plugin, model=source)
    args = [a for a in train_args(tmp_path) if a not in ("--batch-size", "8")]
    genforge_cli(*args)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["batch_size"] == 8
    genforge_cli(*args[:-1], tmp_path / "told", "--batch-size", "4")
    assert json.loads((tmp_path / "told" / "config.json").read_text())["train"]["batch_size"] == 4


def test_bad_module_attr_reference_is_named_when_listed_and_built(install_plugin, genforge_cli, tmp_path):
    install(install_plugin, model_attr="Tinyy")
    result = genforge_cli(*train_args(tmp_path), expect=2)
    assert_one_line_error(result, "model 'tiny' from plugin acme-tiny cannot be loaded", "Tinyy")
    assert not (tmp_path / "run").exists()
    listed = json.loads(genforge_cli("plugins", "--json", "--check").stdout)
    acme = next(p for p in listed if p["name"] == "acme_plugin")
    assert any("Tinyy" in error for error in acme["errors"]), acme["errors"]


def test_missing_module_is_shown_by_plain_plugins_listing(install_plugin, genforge_cli):
    site = install(install_plugin)
    (site / "acme_data.py").unlink()
    listed = json.loads(genforge_cli("plugins", "--json").stdout)
    acme = next(p for p in listed if p["name"] == "acme_plugin")
    assert acme["errors"] == ["dataset 'acme-digits': module 'acme_data' not found"]


@pytest.mark.parametrize("claims, fragment", [
    (", conditional=True", "ModelSpec says conditional=True but Tiny says False"),
    (", image_sizes=(64,)", "ModelSpec says image_sizes=(64,) but Tiny says None"),
    (', family="vae"', "family='vae' but Tiny has no negative_elbo"),
])
def test_spec_disagreeing_with_its_class_is_an_error(claims, fragment, install_plugin, genforge_cli, tmp_path):
    install(install_plugin, spec_claims=claims)
    assert_one_line_error(genforge_cli(*train_args(tmp_path), expect=2), "model plugin 'tiny' (acme-tiny)", fragment)
    assert not (tmp_path / "run").exists()


DATASET_FAULTS = {
    "no DataInfo": ("    return dataset, info\n", "    return dataset\n", ["load() returned ListDataset",
                                                                            "return (dataset, DataInfo"]),
    "labels out of range": ("        return (image * (1 - self.shift)).clamp(-1, 1), label\n",
                            "        return (image * (1 - self.shift)).clamp(-1, 1), label + 5\n",
                            ["label", "labels must be in 0..9"]),
    "values out of range": ("        return (image * (1 - self.shift)).clamp(-1, 1), label\n",
                            "        return (image + 1) * 127.5, label\n", ["images must be in [-1, 1]"]),
    "wrong size": ('info = DataInfo("acme-digits", 1, image_size, image_size,',
                   'info = DataInfo("acme-digits", 1, 28, 28,', ["DataInfo says 28x28", "16x16 were asked for"]),
}


@pytest.mark.parametrize("fault", DATASET_FAULTS)
def test_dataset_fault_fails_when_opened_naming_the_plugin(fault, install_plugin, genforge_cli, tmp_path):
    old, new, fragments = DATASET_FAULTS[fault]
    assert old in sample_plugin("list_dataset")
    install(install_plugin, dataset=sample_plugin("list_dataset").replace(old, new))
    result = genforge_cli(*train_args(tmp_path, model="dcgan", dataset="acme-digits"), expect=2)
    assert_one_line_error(result, "dataset plugin 'acme-digits' (acme-tiny)", *fragments)
    assert not (tmp_path / "run").exists()


def test_builtin_label_out_of_range_is_caught(tmp_path):
    """An IDX file with a label past the class count (MNIST with a 10) is refused when opened."""
    import gzip

    import numpy as np

    from genforge.core.contract import ContractError, open_dataset

    images = np.zeros((20, 28, 28), dtype=np.uint8)
    labels = np.arange(20, dtype=np.uint8) % 12
    header = np.array([0x803, 20, 28, 28], dtype=">i4").tobytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(np.array([0x801, 20], dtype=">i4").tobytes() + labels.tobytes()))
    with pytest.raises(ContractError, match=r"dataset plugin 'mnist' \(genforge\).*0\.\.9"):
        open_dataset("mnist", "train", image_size=16, data_dir=tmp_path)



def test_third_party_conditional_vae_gets_every_metric_from_plain_evaluate(install_plugin, genforge_cli, tmp_path):
    site = install_plugin("acme_cvae", sample_plugin("acme_cvae"), dist="acme-cvae")
    (site / "acme_cvae_impl.py").write_text(sample_plugin("acme_cvae_impl"))
    run = tmp_path / "run"
    genforge_cli("train", "--model", "cvae", "--steps", "30", "--image-size", "16", "--batch-size", "32",
            "--no-progress", "--out", run)
    scores_path = tmp_path / "scores.json"
    result = genforge_cli("evaluate", run, "--n", "200", "--json", scores_path)
    scores = json.loads(scores_path.read_text())
    assert {"fd", "fd_floor", "kid", "cond_acc", "neg_elbo", "recon_psnr"} <= set(scores), scores
    assert "skipped" not in scores and "note:" not in result.stderr
    assert 0 < scores["neg_elbo"] < 1000 and scores["recon_psnr"] > scores["mean_image_psnr"] - 3
    listed = genforge_cli("models").stdout
    assert "cvae" in listed and "elbo" in listed


def test_metric_that_does_not_apply_is_skipped_with_a_note(train_small, install_plugin, genforge_cli, tmp_path):
    run = train_small(tmp_path / "dcgan").out
    scores_path = tmp_path / "scores.json"
    result = genforge_cli("evaluate", run, "--n", "100", "--metrics", "fd,cond_acc,neg_elbo", "--json", scores_path)
    scores = json.loads(scores_path.read_text())
    assert "fd" in scores and "cond_acc" not in scores and "neg_elbo" not in scores
    assert set(scores["skipped"]) == {"cond_acc", "neg_elbo"}
    assert "note: cond_acc skipped: it needs a conditional generator" in result.stderr


def test_evaluation_streams_a_plain_dataset_and_a_changed_dataset_retrains_the_classifier(
        install_plugin, genforge_cli, tmp_path, monkeypatch):
    from genforge.core.evaluation import features

    install(install_plugin)
    run = tmp_path / "run"
    genforge_cli("train", "--model", "cgan", "--dataset", "acme-digits", "--steps", "2", "--image-size", "16",
            "--batch-size", "16", "-o", "g_width=8", "-o", "d_width=8", "--no-progress", "--out", run)
    scores_path = tmp_path / "scores.json"
    genforge_cli("evaluate", run, "--n", "100", "--json", scores_path)
    scores = json.loads(scores_path.read_text())
    assert {"fd", "kid", "cond_acc"} <= set(scores) and scores["classifier_test_accuracy"] > 0.9

    config = {"dataset": "acme-digits", "image_size": 16, "channels": None, "data_dir": None}
    first = features.load_reference(config)
    again = features.load_reference(config)
    assert again.from_cache and again.cache_path == first.cache_path
    monkeypatch.setenv("ACME_SHIFT", "0.5")  # same name, size and channels; other pixels
    changed = features.load_reference(config)
    assert not changed.from_cache and changed.cache_path != first.cache_path


def test_generator_inputs_are_the_same_everywhere(train_small, tmp_path):
    """A run directory and its ONNX export draw the same noise and labels for a seed."""
    import numpy as np

    from genforge.core import runtime
    from genforge.exporters.onnx import export_onnx

    run = train_small(tmp_path / "cgan", model="cgan").out
    export_onnx(run, tmp_path / "g.onnx")
    torch_runtime, onnx_runtime = runtime.load(run), runtime.load(tmp_path / "g.onnx")
    z1, labels1 = torch_runtime.prepare_inputs(n=12, seed=5)
    z2, labels2 = onnx_runtime.prepare_inputs(n=12, seed=5)
    assert np.array_equal(z1, z2) and np.array_equal(labels1, labels2)
    assert labels1.dtype == np.int32 and list(labels1[:11]) == list(range(10)) + [0]
    np.testing.assert_allclose(torch_runtime.generate(n=12, seed=5), onnx_runtime.generate(n=12, seed=5), atol=1e-4)


def test_output_range_is_checked_on_the_trained_generator_by_sampling_and_export(install_plugin, genforge_cli,
                                                                                 tmp_path):
    """In range at initialisation, out of range after training: the sample grid and export both refuse."""
    source = sample_plugin("tiny_model").replace("        self.fc = nn.Linear(",
                                                 "        self.register_buffer('gain', torch.ones(()))\n"
                                                 "        self.fc = nn.Linear(")
    source = source.replace("return torch.tanh(self.fc(z)).view(", "return (self.gain * torch.tanh(self.fc(z))).view(")
    source = source.replace("        ctx.optimize(\"g\", loss)\n", "        ctx.optimize(\"g\", loss)\n"
                                                              "        self.G.gain.fill_(30.0)\n")
    install(install_plugin, model=source)
    result = genforge_cli(*train_args(tmp_path), "--sample-every", "0", expect=2)
    assert_one_line_error(result, "model plugin 'tiny'", "the generator's output at step 2", "outside [-1, 1]")
    out = tmp_path / "tiny.onnx"
    result = genforge_cli("export", "onnx", tmp_path / "run", "--out", out, expect=2)
    assert_one_line_error(result, "the trained generator's output", "outside [-1, 1]")
    assert not out.exists()
