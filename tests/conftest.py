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
    "inpaint": {"width": 8},
}


def small_train_config(model="dcgan", dataset="digits", **overrides):
    """A tiny training config (a few steps, narrow networks) for tests that need a run directory."""
    from genforge.core.runs.config import TrainConfig

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


@pytest.fixture(scope="session")
def run(train_small, tmp_path_factory):
    """A tiny finished dcgan run, trained once per test session (read-only: copy it to change it;
    tests/helpers.copy_run)."""
    return train_small(tmp_path_factory.mktemp("tiny-run") / "run").out


@pytest.fixture(scope="session")
def exported(run, tmp_path_factory):
    """The tiny run exported to ONNX, once per session (read-only)."""
    from genforge.exporters.onnx import export_onnx

    path = tmp_path_factory.mktemp("tiny-onnx") / "g.onnx"
    export_onnx(run, path)
    return path


@pytest.fixture(scope="session")
def tiny_runs(train_small, tmp_path_factory):
    """Tiny finished runs of the dcgan, cgan and vae (6 steps each) and the cgan exported to ONNX, built once per
    session, all in one folder: {"dcgan": ..., "cgan": ..., "vae": ..., "cgan_onnx": ..., "root": ...}
    (read-only)."""
    from genforge.exporters.onnx import export_onnx

    root = tmp_path_factory.mktemp("tiny-runs")
    runs = {m: train_small(root / m, model=m, steps=6).out for m in ("dcgan", "cgan", "vae")}
    export_onnx(runs["cgan"], root / "cgan.onnx")
    return {**runs, "cgan_onnx": root / "cgan.onnx", "root": root}


def _postgres_bin() -> str | None:
    """The folder of PostgreSQL's server programs (Debian keeps them off PATH, in /usr/lib/postgresql/N/bin)."""
    import glob
    import shutil

    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(folders[-1]) if folders else None


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A SQLAlchemy URL of a real PostgreSQL server, private to this test session: GENFORGE_TEST_POSTGRES_URL, or
    a server started here from the installed binaries (.ci/run installs Debian's postgresql). Skips when there is
    none, unless GENFORGE_REQUIRE_POSTGRES is set (CI), where it fails."""
    import pwd
    import shutil
    import socket
    import subprocess
    import tempfile
    from pathlib import Path

    if os.environ.get("GENFORGE_TEST_POSTGRES_URL"):
        yield os.environ["GENFORGE_TEST_POSTGRES_URL"]
        return
    folder = _postgres_bin()
    if folder is None:
        if os.environ.get("GENFORGE_REQUIRE_POSTGRES"):
            pytest.fail("GENFORGE_REQUIRE_POSTGRES is set but no PostgreSQL server programs (initdb) are installed")
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql; apt install postgresql)")
    # outside pytest's folders, which are private to this user: as root, the server runs as another user
    data = Path(tempfile.mkdtemp(prefix="genforge-postgres-"))
    run_as = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres user Debian creates
        user = pwd.getpwnam("postgres")
        shutil.chown(data, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = data / "cluster"
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data} -c fsync=off"
    try:
        log = str(data / "log")
        for command in ([f"{folder}/initdb", "-D", str(cluster), "-U", "genforge", "-A", "trust", "--no-sync"],
                        [f"{folder}/pg_ctl", "-D", str(cluster), "-o", options, "-l", log, "-w", "start"]):
            done = subprocess.run([*run_as, *command], capture_output=True, text=True)
            assert done.returncode == 0, f"{command[0]} failed: {done.stderr[-500:]}"
        yield f"postgresql+psycopg://genforge@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, f"{folder}/pg_ctl", "-D", str(cluster), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
