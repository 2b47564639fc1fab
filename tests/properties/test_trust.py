"""genforge keeps its promises off the happy path: nothing lost, nothing hung, one line for every user error.

Data loss (foreign folders under --overwrite and `genforge run --out`, colliding output paths), bounded
inputs (pipes, infinite durations, deep nesting, sizes beyond memory, seeds, unbounded ONNX graphs),
values that are what they say (typed options, checkpoint tensors, NaN generators, 16-bit images),
errors that read well, and faults: a full disk, read-only places, two writers, signals, kill -9 during
export. Commands whose answer comes from genforge's entry point (main: disk errors, signals, usage
errors) run in a subprocess; the others in-process.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, copy_run, one_line, refused, run_genforge, sample_plugin
from PIL import Image

from genforge.core.runs import checkpoint as ckpt


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
    assert markdown_cell("the classifier's \"accuracy\" <b>") == "the classifier's \"accuracy\" &lt;b&gt;", \
        "quotes stay quotes in report.md; markup is escaped"


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


# -- one run per folder -------------------------------------------------------------------------
def test_a_run_that_filled_the_folder_first_is_never_trained_over(genforge_cli, run, tmp_path, monkeypatch):
    """The interleaving: this process found the new folder empty; another took the lock first, trained and
    finished. Under the lock this one must see the other's run and refuse, leaving it as it was."""
    from helpers import fingerprint

    from genforge.core.training import trainer as trainer_module

    out = tmp_path / "shared"
    real_make = trainer_module.make_owned_folder

    def other_process_wins(folder, kind):
        copy_run(run, folder)  # what the winner left: a finished run, marker and all
        return real_make(folder, kind)

    monkeypatch.setattr(trainer_module, "make_owned_folder", other_process_wins)
    monkeypatch.setattr(trainer_module.Trainer, "_check_run_dir", lambda self, resume, overwrite: None)
    result = genforge_cli("train", "--steps", "2", *TINY, "--out", out, expect=2)
    assert "was filled by another genforge process" in result.stderr and "config.json" in result.stderr

    def relative(folder):
        return {Path(path).relative_to(folder): digest for path, digest in fingerprint(folder).items()}

    assert relative(out) == relative(run), "the winner's run is left exactly as it was"


@pytest.mark.slow
def test_two_trainings_started_together_into_one_new_folder_one_proceeds(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "together"
    exe = Path(sys.executable).with_name("genforge")
    args = [str(exe), "train", "--steps", "3", *TINY, "--out", str(out)]
    processes = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert any(fragment in loser for fragment in ("in use by genforge process", "was filled by another",
                                                   "already exists")), loser
    assert len([line for line in loser.splitlines() if line.startswith("Error")]) == 1
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 3


@pytest.mark.slow
def test_a_damaged_metrics_line_is_said_once_before_a_resume_trains(run, tmp_path):
    """A line damaged in the middle of metrics.jsonl (not the last one, which a kill may cut short) is named
    in one warning line as the resume starts; the run goes on with the good records."""
    mine = copy_run(run, tmp_path / "mine")
    log = mine / "metrics.jsonl"
    lines = log.read_text().splitlines()
    lines[0] = lines[0][:15]
    log.write_text("\n".join(lines) + "\n")
    result = run_genforge("train", "--resume", mine, "--steps", "6", "--no-progress")
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warning) == 1 and warning[0].startswith("Warning: ") and "line(s) 1 were damaged" in warning[0]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records if r.get("kind") == "train"][-1] == 6
    cut = copy_run(run, tmp_path / "cut")  # a last line cut short by a kill is expected: no warning
    (cut / "metrics.jsonl").write_text((cut / "metrics.jsonl").read_text() + '{"kind": "tra')
    result = run_genforge("train", "--resume", cut, "--steps", "6", "--no-progress")
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr


@pytest.mark.parametrize("edit, fragment", [
    ({"loss": 5}, "loss=5 must be str"),
    ({"g_width": 16}, "disagrees with its train model_options"),
])
def test_a_hand_edited_model_config_is_refused_before_a_resume_trains(edit, fragment, run, tmp_path, genforge_cli):
    """What sample, evaluate and export will build (model_config) must be what the resume trains: checked first,
    not found after training."""
    mine = copy_run(run, tmp_path / "mine")
    record = json.loads((mine / "config.json").read_text())
    record["model_config"].update(edit)
    (mine / "config.json").write_text(json.dumps(record))
    refused(genforge_cli, ("train", "--resume", mine, "--steps", "8", "--no-progress"), ["config.json", fragment],
            [mine])


# -- numbers are bounded where they enter -------------------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (("train", "--model", "cgan", "-o", "class_loss=inf", "--steps", "1"), "finite"),
    (("train", "--model", "cgan", "-o", "class_loss=nan", "--steps", "1"), "finite"),
    (("train", "--ema-decay", "nan", "--steps", "1"), "--ema-decay"),
    (("export", "onnx", "RUN", "--max-fd-increase", "nan"), "--max-fd-increase"),
    (("bench", "RUN", "--duration-s", "nan"), "--duration-s"),
    (("bench", "compare", "R", "R", "--alpha", "nan"), "--alpha"),
    (("bench", "compare", "R", "R", "--alpha", "1"), "--alpha"),
    (("bench", "compare", "R", "R", "--min-effect", "-5%"), "--min-effect"),
    (("bench", "compare", "R", "R", "--min-effect", "nan"), "--min-effect"),
])
def test_non_finite_and_out_of_range_numbers_are_one_line(args, fragment, genforge_cli, run, tmp_path):
    report = tmp_path / "r.json"
    report.write_text("{}")
    args = [str(run) if a == "RUN" else report if a == "R" else a for a in args]
    refused(genforge_cli, (*args, "--out", tmp_path / "x") if args[0] == "train" else args, [fragment])


def test_reports_with_times_of_zero_or_nan_are_refused(genforge_cli, tmp_path):
    from helpers import ROW, fake_report

    for bad in (0.0, -1.0, float("nan")):
        report = fake_report({ROW: 10.0})
        report["rows"][0]["samples_ms"][3] = bad
        path = tmp_path / "r.json"
        path.write_text(json.dumps(report))
        refused(genforge_cli, ("bench", "compare", path, path), ["samples_ms"])


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "a/b", ".hidden", ""])
def test_a_suite_target_name_cannot_write_outside_the_work_folder(name, genforge_cli, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(f'[train]\nsteps = 1\n[[targets]]\nname = "{name}"\nmodel = "dcgan"\n')
    refused(genforge_cli, ("bench", "suite", suite, "--out", tmp_path / "out", "--smoke"), ["name"])
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escaped").exists()


def test_a_conditional_sample_too_large_for_memory_is_refused_before_any_array(genforge_cli, tmp_path):
    """The memory check comes before a conditional model's default labels are allocated (else MemoryError)."""
    cgan = tmp_path / "cgan"
    genforge_cli("train", "--model", "cgan", "--steps", "1", *TINY, "-o", "embed_dim=8", "--out", cgan)
    refused(genforge_cli, ("sample", cgan, "--n", str(10**12), "--out", tmp_path / "s.png"), ["memory"])


def test_a_bench_ab_worker_that_prints_no_json_is_one_line(genforge_cli, exported, tmp_path):
    """--python-a names a Python whose `genforge` answers with something else."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'Python 3.11.7 has no genforge here'\nsleep 30\n")
    fake.chmod(0o755)
    refused(genforge_cli, ("bench", "ab", exported, "--python-a", fake, "--backend", "ort-cpu", "--batch", "1",
                           "--duration-s", "0.1", "--warmup-s", "0"), ["JSON"])
