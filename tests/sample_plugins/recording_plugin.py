"""The regression model that also writes, per process, a hash of every image its training step receives
(installed by tests/core/training/test_distributed.py to see which images each rank read)."""

import hashlib
import os
from pathlib import Path

import torch
from regression_plugin import Regression

from genforge import ModelSpec, hookimpl


class Recording(Regression):
    def training_step(self, images, labels, ctx):
        pixels = ((images + 1) * 127.5).round().to(torch.uint8)
        hashes = [hashlib.blake2b(image.numpy().tobytes(), digest_size=8).hexdigest() for image in pixels]
        with (Path(os.environ["GENFORGE_TEST_SEEN"]) / f"rank-{os.environ.get('RANK', '0')}.txt").open("a") as seen:
            seen.write("".join(f"{h}\n" for h in hashes))
        return super().training_step(images, labels, ctx)


@hookimpl
def register_models(register):
    register(ModelSpec("recording", "recording_plugin:Recording", "writes a hash of each image it trains on"))
