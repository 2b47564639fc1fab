"""What a path given to genforge is: a run directory (or one of its checkpoints), an .onnx or an .engine.

The one place that classifies a target; the runtime API and the benchmarks both ask it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genforge.core.errors import UserError

FILE_KINDS = {".onnx": "onnx", ".engine": "engine", ".plan": "engine"}


@dataclass
class Target:
    path: Path  # the run directory, .onnx or .engine
    kind: str  # run | onnx | engine
    checkpoint: str | None = None  # a run's checkpoint folder, when one was named

    @property
    def name(self) -> str:
        return f"{self.path.name}@{Path(self.checkpoint).name}" if self.checkpoint else self.path.name


def classify_target(path, what: str = "target") -> Target:
    """A Target for `path`, or a one-line error saying what genforge takes."""
    if path is None or str(path) == "":
        raise UserError(f"no {what} given; pass a run directory, an .onnx file or an .engine file")
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist; pass a run directory, an .onnx file or an .engine file")
    if path.is_dir():
        if path.parent.name == "checkpoints" and (path.parent.parent / "config.json").exists():
            return Target(path.parent.parent, "run", checkpoint=str(path))
        if not (path / "config.json").exists():
            raise UserError(f"{path} is not a genforge run directory (no config.json); pass a folder made by "
                            "`genforge train`")
        return Target(path, "run")
    if path.suffix not in FILE_KINDS:
        raise UserError(f"{path.name} is neither a run directory, an .onnx file nor an .engine file")
    return Target(path, FILE_KINDS[path.suffix])
