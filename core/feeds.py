"""What every tool feeds a generator: noise and labels drawn as everywhere (core/inputs.py), and a restoration
model's image inputs degraded from its run's own test images by its degrade() (core/restore.py), never noise
in place of an image. The export's tracing, parity checks and int8 calibration, and the runtime's bf16 check,
take their inputs from here.
"""

from __future__ import annotations

import numpy as np
import torch

from genforge.core.contract import cycled_images, run_test_split
from genforge.core.inputs import GeneratorSignature, signature_of
from genforge.core.restore import degraded_inputs, numpy_inputs


class GeneratorFeeds:
    """Inputs for a generator in call order (z, labels, image inputs), the same for the same (n, seed)."""

    def __init__(self, signature: GeneratorSignature, model=None, train: dict | None = None):
        if signature.restores and (model is None or train is None):
            raise ValueError("a restoration model's feeds need the model (its degrade) and its run's data")
        self.signature, self.model, self.train = signature, model, train
        self._test_split = None  # opened once: calibration and the parity checks ask many times

    @classmethod
    def of_run(cls, loaded) -> GeneratorFeeds:
        """The feeds of a loaded run directory (core/runs/run_dir.py LoadedRun)."""
        return cls(signature_of(loaded.model), loaded.model, loaded.record["train"])

    def clean(self, n: int, seed: int = 0) -> torch.Tensor:
        """The clean test images that arrays(n, seed) degrades."""
        if self._test_split is None:
            self._test_split = run_test_split(self.train)
        return cycled_images(self._test_split, n, start=seed * n)

    def arrays(self, n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
        z, labels = self.signature.inputs(n=n, seed=seed)
        images = numpy_inputs(degraded_inputs(self.model, self.clean(n, seed), seed)) if self.signature.restores else ()
        return (z, *(() if labels is None else (labels,)), *images)

    def feed(self, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        """The inputs by ONNX input name."""
        return dict(zip(self.signature.input_names, self.arrays(n, seed)))

    def tensors(self, n: int, seed: int = 0, device="cpu") -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(a).to(device) for a in self.arrays(n, seed))
