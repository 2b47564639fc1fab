"""Every file genforge writes gets the mode a plain open() would give it under the user's umask:
runs, samples, reports, exports, benchmark reports and stores, the run lock and markers."""

import os
import stat

import pytest


@pytest.fixture(params=[0o027])  # mkstemp made 0600 whatever the umask; 0640 is what open() gives
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def modes(folder) -> dict:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


def test_files_follow_the_umask(umask, tmp_path, genforge_cli, genforge_cache):
    out = tmp_path / "out"
    genforge_cli("train", "--steps", "2", "--image-size", "16", "-o", "g_width=8", "-o", "d_width=8",
                 "--sample-every", "1", "--checkpoint-every", "1", "--no-progress", "--out", out / "run")
    genforge_cli("sample", out / "run", "--n", "4", "--out", out / "grid.png")
    genforge_cli("export", "onnx", out / "run", "--out", out / "g.onnx")
    genforge_cli("bench", out / "g.onnx", "--batch", "1", "--warmup-s", "0.01", "--duration-s", "0.05",
                 "--json", out / "bench.json", "--markdown", out / "bench.md", "--record", "--store",
                 out / "store.sqlite", "--commit", "c0ffee")
    found = modes(out)
    expected = 0o666 & ~umask
    assert {"run/config.json", "run/metrics.jsonl", "grid.png", "g.onnx", "bench.json", "bench.md",
            "store.sqlite"} <= set(found), sorted(found)
    wrong = {name: oct(mode) for name, mode in found.items() if mode != expected}
    assert not wrong, f"expected {oct(expected)} under umask {oct(umask)}: {wrong}"
