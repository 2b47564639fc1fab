"""The context a model's training step runs in: autocast, backward, optimizer steps, scaling."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch

from genforge.core.precision import TABLE, training_precisions
from genforge.core.training.augment import Augmentation
from genforge.core.training.distributed import average_gradients

AUTOCAST_DTYPES = {name: getattr(torch, TABLE[name].autocast) if TABLE[name].autocast else None
                   for name in training_precisions()}


class StepContext:
    def __init__(self, optimizers: dict, device: torch.device, precision: str = "fp32",
                 augmentation: Augmentation | None = None):
        self.optimizers = optimizers
        self.device = device
        self.precision = precision
        self.augmentation = augmentation or Augmentation("none")
        self.dtype = AUTOCAST_DTYPES[precision]
        use_scaler = TABLE[precision].training_needs_cuda  # fp16: gradient scaling
        self.scalers = {name: torch.amp.GradScaler(device.type) for name in optimizers} if use_scaler else {}

    def autocast(self):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """What the discriminator sees of real or generated images: the run's differentiable augmentation
        (`--augment`; core/training/augment.py), or the images themselves when it is off."""
        return self.augmentation(images)

    def report_real_scores(self, scores: torch.Tensor) -> None:
        """The discriminator's raw scores on the augmented real images; adaptive augmentation's signal."""
        self.augmentation.report_real_scores(scores)

    def randn(self, *shape) -> torch.Tensor:
        return torch.randn(shape, device=self.device)

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        """zero_grad, backward (scaled under fp16), step: one update of optimizer `name`.

        With several processes the gradients are averaged over them before the step (core/training/distributed.py).
        """
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        scaler = self.scalers.get(name)
        (loss if scaler is None else scaler.scale(loss)).backward()
        average_gradients([p for group in optimizer.param_groups for p in group["params"]])
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()

    @contextmanager
    def frozen(self, module: torch.nn.Module):
        """No weight gradients for `module` inside (a GAN's G step needs none for D)."""
        params = [p for p in module.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def state_dict(self) -> dict:
        return {**{name: scaler.state_dict() for name, scaler in self.scalers.items()},
                "augmentation": self.augmentation.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for name, saved in state.items():
            if name in self.scalers:
                self.scalers[name].load_state_dict(saved)
        self.augmentation.load_state_dict(state.get("augmentation", {}))
