"""The everyday commands: help that shows what the README uses, captions that name classes in full, verdict lines
at the end of long commands, and no minutes-long compile in the default benchmark."""

import pytest

from genforge.core import images


@pytest.fixture
def captions(monkeypatch):
    """The captions every grid written during the test was drawn with."""
    seen = []
    real = images.grid_image

    def spy(pictures, nrow=None, padding=2, captions=None, scale=1):
        seen.append((list(captions) if captions is not None else None, nrow, scale))
        return real(pictures, nrow, padding, captions, scale)

    monkeypatch.setattr(images, "grid_image", spy)
    return seen


def test_bench_help_shows_the_options_of_the_bare_form(genforge_cli):
    text = genforge_cli("bench", "--help").stdout
    assert "--batch" in text and "--json" in text and "--markdown" in text and "compare" in text


def test_dataset_previews_name_classes_in_full_with_room_for_them(genforge_cli, tmp_path, captions):
    genforge_cli("datasets", "show", "shapes", "--image-size", "16", "--out", tmp_path / "p.png")
    drawn, _, scale = captions[-1]
    assert "triangle" in drawn and scale * 16 >= 6 * len("triangle")


def test_conditional_grids_are_captioned_by_class(train_small, genforge_cli, tmp_path, captions):
    from genforge.exporters.onnx import export_onnx

    run = train_small(tmp_path / "run", model="cgan", steps=2).out
    training_grid, nrow, _ = captions[-1]
    assert training_grid[:10] == [str(i) for i in range(10)] and nrow == 10
    export_onnx(run, tmp_path / "c.onnx")
    result = genforge_cli("sample", tmp_path / "c.onnx", "--n", "20", "--out", tmp_path / "s.png")
    assert captions[-1][0] == [str(i % 10) for i in range(20)] and captions[-1][1] == 10
    assert "one class per column" in result.stdout
    genforge_cli("interpolate", run, "--rows", "3", "--steps", "4", "--out", tmp_path / "i.png")
    assert captions[-1][0] == ["0"] * 4 + ["1"] * 4 + ["2"] * 4


def test_long_commands_end_with_a_verdict_line(train_small, genforge_cli, tmp_path):
    run = train_small(tmp_path / "run", steps=2).out
    evaluated = genforge_cli("evaluate", run, "--n", "100")
    assert "verdict: FD" in evaluated.stdout and "x the floor" in evaluated.stdout
    assert "scoring 100 samples" in evaluated.stdout
    exported = genforge_cli("export", "onnx", run, "--out", tmp_path / "g.onnx", "--precision", "int8",
                            "--quality-samples", "50", "--max-fd-increase", "10")
    assert "int8: FD" in exported.stdout and "gate 1000%: passed" in exported.stdout
    assert "quality gate on 50 samples" in exported.stdout


def test_the_default_benchmark_leaves_torch_compile_out(train_small, tmp_path):
    from genforge.benchmarks.measure import Settings, run_benchmarks

    run = train_small(tmp_path / "run", steps=2).out
    report = run_benchmarks([run], None, Settings((1,), 0.0, 2, 0.02))
    assert "torch-compile" not in {row["backend"] for row in report["rows"]}
    assert "torch" in {row["backend"] for row in report["rows"]}
