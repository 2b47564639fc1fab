"""A training callback counting steps and checkpoints, stopping early when asked
(tests/core/training/test_callbacks.py)."""
from genforge import Callback


class CountSteps(Callback):
    """Counts the steps it saw and the checkpoints written; stops training at `stop_at`."""

    def __init__(self, stop_at=None):
        self.seen, self.checkpoints, self.stop_at = 0, 0, stop_at

    def on_step_end(self, trainer, metrics):
        self.seen += 1
        assert set(metrics) and trainer.step >= self.seen
        if self.stop_at and trainer.step >= self.stop_at:
            trainer.stop_reason = f"CountSteps stops at step {self.stop_at}"

    def on_checkpoint(self, trainer, path):
        self.checkpoints += 1

    def state_dict(self):
        return {"seen": self.seen, "checkpoints": self.checkpoints}

    def load_state_dict(self, state):
        self.seen, self.checkpoints = state.get("seen", 0), state.get("checkpoints", 0)
