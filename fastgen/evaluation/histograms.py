"""Per-feature histograms on shared bins and CaloChallenge's separation power."""

from __future__ import annotations

import torch

BINS = 50


def shared_bins(real: torch.Tensor, generated: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """``(D, bins + 1)`` float64 edges per feature: ``bins`` equal-width bins from the smaller
    to the larger extreme of both sets, so that every entry of both falls in a bin and each
    normalised histogram sums to 1 (CaloChallenge fixes the bins per observable and drops
    what falls outside; a general tool cannot know the observable). A constant feature gets
    ``[v - 1/2, v + 1/2]``. Heavy tails squeeze the bulk into few bins: pass such features
    transformed (a log of an energy)."""
    low = torch.minimum(real.amin(0), generated.amin(0)).double()
    high = torch.maximum(real.amax(0), generated.amax(0)).double()
    flat = high == low
    low, high = torch.where(flat, low - 0.5, low), torch.where(flat, high + 0.5, high)
    steps = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    edges = low[:, None] + (high - low)[:, None] * steps[None, :]
    edges[:, -1] = high  # low + (high - low) can round below high and leave the maximum out
    return edges


def normalised_histograms(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """``(D, bins)`` float64 fraction of the rows of ``values (N, D)`` in each bin of
    ``edges (D, bins + 1)``: bins are half-open ``[e_b, e_{b+1})`` except the last, closed
    (``numpy.histogram``'s); entries outside every bin are not counted."""
    bins = edges.shape[1] - 1
    out = torch.zeros(edges.shape[0], bins, dtype=torch.float64)
    for feature in range(edges.shape[0]):
        column = values[:, feature].double().contiguous()
        index = torch.searchsorted(edges[feature], column, right=True) - 1
        index = torch.where(column == edges[feature, -1], bins - 1, index)
        inside = (index >= 0) & (index < bins)
        out[feature] = torch.bincount(index[inside], minlength=bins).double()
    return out / len(values)


def triangular_discrimination(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``1/2 sum_b (h1_b - h2_b)^2 / (h1_b + h2_b)`` over the last axis, empty bins (0 / 0)
    contributing 0: the separation power of two normalised histograms (arXiv:2009.03796,
    eq. 15); 0 for equal histograms, 1 for disjoint ones."""
    total = first + second
    terms = (first - second).square() / torch.where(total > 0, total, 1.0)
    return 0.5 * terms.sum(-1)


def separation_power(real, generated, bins: int = BINS) -> torch.Tensor:
    """``(D,)`` float64 separation power per feature of ``real (N, D)`` against ``generated
    (M, D)`` on :func:`shared_bins` (CaloChallenge's ``_separation_power``: histograms
    normalised to sum 1, then :func:`triangular_discrimination`).

    Example:
        >>> real = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
        >>> separation_power(real, real + 10.0, bins=2)
        tensor([1.], dtype=torch.float64)
    """
    edges = shared_bins(real, generated, bins)
    return triangular_discrimination(
        normalised_histograms(real, edges), normalised_histograms(generated, edges)
    )
