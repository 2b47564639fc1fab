"""docs/quickstart.ipynb runs top to bottom in a real Jupyter kernel, and is committed without outputs."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # executes the quickstart notebook in a Jupyter kernel

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "quickstart.ipynb"


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_the_quickstart_runs_in_a_jupyter_kernel(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [[output for output in cell.outputs] for cell in notebook.cells if cell.cell_type == "code"]
    shown = [{kind for output in cell for kind in output.get("data", {})} for cell in outputs]
    assert "text/html" in shown[1] and "image/png" in shown[2] and "text/html" in shown[3]  # run, samples, scores
    assert "text/markdown" in shown[5]  # the benchmark table
    assert not any(output.output_type == "error" for cell in outputs for output in cell)
    assert (tmp_path / "quickstart" / "cgan-int8.onnx").exists()
    assert (tmp_path / "quickstart" / "cgan" / "tensorboard").is_dir()
