"""The exponential moving average of the generator's weights (the EmaUpdate callback keeps it)."""

from __future__ import annotations

from contextlib import contextmanager

import torch


class EMA:
    """Exponential moving average of a module's floating-point state (weights and BN statistics).

    The decay warms up as min(decay, (1 + step) / (10 + step)), as in TensorFlow's
    ExponentialMovingAverage with num_updates: early on the average follows the weights closely, so
    short runs are not dragged back to their first, poor steps (Yazici et al. 2019 on EMA for GANs).
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        for key, value in module.state_dict().items():
            if value.is_floating_point():
                self.state[key].lerp_(value, weight)
            else:
                self.state[key].copy_(value)

    @contextmanager
    def applied_to(self, module: torch.nn.Module):
        """`module` holding the averaged state for the block; its own state restored after."""
        own = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(self.state)
        try:
            yield module
        finally:
            module.load_state_dict(own)
