"""The order of training batches, a pure function of (seed, epoch).

Each epoch is one permutation of the train split with the last partial batch dropped. Together with
the RNG state stored in every checkpoint, this is what makes a resumed run end with the same weights
as an uninterrupted one.
"""

from __future__ import annotations

import torch

from genforge.core.data import batch_of
from genforge.core.errors import UserError
from genforge.core.training.distributed import Placement, shard


class BatchSampler:
    """Batches of the train split in an order fixed by (seed, epoch); with several processes, each takes its
    shard of every global batch of batch_size (core/training/distributed.py)."""

    def __init__(self, dataset, batch_size: int, seed: int, placement: Placement = Placement()):
        self.dataset, self.batch_size, self.seed, self.placement = dataset, batch_size, seed, placement
        self.steps_per_epoch = len(dataset) // batch_size
        if self.steps_per_epoch == 0:
            raise UserError(f"the dataset has {len(dataset)} images, fewer than one batch of {batch_size}; "
                            "lower --batch-size")
        self._epoch, self._perm = -1, None

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(len(self.dataset), generator=generator)
        indices = self._perm[index * self.batch_size:(index + 1) * self.batch_size]
        return batch_of(self.dataset, shard(indices, self.placement))


class HeldOutSampler:
    """Random batches of a held-out split (adaptive augmentation's r_v), a pure function of (seed, step), so a
    resumed run draws what an unbroken one would; with several processes, each takes its shard of the batch."""

    def __init__(self, dataset, batch_size: int, seed: int, placement: Placement = Placement()):
        self.dataset, self.batch_size, self.seed, self.placement = dataset, batch_size, seed, placement

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + step) * 1_009 + 1)
        indices = torch.randint(len(self.dataset), (self.batch_size,), generator=generator)
        return batch_of(self.dataset, shard(indices, self.placement))
