"""Pure-PyTorch k-nearest-neighbour distances and ball counts: the oracle of
:mod:`fastgen.kernels.knn` and the CPU path of :func:`fastgen.metrics.compute_prdc`.

Both functions walk the rows of ``x`` in blocks of at most ``BLOCK_ELEMENTS / M`` rows against
all of ``y``, so no ``N x M`` distance matrix exists (50,000 x 50,000 float32 distances would
take 10 GB); a block is one matmul, ``|x|^2 + |y|^2 - 2 <x, y>``, in the inputs' dtype (half:
float32). Arguments are assumed validated by :mod:`fastgen.metrics.prdc`.

Squared distances, everywhere: ``d2 = max(|x|^2 + |y|^2 - 2 <x, y>, 0)``, then set to exactly 0
where ``d2 <= D eps (|x|^2 + |y|^2)`` (``eps`` of the computing dtype), the expansion's
rounding-error bound: the expansion cannot tell such points apart, and snapping them to 0 makes
duplicated points exactly 0 apart in every implementation, so that their ball radius is 0 and
the closed-ball test ``d2 <= radius2`` counts them (:mod:`fastgen.metrics.prdc`).
"""

from __future__ import annotations

import torch

# Distances held at once per block (16 MB in float32): one block is one matmul, one top-k.
BLOCK_ELEMENTS = 2**22


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def squared_distances(x, y, x_sq, y_sq, out=None) -> torch.Tensor:
    """``(B, M)`` squared distances of the rows of ``x (B, D)`` to those of ``y (M, D)`` from
    their squared norms, clamped at 0 and snapped to 0 below the rounding-error bound;
    ``out``: optional ``(2, B, M)`` buffer to compute in."""
    if out is None:
        out = x.new_empty(2, x.shape[0], y.shape[0])
    norms, d2 = out
    torch.add(x_sq[:, None], y_sq[None, :], out=norms)
    torch.addmm(norms, x, y.mT, alpha=-2, out=d2).clamp_min_(0)
    tolerance = x.shape[1] * torch.finfo(x.dtype).eps
    return d2.masked_fill_(d2 <= norms.mul_(tolerance), 0.0)


def _distance_blocks(x, y):
    """``(start, (B, M) squared distances of rows start..start + B of x to y)`` in the
    compute dtype. Every block is computed in one buffer: allocating a fresh 16 MB block per
    step let the CPU allocator's per-thread arenas grow (peak RSS 10 GB at N = 50,000 with two
    threads, against 0.1 GB with the buffer)."""
    dtype = _compute_dtype(x)
    x, y = x.to(dtype), y.to(dtype)
    x_sq, y_sq = x.square().sum(1), y.square().sum(1)
    rows = max(1, BLOCK_ELEMENTS // max(y.shape[0], 1))
    buffer = x.new_empty(2, min(rows, x.shape[0]), y.shape[0])
    for start in range(0, x.shape[0], rows):
        block = slice(start, start + rows)
        size = len(x_sq[block])
        yield start, squared_distances(x[block], y, x_sq[block], y_sq, buffer[:, :size])


def knn_reference(x: torch.Tensor, y: torch.Tensor, k: int, exclude_self: bool) -> torch.Tensor:
    """``(N,)`` squared distance from each row of ``x (N, D)`` to its ``k``-th nearest row of
    ``y (M, D)``; ``exclude_self``: ``y`` is ``x`` and row ``i`` is not its own neighbour (its
    duplicates are). ``inf`` when fewer than ``k`` rows qualify. float64 in, float64 out;
    float32 / half: float32."""
    out = []
    for start, d2 in _distance_blocks(x, y):
        if exclude_self:  # row i of the block is point start + i
            d2.diagonal(offset=start).fill_(torch.inf)
        available = min(k, d2.shape[1])
        kth = d2.topk(available, dim=1, largest=False).values[:, -1]
        out.append(kth if available == k else torch.full_like(kth, torch.inf))
    return torch.cat(out) if out else x.new_empty(0, dtype=_compute_dtype(x))


def ball_counts_reference(
    x: torch.Tensor, y: torch.Tensor, radii_sq: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row ``x_i`` of ``x (N, D)``: the number of rows ``y_j`` of ``y (M, D)`` whose
    closed ball holds it, ``#{j: d2(x_i, y_j) <= radii_sq_j}`` (int32 ``(N,)``), and its
    squared distance to the nearest ``y_j`` (``(N,)``, ``inf`` for empty ``y``)."""
    counts, nearest = [], []
    radii_sq = radii_sq.to(_compute_dtype(x))
    for _, d2 in _distance_blocks(x, y):
        counts.append((d2 <= radii_sq[None, :]).sum(1, dtype=torch.int32))
        nearest.append(d2.amin(1) if d2.shape[1] else d2.new_full(d2.shape[:1], torch.inf))
    if not counts:
        empty = x.new_empty(0, dtype=_compute_dtype(x))
        return empty.to(torch.int32), empty
    return torch.cat(counts), torch.cat(nearest)
