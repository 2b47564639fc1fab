"""The context a model's training step runs in (autocast, backward, optimizer steps, scaling, augmentation), and
the contract check that runs one step of a new model before training starts."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextlib import contextmanager, nullcontext

import torch

from genforge.core.contract import plugin_error
from genforge.core.errors import UserError
from genforge.core.model import GeneratorModel
from genforge.core.precision import REFERENCE, TABLE, training_precisions
from genforge.core.specs import ModelSpec
from genforge.core.training.augment import INTERVAL, Augmentation
from genforge.core.training.distributed import average_gradients

AUTOCAST_DTYPES = {name: getattr(torch, TABLE[name].autocast) if TABLE[name].autocast else None
                   for name in training_precisions()}


class StepContext:
    def __init__(self, optimizers: dict, device: torch.device, precision: str = REFERENCE,
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

    def report_real_scores(self, scores: torch.Tensor, discriminator=None) -> None:
        """The discriminator's raw scores on the augmented real images, and optionally the discriminator as a
        function `(images, labels) -> scores` (as training_step's images and labels): adaptive augmentation's
        signal, which then compares the training reals' scores with held-out reals' (core/training/augment.py)."""
        self.augmentation.report_real_scores(scores, discriminator)

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


def check_training_step(spec: ModelSpec, model: GeneratorModel, probe: tuple) -> None:
    """One training step on a copy of the model: the optimizers and the step's metrics dict."""
    images, labels = probe
    trial = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        try:
            optimizers = trial.optimizers()
        except Exception as exc:  # noqa: BLE001
            raise plugin_error(spec, f"optimizers() raised {type(exc).__name__}: {exc}") from None
        if not (isinstance(optimizers, Mapping) and optimizers
                and all(isinstance(o, torch.optim.Optimizer) for o in optimizers.values())):
            raise plugin_error(spec, f"optimizers() returned {type(optimizers).__name__}; return a non-empty dict of "
                                     "torch.optim optimizers by name, e.g. {'g': Adam(...), 'd': Adam(...)}")
        # adaptive augmentation at the last step of an interval: a discriminator given to report_real_scores runs
        ctx = StepContext(optimizers, torch.device("cpu"), augmentation=Augmentation(
            "adaptive", held_out=lambda: probe, _steps=INTERVAL - 1))
        trial.train()
        try:
            metrics = trial.training_step(images, labels, ctx)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise plugin_error(spec, f"training_step(images, labels, ctx) raised {type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    check_step_metrics(spec, metrics)


def check_step_metrics(spec, metrics) -> None:
    ok = (isinstance(metrics, Mapping) and metrics
          and all(isinstance(k, str) and isinstance(v, torch.Tensor) and v.numel() == 1 for k, v in metrics.items()))
    if not ok:
        got = type(metrics).__name__ if not isinstance(metrics, Mapping) else repr(
            {k: type(v).__name__ for k, v in metrics.items()})
        raise plugin_error(spec, f"training_step returned {got}; return a dict of scalar tensors, "
                                 "e.g. {'loss': loss.detach()}")
