"""genforge keeps its promises off the happy path: nothing lost, nothing hung, one line for every user error.

Data loss (foreign folders under --overwrite and `genforge run --out`, colliding output paths), bounded
inputs (pipes, infinite durations, deep nesting, sizes beyond memory, seeds, unbounded ONNX graphs),
values that are what they say (typed options, checkpoint tensors, NaN generators, 16-bit images),
errors that read well, and faults: a full disk, read-only places, two writers, signals, kill -9 during
export. Commands whose answer comes from genforge's entry point (main: disk errors, signals, usage
errors) run in a subprocess; the others in-process.
"""

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_genforge, sample_plugin
from PIL import Image

from genforge.core.errors import UserError
from genforge.core.training import checkpoint as ckpt

TINY = ("--image-size", "16", "--batch-size", "16", "-o", "g_width=8", "-o", "d_width=8", "-o", "latent_dim=16",
        "--no-progress")


def fingerprint(*folders) -> dict:
    """Every file's hash; the run lock's holder pid is genforge's own bookkeeping, not a file of the user's."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and p.name != ".genforge-lock"}


def refused(genforge_cli, args, fragments, keep=()):
    """In-process: exit 2, one line naming each fragment, every file under `keep` unchanged."""
    before = fingerprint(*keep)
    assert_one_line_error(genforge_cli(*args, expect=2), *fragments)
    assert fingerprint(*keep) == before


def one_line(result: subprocess.CompletedProcess, status: int, *fragments) -> str:
    """A subprocess answered with one line on stderr (after any progress lines) and no traceback."""
    progress = ("  timing ", "note: ")
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(progress)]
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def run(train_small, tmp_path_factory):
    """A tiny finished dcgan run (treated as read-only by the tests: copy it to change it)."""
    root = tmp_path_factory.mktemp("trust")
    return train_small(root / "run").out


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    from genforge.exporters.onnx import export_onnx

    path = tmp_path_factory.mktemp("trust-onnx") / "g.onnx"
    export_onnx(run, path)
    return path


def copy_run(run, where: Path) -> Path:
    shutil.copytree(run, where)
    return where


# -- data loss -----------------------------------------------------------------------------------------
def test_overwrite_deletes_only_a_folder_genforge_made_and_nothing_foreign(genforge_cli, run, tmp_path):
    mine = copy_run(run, tmp_path / "mine")
    (mine / "notes.txt").write_text("my own notes")
    refused(genforge_cli, ("train", "--steps", "2", *TINY, "--out", mine, "--overwrite"),
            ["files genforge did not write", "notes.txt"], [mine])
    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "config.json").write_text("{}")
    (lookalike / "thesis.tex").write_text("precious")
    refused(genforge_cli, ("train", "--steps", "2", *TINY, "--out", lookalike, "--overwrite"),
            ["not a genforge run"], [lookalike])
    ours = copy_run(run, tmp_path / "ours")
    genforge_cli("train", "--steps", "2", *TINY, "--out", ours, "--overwrite")
    assert (ours / ".genforge-run").is_file() and (ours / "config.json").is_file()


def test_genforge_run_never_replaces_what_it_did_not_make(genforge_cli, tmp_path):
    from genforge.core.folders import make_owned_folder

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"not really a cat")
    for extra in ((), ("--overwrite",)):
        refused(genforge_cli, ("run", "--out", foreign, *extra), ["not a genforge report"], [foreign])
    finished = make_owned_folder(tmp_path / "finished", "report")
    (finished / "report.json").write_text("{}")
    refused(genforge_cli, ("run", "--out", finished), ["holds an earlier report", "--overwrite"], [finished])
    (finished / "my-slides.pdf").write_bytes(b"%PDF")
    refused(genforge_cli, ("run", "--out", finished, "--overwrite"), ["did not write", "my-slides.pdf"],
            [finished])


COLLISIONS = {
    "export --json over the run's config": lambda r, o, t: ("export", "onnx", r, "--out", t / "x.onnx", "--json",
                                                             r / "config.json"),
    "export --json = --out": lambda r, o, t: ("export", "onnx", r, "--out", t / "x.onnx", "--json", t / "x.onnx"),
    "bench --json = the model": lambda r, o, t: ("bench", o, "--json", o, "--duration-s", "0.05"),
    "bench --markdown = --json": lambda r, o, t: ("bench", o, "--json", t / "b.json", "--markdown", t / "b.json"),
    "bench ab --json = target A": lambda r, o, t: ("bench", "ab", o, r, "--json", o),
    "evaluate --json over the run's metrics": lambda r, o, t: ("evaluate", r, "--json", r / "metrics.jsonl"),
}


@pytest.mark.parametrize("case", COLLISIONS)
def test_an_output_colliding_with_an_input_or_another_output_is_refused_first(case, genforge_cli, run, exported,
                                                                                 tmp_path):
    args = COLLISIONS[case](run, exported, tmp_path)
    refused(genforge_cli, args, ["choose another path" if "=" in case else "write it elsewhere"],
            [run, exported.parent])
    assert not list(tmp_path.iterdir()), "nothing written"


# -- bounded inputs ------------------------------------------------------------------------------------
def test_pipes_are_refused_or_skipped_never_read(genforge_cli, tmp_path):
    fifo = tmp_path / "train.toml"
    os.mkfifo(fifo)
    refused(genforge_cli, ("train", "--config", fifo, "--out", tmp_path / "r"), ["not a regular file"])
    images = tmp_path / "images"
    images.mkdir()
    os.mkfifo(images / "pipe.png")
    refused(genforge_cli, ("datasets", "show", "image-folder", "--data-dir", images), ["no images"])
    Image.new("L", (8, 8), 90).save(images / "real.png")
    genforge_cli("datasets", "show", "image-folder", "--data-dir", images, "--image-size", "8")


@pytest.mark.parametrize("args, fragment", [
    (("--duration-s", "inf"), "--duration-s"), (("--duration-s", "nan"), "--duration-s"),
    (("--warmup-s", "inf"), "--warmup-s"), (("--warmup-s", "-1"), "--warmup-s"),
    (("--batch", "1,10000000"), "up to 65536"), (("--min-iters", "10000000000"), "--min-iters"),
])
def test_bench_durations_and_sizes_are_bounded(args, fragment, genforge_cli, exported):
    refused(genforge_cli, ("bench", exported, *args), [fragment], [exported.parent])


def test_pipeline_durations_must_be_finite(genforge_cli, tmp_path):
    for value in ("inf", "nan", "1e9"):
        pipeline = tmp_path / "p.toml"
        pipeline.write_text(f"[bench]\nduration_s = {value}\n")
        refused(genforge_cli, ("run", pipeline, "--out", tmp_path / "out"), ["duration_s"], [pipeline.parent])
        assert not (tmp_path / "out").exists()


def test_deeply_nested_json_and_toml_are_one_line(genforge_cli, tmp_path):
    deep_json = tmp_path / "deep.json"
    deep_json.write_text("[" * 5000 + "]" * 5000)
    refused(genforge_cli, ("bench", "compare", deep_json, deep_json), ["deep"])
    deep_toml = tmp_path / "deep.toml"
    deep_toml.write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")
    refused(genforge_cli, ("train", "--config", deep_toml, "--out", tmp_path / "r"), ["deep"])


@pytest.mark.parametrize("args, fragment", [
    (("sample", "{onnx}", "--n", "1000000000000", "--out", "{tmp}/s.png"), "memory"),
    (("sample", "{run}", "--n", "2000000000", "--out", "{tmp}/s.png"), "memory"),
    (("interpolate", "{onnx}", "--rows", "100000000000", "--out", "{tmp}/i.png"), "memory"),
    (("export", "onnx", "{run}", "--batch", "100000000", "--out", "{tmp}/x.onnx"), "--batch"),
    (("sample", "{onnx}", "--seed", "-1", "--out", "{tmp}/s.png"), "--seed"),
    (("sample", "{onnx}", "--seed", str(2**64), "--out", "{tmp}/s.png"), "--seed"),
    (("evaluate", "{run}", "--n", "1000000000000"), "memory"),
])
def test_sizes_and_seeds_beyond_range_are_one_line(args, fragment, genforge_cli, run, exported, tmp_path):
    args = [a.format(onnx=exported, run=run, tmp=tmp_path) for a in args]
    refused(genforge_cli, args, [fragment], [run, exported.parent])
    assert not list(tmp_path.iterdir())


def test_the_largest_documented_seed_is_accepted(exported, tmp_path, genforge_cli):
    genforge_cli("sample", exported, "--n", "2", "--seed", str(2**63 - 1), "--out", tmp_path / "s.png")
    assert (tmp_path / "s.png").is_file()


def with_metadata(exported: Path, out: Path, **changes) -> Path:
    import onnx

    model = onnx.load(str(exported))
    for prop in model.metadata_props:
        if prop.key in changes:
            prop.value = changes[prop.key]
    onnx.save(model, str(out))
    return out


def test_an_onnx_file_with_a_loop_or_giant_inputs_is_refused_before_running(genforge_cli, exported, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(exported))
    body = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])])
    trips = helper.make_tensor("trips", TensorProto.INT64, [], [10**10])
    model.graph.initializer.extend([trips, helper.make_tensor("yes", TensorProto.BOOL, [], [True])])
    model.graph.node.insert(0, helper.make_node("Loop", ["trips", "yes"], [], body=body, name="forever"))
    looped = tmp_path / "looped.onnx"
    onnx.save(model, str(looped))
    refused(genforge_cli, ("sample", looped, "--out", tmp_path / "s.png"), ["Loop node", "forever"], [tmp_path])
    giant = with_metadata(exported, tmp_path / "giant.onnx", latent_shape="[100000000000]")
    refused(genforge_cli, ("sample", giant, "--out", tmp_path / "s.png"), ["values each"], [tmp_path])


# -- values that are what they say --------------------------------------------------------------------
def test_model_options_are_typed_strictly_and_merged_with_the_config_file(genforge_cli, tmp_path):
    refused(genforge_cli, ("train", "--model", "dcgan", "--steps", "1", *TINY, "-o", "spectral_norm=ture",
                           "--out", tmp_path / "r"), ["spectral_norm='ture'", "true or false"])
    config = tmp_path / "train.toml"
    config.write_text("[model_options]\ng_width = 8\nd_width = 8\nlatent_dim = 16\n")
    out = tmp_path / "merged"
    genforge_cli("train", "--config", config, "-o", "spectral_norm=no", "-o", "d_width=16", "--steps", "1",
                 "--image-size", "16", "--batch-size", "16", "--no-progress", "--out", out)
    record = json.loads((out / "config.json").read_text())
    assert record["train"]["model_options"] == {"g_width": 8, "d_width": 16, "latent_dim": 16,
                                                "spectral_norm": False}
    assert record["model_config"]["g_width"] == 8 and record["model_config"]["spectral_norm"] is False


def broken_copy(run, where: Path, edit) -> Path:
    """A copy of `run` whose latest checkpoint's model tensors are edited by `edit(name, tensor)`."""
    from safetensors.torch import load_file, save_file

    copy = copy_run(run, where)
    latest = ckpt.step_checkpoints(copy / "checkpoints")[-1]
    for name in ("model.safetensors", "ema.safetensors"):
        if (latest / name).exists():
            tensors = load_file(str(latest / name))
            save_file({k: edit(k, v).contiguous() for k, v in tensors.items()}, str(latest / name))
    return copy


