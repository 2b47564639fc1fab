"""Training on several processes (and machines) with torch.distributed: what the trainer needs of it.

genforge's workers are started by torch's elastic launcher (`torch.distributed.run`: `genforge train
--nproc N` calls it for one machine; `torchrun ... -m genforge.app.cli train ...` spans machines)
and find their place in its environment variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...).

Data parallel training, as DistributedDataParallel does it, at the StepContext seam: every process
holds the whole model (broadcast from rank 0 at the start), trains on its own shard of each global
batch, and at every `ctx.optimize` the gradients of that optimizer's parameters are averaged over
the processes (one coalesced all_reduce) before the step, so every process takes the same step. The
networks are not wrapped in DistributedDataParallel itself: a model plugin calls its networks
directly, several times per step, with parts frozen (a GAN's discriminator in its G step), which DDP's
forward hooks do not follow. Buffers (BatchNorm running statistics) are broadcast from rank 0 after
every step, as DDP's broadcast_buffers does; `--sync-batchnorm` (CUDA) converts BatchNorm to
torch's SyncBatchNorm so the batch statistics span all processes.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from genforge.core.errors import UserError
from genforge.core.files import write_atomic

if TYPE_CHECKING:
    from genforge.core.runs.config import TrainConfig

DEFAULT_TIMEOUT_S = 300  # a collective waiting longer than this ends the run instead of hanging


@dataclass(frozen=True)
class Placement:
    """Where this process stands in the run: its rank among world_size processes, and its rank on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def placement_from_environment() -> Placement:
    """The launcher's RANK, WORLD_SIZE and LOCAL_RANK; one process (rank 0 of 1) without a launcher."""
    try:
        return Placement(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                         int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise UserError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (they come from torchrun)") from None


def start(placement: Placement, device_type: str, timeout_s: int = DEFAULT_TIMEOUT_S) -> torch.device | None:
    """Join the process group (gloo on CPU, nccl on CUDA); returns this process's CUDA device, if any."""
    if not placement.distributed or dist.is_initialized():
        return None
    device = None
    backend = "gloo"
    if device_type == "cuda":
        if torch.cuda.device_count() <= placement.local_rank:
            raise UserError(f"process {placement.rank} needs CUDA device {placement.local_rank}, and this machine "
                            f"has {torch.cuda.device_count()}; use fewer processes per machine or --device cpu")
        device = torch.device("cuda", placement.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    dist.init_process_group(backend, rank=placement.rank, world_size=placement.world_size,
                            timeout=datetime.timedelta(seconds=timeout_s))
    return device


FINISHED_DIR = "GENFORGE_LAUNCH_DIR"  # set by app/launch.py: where each process says it finished


def stop() -> None:
    """Leave the process group together: a process that tears gloo down while its peer still sends can abort
    (SIGABRT, "terminate called without an active exception"), so every process first waits for the others.
    Past that barrier all work is done everywhere; each process says so in the launcher's folder, so an abort
    in gloo's teardown (still seen about once in 15 runs) is not taken for a failed run."""
    if dist.is_initialized():
        dist.barrier()
        if os.environ.get(FINISHED_DIR):
            write_atomic(Path(os.environ[FINISHED_DIR]) / f"finished-{dist.get_rank()}", "")
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast_state(module: torch.nn.Module, buffers_only: bool = False) -> None:
    """Rank 0's parameters (unless buffers_only) and buffers, copied to every process."""
    if not dist.is_initialized():
        return
    tensors = [b for b in module.buffers()] + ([] if buffers_only else [p.data for p in module.parameters()])
    for tensor in tensors:
        dist.broadcast(tensor, src=0)


def average_gradients(parameters) -> None:
    """Average the gradients of `parameters` over all processes, in one coalesced all_reduce per dtype."""
    if not dist.is_initialized():
        return
    world = dist.get_world_size()
    grads = [p.grad for p in parameters if p.grad is not None]
    for dtype in {g.dtype for g in grads}:
        group = [g for g in grads if g.dtype == dtype]
        flat = _flatten_dense_tensors(group)
        dist.all_reduce(flat)
        flat.div_(world)
        for grad, synced in zip(group, _unflatten_dense_tensors(flat, group)):
            grad.copy_(synced)


def gather(value) -> list:
    """`value` from every process, in rank order (every process gets the list)."""
    if not dist.is_initialized():
        return [value]
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def checksum(module: torch.nn.Module) -> str:
    """A short hash of a module's parameters and buffers, to compare processes."""
    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        tensor = tensor.detach().cpu()
        if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16; its bits, as int16, hash the same way
            tensor = tensor.view(torch.int16)
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def shard(indices: torch.Tensor, placement: Placement) -> torch.Tensor:
    """This process's share of a global batch: every world_size-th index from its rank, as DistributedSampler
    deals a permutation out (disjoint across processes, together the whole batch)."""
    return indices[placement.rank::placement.world_size]


def check_placement(placement: Placement, config: TrainConfig, device: torch.device) -> None:
    """What several processes need: a global batch they can share, SyncBatchNorm only on CUDA."""
    if config.sync_batchnorm and device.type != "cuda":
        raise UserError("--sync-batchnorm needs CUDA (torch's SyncBatchNorm); drop it on the CPU")
    if not placement.distributed:
        return
    if config.batch_size % placement.world_size:
        raise UserError(f"--batch-size {config.batch_size} (the global batch) does not split over "
                        f"{placement.world_size} processes; use a multiple of {placement.world_size}")
