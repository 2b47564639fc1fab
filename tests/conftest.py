import os

import pytest


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


SMALL_MODELS = {
    "dcgan": {"g_width": 8, "d_width": 8, "latent_dim": 16},
    "cgan": {"g_width": 8, "d_width": 8, "latent_dim": 16, "embed_dim": 8},
    "vae": {"width": 8, "latent_dim": 8},
    "diffusion": {"width": 8, "steps": 3},
}


def small_train_config(model="dcgan", dataset="digits", **overrides):
    """A tiny training config (a few steps, narrow networks) for tests that need a run directory."""
    from genforge.core.training.config import TrainConfig

    values = dict(model=model, dataset=dataset, image_size=16, batch_size=16, steps=4, sample_every=2,
                  checkpoint_every=2, log_every=1, model_options=SMALL_MODELS[model],
                  threads=1)  # runs compared bit for bit must split their sums alike, whatever the machine's load
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def small_config():
    """small_config(model, dataset, **overrides) -> a tiny TrainConfig."""
    return small_train_config


@pytest.fixture(scope="session")
def train_small():
    """train_small(out, model, dataset, **overrides) -> the Trainer of a tiny finished run."""
    from genforge.core.training.trainer import Trainer

    def train(out, model="dcgan", dataset="digits", **overrides):
        trainer = Trainer(small_train_config(model, dataset, **overrides), out, progress=False)
        trainer.fit()
        return trainer

    return train


@pytest.fixture(scope="module")
def run(train_small, tmp_path_factory):
    """A tiny finished dcgan run for a test module (read-only: copy it to change it; tests/helpers.copy_run)."""
    root = tmp_path_factory.mktemp("trust")
    return train_small(root / "run").out


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    """The tiny run exported to ONNX."""
    from genforge.exporters.onnx import export_onnx

    path = tmp_path_factory.mktemp("trust-onnx") / "g.onnx"
    export_onnx(run, path)
    return path