def test_checkpoint_tensors_of_the_wrong_dtype_or_values_are_refused(genforge_cli, run, tmp_path):
    as_int = broken_copy(run, tmp_path / "int32", lambda k, v: v.to(torch.int32) if v.is_floating_point() else v)
    refused(genforge_cli, ("sample", as_int, "--out", tmp_path / "s.png"), ["int32", "the model's is float32"],
            [as_int])
    nan = broken_copy(run, tmp_path / "nan", lambda k, v: torch.full_like(v, float("nan"))
                      if v.is_floating_point() and v.ndim > 1 else v)
    for args in (("sample", nan, "--out", tmp_path / "s.png"), ("evaluate", nan, "--n", "100"),
                 ("export", "onnx", nan, "--out", tmp_path / "x.onnx")):
        refused(genforge_cli, args, ["NaN"], [nan])
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.onnx"))


def test_damaged_checkpoint_contents_and_other_widths_are_one_line(genforge_cli, run, tmp_path):
    meta = copy_run(run, tmp_path / "meta")
    latest = ckpt.step_checkpoints(meta / "checkpoints")[-1]
    (latest / "meta.json").write_text(json.dumps({"step": "four"}))
    refused(genforge_cli, ("sample", meta, "--out", tmp_path / "s.png"), ["damaged", "step"], [meta])
    state = copy_run(run, tmp_path / "state")
    latest = ckpt.step_checkpoints(state / "checkpoints")[-1]
    torch.save({"optimizers": [1, 2]}, latest / "state.pt")
    refused(genforge_cli, ("train", "--resume", state, "--steps", "8", "--no-progress"), ["damaged", "optimizers"],
            [state / "checkpoints"])
    no_rng = copy_run(run, tmp_path / "no-rng")
    latest = ckpt.step_checkpoints(no_rng / "checkpoints")[-1]
    state = torch.load(latest / "state.pt", weights_only=True)
    torch.save({**{k: v for k, v in state.items() if k != "rng"}, "rng": {"torch": "not a state"}},
               latest / "state.pt")
    refused(genforge_cli, ("train", "--resume", no_rng, "--steps", "8", "--no-progress"), ["does not fit"],
            [no_rng / "checkpoints"])
    wide = copy_run(run, tmp_path / "wide")
    record = json.loads((wide / "config.json").read_text())
    record["model_config"]["g_width"] = record["train"]["model_options"]["g_width"] = 16
    (wide / "config.json").write_text(json.dumps(record))
    refused(genforge_cli, ("train", "--resume", wide, "--steps", "8", "--no-progress"),
            ["has shape", "other options"], [wide / "checkpoints"])


