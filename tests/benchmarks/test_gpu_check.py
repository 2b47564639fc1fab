"""The one-shot GPU check runs end to end on the CPU in its dry mode: every GPU step skipped with its reason."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scripts" / "gpu_check.py"
spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def test_the_dry_gpu_check_skips_every_gpu_step_with_its_reason(tmp_path, capsys):
    out = tmp_path / "gpu-check.json"
    assert gpu_check.main(["--dry", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    steps = {s["step"]: s for s in result["steps"]}
    expected = (1 + len(gpu_check.MODELS) * len(gpu_check.TRAIN_PRECISIONS)
                + 2 * len(gpu_check.MODELS) * len(gpu_check.EXPORT_PRECISIONS) + 1)
    assert len(steps) == expected
    assert all(s["status"] == "skipped" and s["reason"] for s in steps.values())
    assert steps["gpu-marked tests"]["reason"] == "--dry was given"
    assert steps["export dcgan-fp32 int8"]["reason"] == "--dry was given"
    assert result["schema"] == "genforge.gpu_check/1" and "threads" in result["environment"]
    printed = capsys.readouterr().out
    assert "timing" in printed.splitlines()[0] and "skipped  engine dcgan-fp32-int8.onnx" in printed
