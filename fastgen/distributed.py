"""Collectives for evaluating sharded samples under ``torch.distributed``, with torchmetrics'
conventions (``torchmetrics.utilities.distributed``): sums are all-reduced, samples are
all-gathered with uneven sizes (padded to the largest shard, gathered, trimmed).

Every function is a collective: every process of the group must call it, in the same order.
Without an initialised process group (one process) they return the local data, so the same
evaluation code runs under ``torchrun`` and in a notebook.

Statistics that have a fixed-size sufficient statistic reduce with sums
(:meth:`fastgen.metrics.FeatureStatistics.synced`, ``FrechetDistance(sync_on_compute=True)``).
Sample-based metrics (KID, MMD, Sinkhorn, Wasserstein, EMD) need every sample, so they are
computed on :func:`gather_samples` of each side, e.g.
``kernel_inception_distance(gather_samples(real), gather_samples(fake))``: every process
gets the same rows in rank order, hence the number one process computes from the
concatenated data.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from fastgen._checks import check_tensor


def distributed_available() -> bool:
    """Whether ``torch.distributed`` is available and a default process group is initialised
    (torchmetrics' ``jit_distributed_available``)."""
    return dist.is_available() and dist.is_initialized()


def all_reduce_sum(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """The elementwise sum of ``tensor`` over the processes of ``group`` (``None``: the
    default group), as a new tensor; ``tensor`` is unchanged. Without a process group:
    a copy of ``tensor``.

    Every process passes a tensor of the same shape and dtype on a device its backend
    supports (CPU for gloo, the process's CUDA device for NCCL).

    Example:
        >>> all_reduce_sum(torch.tensor([1.0, 2.0]))  # one process
        tensor([1., 2.])
    """
    total = tensor.clone()
    if distributed_available():
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    return total


def gather_all_tensors(result: torch.Tensor, group=None) -> list[torch.Tensor]:
    """``result`` of every process of ``group``, in rank order: torchmetrics'
    ``gather_all_tensors``. Shapes may differ in every dimension (the number of dimensions
    may not): each tensor is zero-padded to the largest size, gathered and trimmed back.
    The local entry is ``result`` itself, so autograd reaches the local rank's graph.
    Without a process group: ``[result]``.

    Costs two collectives (the shapes, then the data) and ``world_size x`` the largest
    shard of memory on every process.

    Example:
        >>> [t.shape for t in gather_all_tensors(torch.zeros(3, 2))]  # one process
        [torch.Size([3, 2])]
    """
    if not distributed_available():
        return [result]
    result = result.contiguous()
    world_size = dist.get_world_size(group)
    local_shape = torch.tensor(result.shape, dtype=torch.long, device=result.device)
    shapes = [torch.empty_like(local_shape) for _ in range(world_size)]
    dist.all_gather(shapes, local_shape, group=group)
    max_shape = torch.stack(shapes).amax(0)
    with torch.no_grad():
        padding = []
        for pad in reversed((max_shape - local_shape).tolist()):
            padding += [0, pad]
        padded = F.pad(result, padding) if any(padding) else result
        gathered = [torch.empty_like(padded) for _ in range(world_size)]
        dist.all_gather(gathered, padded, group=group)
        gathered = [
            g[tuple(slice(n) for n in s.tolist())] for g, s in zip(gathered, shapes, strict=True)
        ]
    gathered[dist.get_rank(group)] = result
    return gathered


def gather_samples(samples: torch.Tensor, group=None) -> torch.Tensor:
    """The rows of ``samples`` of every process of ``group``, concatenated in rank order:
    ``(sum_r N_r, ...)`` from ``(N_r, ...)`` shards of uneven sizes (a shard may be empty).
    Every process gets the same tensor, so a sample-based metric of it has the value one
    process computes on the concatenated data. Without a process group: ``samples``.

    Args:
        samples: ``(N_r, ...)`` floating tensor; the trailing shape and the dtype must be
            the same on every process.
        group: the process group (``None``: the default group).

    Raises:
        TypeError: ``samples`` not a floating tensor.
        ValueError: ``samples`` 0-d.

    Example:
        >>> from fastgen.metrics import kernel_inception_distance
        >>> real, fake = torch.randn(50, 4), torch.randn(60, 4)  # this process's shards
        >>> kid_mean, kid_std = kernel_inception_distance(
        ...     gather_samples(real), gather_samples(fake), subsets=10, subset_size=20)
    """
    check_tensor("samples", samples)
    if samples.dim() == 0:
        raise ValueError("samples must have shape (N, ...), got a 0-d tensor")
    if not distributed_available():
        return samples
    return torch.cat(gather_all_tensors(samples, group))


def collective_device(group=None) -> torch.device:
    """The device collectives of ``group`` run on: the current CUDA device for NCCL, else
    the CPU (for a process that holds no data yet and must still take part)."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