def test_sixteen_bit_grey_images_are_scaled_not_clipped(tmp_path):
    from genforge.plugins.image_folder import read_square

    values = np.full((8, 8), 32768, dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "half.png")
    assert Image.open(tmp_path / "half.png").mode.startswith("I")
    pixels = read_square(tmp_path / "half.png", 8, "L")
    assert abs(int(pixels.mean()) - 128) <= 1, pixels.mean()


# -- errors that read well ------------------------------------------------------------------------------
def test_usage_errors_control_characters_and_long_messages_are_one_clean_line(tmp_path):
    one_line(run_genforge("train", "--no-such-option"), 2, "no such option", "--help")
    one_line(run_genforge("sample", "\x1b[31mred\x07.onnx", "--out", tmp_path / "s.png"), 2, "\\x1b[31mred\\x07")
    long_line = one_line(run_genforge("train", "--model", "x" * 100000, "--out", tmp_path / "r"), 2)
    assert len(long_line) < 600 and "(cut)" in long_line


def test_markdown_cells_cannot_become_links_or_images():
    from genforge.benchmarks.rows import markdown_cell

    cell = markdown_cell("![x](javascript:alert(1)) [a](b) `c` | d")
    assert "![" not in cell and "](" not in cell and "`" not in cell.replace("\\`", "") and " | " not in cell


