"""One precision table (core/precision.py): every layer's choices and rules are read from its rows."""

import click
import pytest

from genforge.core import precision as table
from genforge.core.errors import UserError


def choices(command, option: str) -> tuple:
    param = next(p for p in command.params if p.name == option)
    assert isinstance(param.type, click.Choice)
    return tuple(param.type.choices)


def test_every_layer_offers_exactly_the_rows_that_have_its_column():
    from genforge.app.cli import train
    from genforge.app.cli_bench import bench_run
    from genforge.app.cli_export import export_onnx_command
    from genforge.core.runtime.pytorch import TORCH_PRECISIONS
    from genforge.core.training.step import AUTOCAST_DTYPES
    from genforge.exporters.precisions import PRECISIONS

    assert choices(train, "precision") == table.training_precisions() == tuple(AUTOCAST_DTYPES)
    assert choices(export_onnx_command, "precision") == tuple(table.export_precisions()) == tuple(PRECISIONS)
    assert choices(bench_run, "precision") == table.runtime_precisions() == TORCH_PRECISIONS
    assert all(table.TABLE[name].runtime_dtype is None for name in TORCH_PRECISIONS if name == table.REFERENCE)
    for name, row in table.export_precisions().items():
        assert (row.convert is None) == (name == "fp32") and (row.convert is None or callable(row.converter()))


def test_the_training_rule_for_cuda_only_precisions_comes_from_the_table(monkeypatch):
    import torch

    from genforge.core.runs.config import check_precision

    with pytest.raises(UserError, match="fp16 training needs CUDA"):
        check_precision("fp16", torch.device("cpu"))
    monkeypatch.setitem(table.TABLE, "bf16", table.Precision("bf16", "", trains=True, autocast="bfloat16",
                                                             training_needs_cuda=True))
    with pytest.raises(UserError, match="bf16 training needs CUDA"):
        check_precision("bf16", torch.device("cpu"))


def test_bench_times_a_run_directory_on_the_rows_backend(run, monkeypatch):
    import genforge

    seen = {}

    def fake_run_benchmarks(paths, names, settings, progress=None):
        seen["names"] = names
        return {"rows": []}

    monkeypatch.setattr("genforge.benchmarks.measure.run_benchmarks", fake_run_benchmarks)
    genforge.bench(run, backends="torch,ort-cpu", precision="bf16")
    assert seen["names"] == [table.TABLE["bf16"].bench_backend, "ort-cpu"]
    with pytest.raises(UserError, match="use fp32 or bf16"):
        genforge.bench(run, precision="int8")
