"""The regression model whose process 1 aborts as it exits, after training (installed by
tests/core/training/test_distributed.py: an abort in teardown, past the last barrier, is not a failed run)."""

import atexit
import os

from regression_plugin import Regression

from genforge import ModelSpec, hookimpl


class AbortingAtExit(Regression):
    def __init__(self, info, config):
        super().__init__(info, config)
        if os.environ.get("RANK") == "1":
            atexit.register(os.abort)


@hookimpl
def register_models(register):
    register(ModelSpec("aborting", "aborting_plugin:AbortingAtExit", "process 1 aborts as it exits"))
