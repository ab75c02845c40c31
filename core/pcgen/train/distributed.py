"""Data-parallel training over several processes (``torchrun``), one rank per device.

``torchrun --nproc_per_node=K $(which pcgen) run ...`` starts K copies of the run; each reads its
rank from the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and :func:`init_distributed`
joins them in a process group (NCCL on GPUs, gloo on CPUs). Then:

- every rank builds the same model (same seed; rank 0's weights are broadcast to be sure) and draws
  its own noise and dropout (the global RNG is reseeded with ``seed + rank``);
- every step's batch of ``train.batch_size`` clouds is the same on all ranks, and each rank trains
  on its own contiguous part of it (:func:`rank_slice`);
- after each backward pass the recipe averages the gradients over the ranks
  (:func:`average_gradients`: one all-reduce of one flat buffer per module), so every optimiser
  steps with the gradient of the whole batch and the weights stay identical on all ranks. This is
  what ``DistributedDataParallel`` does, done explicitly because recipes call sub-networks and
  model methods several times per step (a GAN's critic on real, generated and interpolated clouds,
  with frozen parameters, under a double backward), which DDP's wrapper of one ``forward`` per
  backward does not allow;
- rank 0 alone writes the run folder, logs, evaluates, checkpoints and shows progress bars.

Outside ``torchrun`` (``WORLD_SIZE`` unset or 1) every function here is a no-op.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class RankInfo:
    """Where this process stands in the run: its rank, the number of ranks, and its rank on this node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run folder, logs, evaluates and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def is_distributed() -> bool:
    """Whether a process group of more than one rank is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_info() -> RankInfo:
    """This process's rank and world size (rank 0 of 1 outside a distributed run)."""
    if is_distributed():
        return RankInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return RankInfo()


def requested_world_size() -> int:
    """The number of ranks ``torchrun`` started (1 when not under torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def device_for_rank(name: str, local_rank: int) -> str:
    """The device of one rank: on GPUs ``cuda:<local rank>`` (for ``auto`` and ``cuda``), else ``name``."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{local_rank}"
    return "cpu" if name == "auto" else name


@contextlib.contextmanager
def init_distributed(device: str = "auto") -> Iterator[RankInfo]:
    """Join the process group ``torchrun`` set up (if any) for the duration of a run; yields this rank.

    The backend is NCCL when the ranks train on GPUs, gloo otherwise; each rank's GPU is
    ``cuda:<LOCAL_RANK>``. A group that is already initialised (e.g. by a test) is used as is.
    """
    if requested_world_size() <= 1 or (dist.is_available() and dist.is_initialized()):
        yield rank_info()
        return
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    on_gpu = device_for_rank(device, local_rank).startswith("cuda")
    if on_gpu:
        torch.cuda.set_device(local_rank)
    # torch._dynamo (imported by the first optimizer) keeps a reference to a process group that exists
    # when it is imported, so destroy_process_group below would leave gloo's worker threads running; at
    # exit one of them, still releasing the last collective's tensors, needs the GIL during interpreter
    # teardown and aborts the rank (SIGABRT, "terminate called without an active exception"; seen on a
    # loaded CI machine). Imported first, it holds nothing and the group's threads end with the group.
    importlib.import_module("torch._dynamo")
    dist.init_process_group(backend="nccl" if on_gpu else "gloo")
    try:
        yield rank_info()
        # Every rank waits for the others before the group goes: a rank that tore its group down
        # while rank 0 still wrote its last checkpoint was seen to abort (gloo) on a loaded CI machine.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def rank_slice(batch_size: int, info: RankInfo) -> slice:
    """The part of a global batch of ``batch_size`` clouds that rank ``info.rank`` trains on.

    The batch is split into ``world_size`` equal contiguous parts, so that the gradient averaged
    over the ranks is the gradient of the whole batch.
    """
    if batch_size % info.world_size:
        raise ValueError(
            f"train.batch_size={batch_size} does not split evenly over {info.world_size} ranks; "
            f"use a multiple of {info.world_size}"
        )
    part = batch_size // info.world_size
    return slice(info.rank * part, (info.rank + 1) * part)


def _flat_reduce(tensors: list[Tensor], op: Any = None, average: bool = True) -> None:
    """All-reduce ``tensors`` in place through one flat buffer per dtype (one collective each)."""
    by_dtype: dict[torch.dtype, list[Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    world = dist.get_world_size()
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.all_reduce(flat, op=op or dist.ReduceOp.SUM)
        if average:
            flat /= world
        offset = 0
        for t in group:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


def average_gradients(module: nn.Module) -> None:
    """Average the gradients of ``module``'s parameters over all ranks (no-op in a single process).

    Every rank runs the same code on the same model, so the same parameters have gradients on
    every rank; they are reduced in parameter order through one flat buffer.
    """
    if not is_distributed():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if grads:
        _flat_reduce(grads)


def all_ranks_finite(value: Tensor) -> bool:
    """Whether ``value`` is finite on every rank (one host synchronisation; one collective when distributed).

    Recipes that skip non-finite steps decide with it, so that all ranks skip the same steps.
    """
    bad = (~torch.isfinite(value)).any().to(torch.float32).reshape(1)
    if is_distributed():
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return not bool(bad.item())


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Give every rank rank ``src``'s parameters and buffers (no-op in a single process)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src)


def broadcast_float(value: float, device: torch.device, src: int = 0) -> float:
    """Rank ``src``'s value of a float (e.g. the elapsed time that time budgets and schedules read)."""
    if not is_distributed():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src)
    return float(tensor.item())


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s value of a picklable object (e.g. the run folder it created)."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src)
    return box[0]


def gather_objects(value: Any) -> list[Any]:
    """Every rank's value, in rank order, on every rank (``[value]`` in a single process)."""
    if not is_distributed():
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def barrier() -> None:
    """Wait until every rank arrives here (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


__all__ = [
    "RankInfo",
    "all_ranks_finite",
    "average_gradients",
    "barrier",
    "broadcast_float",
    "broadcast_module",
    "broadcast_object",
    "device_for_rank",
    "gather_objects",
    "init_distributed",
    "is_distributed",
    "rank_info",
    "rank_slice",
    "requested_world_size",
]
