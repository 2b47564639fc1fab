"""A logger plugin that fails on its second record, and one that needs a module nobody has
(tests/core/training/test_loggers.py)."""

from genforge import Logger, LoggerSpec, hookimpl


class BrokenLogger(Logger):
    def start(self, run_dir, hyperparams, step, state):
        self.records = 0

    def log_metrics(self, record):
        self.records += 1
        if self.records == 2:
            raise OSError("the tracking server went away")


@hookimpl
def register_loggers(register):
    register(LoggerSpec("broken", "broken_logger:BrokenLogger", "fails on its second record"))
    register(LoggerSpec("needs-nothing-here", "broken_logger:BrokenLogger", "needs a missing module",
                        requires=("genforge_no_such_module",), install_hint="pip install genforge-no-such-module"))