def test_plugins_check_exits_1_when_a_plugin_failed(install_plugin, genforge_cli):
    install_plugin("broken_plugin", "raise ImportError('boom')\n", dist="broken-dist")
    result = genforge_cli("plugins", "--check", expect=1)
    assert "boom" in result.stdout + result.stderr


def test_a_pipeline_naming_another_model_starts_from_its_own_options(tmp_path, genforge_cli):
    from genforge.app.pipeline import load_pipeline

    pipeline = tmp_path / "p.toml"
    pipeline.write_text("[train]\nmodel = 'vae'\n")
    assert load_pipeline(pipeline)["train"]["model_options"] == {}
    pipeline.write_text("[train]\nmodel = 'vae'\nmodel_options = {g_width = 8}\n")
    refused(genforge_cli, ("run", pipeline, "--out", tmp_path / "out"), ["unknown model option(s) g_width"])
    assert not (tmp_path / "out").exists()


def test_a_generator_making_zero_to_one_images_is_flagged_at_build(genforge_cli, tmp_path, install_plugin):
    site = install_plugin("unit_plugin", sample_plugin("unit_plugin"), dist="unit-dist")
    (site / "unit_impl.py").write_text(sample_plugin("unit_impl"))
    refused(genforge_cli, ("train", "--model", "unit", "--steps", "1", "--image-size", "16", "--no-progress",
                           "--out", tmp_path / "r"), ["never goes below 0", "images * 2 - 1"])
    assert not (tmp_path / "r").exists()


