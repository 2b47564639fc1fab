"""The wheel holds the five folders under genforge/ (not benchmarks/scripts/) and installs a working `genforge`
command."""

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs wheels in fresh virtual environments

REPO = Path(__file__).resolve().parents[2]



def test_wheel_layout_and_fresh_install(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("genforge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("core", "core/training", "core/evaluation", "core/runtime", "plugins", "exporters", "benchmarks",
                    "app"):
        assert f"genforge/{package}/__init__.py" in names, package
    assert "genforge/__init__.py" in names and "genforge/app/cli.py" in names
    assert "genforge/app/templates/model.py" in names and "genforge/app/suites/standard.toml" in names
    assert not any(n.startswith("genforge/benchmarks/scripts/") for n in names)
    assert "genforge/testing.py" in names and "genforge/pytest_plugin.py" in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[pytest11]" in entry_points and "genforge.pytest_plugin" in entry_points
    assert not any(n.startswith(("tests/", "genforge/tests/")) for n in names)

    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    fresh_python = env_dir / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(fresh_python), "install", "-q",
                              "--no-deps", str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    # The fresh environment borrows the dependencies (click, pluggy, ...) of this one, after its own packages.
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    fresh_site = subprocess.check_output([str(fresh_python), "-c", purelib], text=True).strip()
    (Path(fresh_site) / "zz_borrow_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    exe = env_dir / "bin" / "genforge"
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    models = subprocess.run([str(exe), "models"], capture_output=True, text=True, cwd=tmp_path)
    assert models.returncode == 0 and "dcgan" in models.stdout, models.stderr
    where = subprocess.run([str(fresh_python), "-c", "import genforge.core; print(genforge.core.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert str(env_dir) in where.stdout, where.stdout


def test_the_extras_fit_together():
    """gpu names one CUDA major (12) for TensorRT and leaves ONNX Runtime to onnxruntime-gpu; the test tools
    (dev) bring no ONNX Runtime of their own, so '.[gpu,dev]' never installs the CPU and GPU builds together.
    (Resolving '.[gpu]' needs NVIDIA's package index, which the tensorrt-cu12 stubs download from.)"""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {extra: [r.split(">")[0].split("<")[0].split("=")[0].strip() for r in reqs]
             for extra, reqs in extras.items()}
    assert "tensorrt-cu12" in names["gpu"] and "tensorrt" not in names["gpu"]
    assert "onnxruntime-gpu" in names["gpu"] and "onnxruntime" not in names["gpu"]
    assert not {"onnxruntime", "onnxruntime-gpu"} & set(names["dev"])
    assert names["cpu"] == ["onnxruntime"]