# -- faults: a full disk, read-only places, two writers, signals, kill -9 ----------------------------------
@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str):
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root (the injected-ENOSPC variant runs instead)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the file system under `folder` until it has no byte left."""
    with contextlib.suppress(OSError), open(folder / "filler", "wb") as out:
        while True:
            out.write(b"\0" * 4096)
            out.flush()
            os.fsync(out.fileno())


INJECT_ENOSPC = ("import errno, os, sys\n"
                 "def full(fd):\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
                 "os.fsync = full\n"
                 "from genforge.app.cli import main\nmain(sys.argv[1:])\n")


def genforge_with_full_disk(*args) -> subprocess.CompletedProcess:
    """genforge with every fsync failing as on a full disk (the variant that needs no root)."""
    return subprocess.run([sys.executable, "-c", INJECT_ENOSPC, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_a_full_disk_is_one_line_and_keeps_what_was_there(run, exported, tmp_path):
    disk = tmp_path / "disk"
    with mounted_tmpfs(disk, "4m"):
        resumed = copy_run(run, disk / "run")
        shutil.copy(exported, disk / "old.onnx")
        (disk / "old.json").write_text('{"previous": "report"}')
        (disk / "scores.json").write_text('{"previous": "scores"}')
        before = fingerprint(disk)
        fill(disk)
        one_line(run_genforge("train", "--resume", resumed, "--steps", "8", "--no-progress"), 2, "disk is full")
        one_line(run_genforge("export", "onnx", run, "--out", disk / "old.onnx", "--overwrite"), 2, "disk is full")
        one_line(run_genforge("bench", exported, "--batch", "1", "--duration-s", "0.05", "--warmup-s", "0",
                              "--json", disk / "old.json"), 2, "disk is full")
        one_line(run_genforge("evaluate", run, "--n", "100", "--json", disk / "scores.json"), 2, "disk is full")
        (disk / "filler").unlink()
        assert fingerprint(disk) == before, "every earlier file intact"
        assert ckpt.read_checkpoint(ckpt.step_checkpoints(resumed / "checkpoints")[-1]).step == 4


def test_an_injected_full_disk_is_one_line_and_keeps_what_was_there(run, exported, tmp_path):
    resumed = copy_run(run, tmp_path / "run")
    old = tmp_path / "old.json"
    old.write_text('{"previous": "report"}')
    before = fingerprint(tmp_path)
    one_line(genforge_with_full_disk("train", "--resume", resumed, "--steps", "8", "--no-progress"), 2, "disk is full")
    one_line(genforge_with_full_disk("bench", exported, "--batch", "1", "--duration-s", "0.05", "--warmup-s", "0",
                                     "--json", old), 2, "disk is full")
    one_line(genforge_with_full_disk("evaluate", run, "--n", "100", "--json", old), 2, "disk is full")
    one_line(genforge_with_full_disk("export", "onnx", run, "--out", tmp_path / "new.onnx"), 2, "disk is full")
    after = fingerprint(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not set(after) - set(before), set(after) - set(before)


def test_read_only_run_directory_and_cache(run, tmp_path):
    place = tmp_path / "ro"
    with mounted_tmpfs(place, "16m"):
        frozen = copy_run(run, place / "run")
        (place / "cache").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(place)], check=True)
        one_line(run_genforge("train", "--resume", frozen, "--steps", "8", "--no-progress"), 2, "read-only")
        result = run_genforge("export", "onnx", frozen, "--out", tmp_path / "x.onnx")
        assert result.returncode == 0 and (tmp_path / "x.onnx").is_file(), result.stderr
        result = run_genforge("evaluate", frozen, "--n", "100", env_extra={"GENFORGE_CACHE": str(place / "cache")})
        assert result.returncode == 0 and "could not cache" in result.stderr, result.stderr


def wait_for(condition, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_training(out: Path, *args) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("genforge")
    return subprocess.Popen([str(exe), "train", "--steps", "100000", *TINY, "--checkpoint-every", "50",
                             "--sample-every", "0", *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def logged_steps(out: Path) -> int:
    path = out / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_second_writer_on_a_run_directory_is_refused(run, tmp_path):
    busy = copy_run(run, tmp_path / "busy")
    exe = Path(sys.executable).with_name("genforge")
    first = subprocess.Popen([str(exe), "train", "--resume", str(busy), "--steps", "100000", "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: logged_steps(busy) > 6, what="the first resume to train")
        one_line(run_genforge("train", "--resume", busy, "--steps", "100000", "--no-progress"), 2,
                 "in use by genforge process", str(first.pid))
    finally:
        first.kill()
        first.wait()
    result = run_genforge("train", "--resume", busy, "--steps", "10", "--no-progress")
    assert result.returncode == 0 or "already reached" in result.stderr, result.stderr


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_training_between_steps_and_resume_goes_on(sig, status, tmp_path):
    out = tmp_path / "run"
    process = start_training(out)
    wait_for(lambda: logged_steps(out) >= 2, what="training to start")
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert process.returncode == status and len(lines) == 1, (process.returncode, stderr)
    assert "is safe" in lines[0] and f"genforge train --resume {out}" in lines[0], lines[0]
    stopped = ckpt.step_checkpoints(out / "checkpoints")[-1]
    step = ckpt.read_checkpoint(stopped).step
    assert stopped.name in lines[0] and step >= 2
    result = run_genforge("train", "--resume", out, "--steps", str(step + 3), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert ckpt.read_checkpoint(ckpt.step_checkpoints(out / "checkpoints")[-1]).step == step + 3


def test_kill_9_during_export_leaves_nothing_after_the_next_export(run, tmp_path):
    exe = Path(sys.executable).with_name("genforge")
    for _ in range(3):
        process = subprocess.Popen([str(exe), "export", "onnx", str(run), "--out", str(tmp_path / "a.onnx"),
                                    "--precision", "int8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: list(tmp_path.glob(".genforge-export-*")), timeout=60, what="the export to start")
        process.kill()
        process.wait()
        if list(tmp_path.glob(".genforge-export-*")):
            break
    assert list(tmp_path.glob(".genforge-export-*")), "the killed export left its temporary folder"
    result = run_genforge("export", "onnx", run, "--out", tmp_path / "b.onnx")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.onnx"]


def test_the_bug_handler_falls_back_when_the_crash_folder_cannot_be_written(tmp_path):
    code = ("import sys\nfrom genforge.app import cli\n"
            "def boom(*a, **k):\n    raise RuntimeError('planted bug')\n"
            "cli.get_registry = boom\ncli.main(['models'])\n")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the crash folder should be")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "GENFORGE_CRASH_DIR": str(blocker / "crashes")})
    line = one_line(result, 1, "planted bug", "genforge-crash-")
    assert str(blocker) not in line


def test_bad_arguments_from_python_raise_genforge_errors_that_are_value_errors(run):
    from genforge.core import runtime
    from genforge.core.numerics import check_output_values

    with pytest.raises(UserError, match="NaN"):
        check_output_values(np.array([np.nan], dtype=np.float32), "images")
    with pytest.raises(ValueError, match="seed"):
        runtime.load(run).generate(n=2, seed=-3)
    with pytest.raises(UserError, match="memory"):
        runtime.load(run).generate(n=10**12)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_standard_output_on_a_full_device_is_one_line():
    exe = Path(sys.executable).with_name("genforge")
    with open("/dev/full", "w") as full:
        result = subprocess.run([str(exe), "models"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    one_line(result, 2, "cannot write standard output", "disk is full")


def test_a_suite_target_without_a_model_and_a_report_with_wrong_types_are_one_line(genforge_cli, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text("[[targets]]\nname = 'a'\n")
    refused(genforge_cli, ("bench", "suite", suite, "--smoke", "--out", tmp_path / "out"), ["has no model"])
    report = tmp_path / "r.json"
    row = {"target": "t", "target_kind": "onnx", "backend": "ort-cpu", "batch": 1, "status": "ok",
           "samples_ms": [1.0], "stats": {k: 1.0 for k in ("n", "min_ms", "median_ms", "mean_ms", "p90_ms", "p95_ms",
                                                          "p99_ms", "max_ms", "std_ms", "cv")},
           "throughput_img_s": 1.0, "first_call_s": 0.1, "peak_rss_mib": 1.0, "device": "cpu", "gflops": None,
           "peak_share": None}
    row["stats"]["median_ms"] = "fast"
    report.write_text(json.dumps({"schema": "genforge.bench/1", "environment": {}, "settings": {}, "rows": [row]}))
    refused(genforge_cli, ("bench", "compare", report, report), ["not a genforge benchmark report"])


def test_a_damaged_classifier_cache_is_rebuilt_and_plugins_new_refuses_an_unwritable_place(run, genforge_cli,
                                                                                          tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GENFORGE_CACHE", str(cache))
    genforge_cli("evaluate", run, "--n", "100")
    for path in (cache / "classifiers").glob("*"):
        path.write_bytes(b"\x00garbage")
    result = genforge_cli("evaluate", run, "--n", "100")
    assert "fd" in result.stdout
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    refused(genforge_cli, ("plugins", "new", "my-gan", "--kind", "model", "--out", blocker / "pkg"),
            ["cannot be written"])
