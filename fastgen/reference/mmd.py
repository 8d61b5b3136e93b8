"""Pure-PyTorch kernel sums of the MMD: the correctness oracle of :mod:`fastgen.kernels.mmd`
and the CPU path of :mod:`fastgen.metrics.mmd` (which validates the arguments).

The sums are formed in row blocks of at most ``BLOCK_ELEMENTS`` kernel values, never as an
``N x M`` matrix: 50,000 x 50,000 kernel values would take 20 GB in float64.
"""

from __future__ import annotations

import torch

from fastgen.backend import HALF_DTYPES

# Kernel values held at once (32 MB in float64).
BLOCK_ELEMENTS = 2**22


def _kernel_values(x, y, kernel, degree, gamma, coef0):
    if kernel == "polynomial":
        return (gamma * (x @ y.mT) + coef0) ** degree
    distance = x.square().sum(1)[:, None] + y.square().sum(1)[None, :] - 2 * (x @ y.mT)
    return torch.exp(-gamma * distance.clamp_min(0))


def _kernel_values_diagonal(x, kernel, degree, gamma, coef0):
    if kernel == "polynomial":
        return (gamma * x.square().sum(1) + coef0) ** degree
    return torch.ones(x.shape[0], dtype=x.dtype, device=x.device)


def kernel_sum(x, y, kernel, degree, gamma, coef0) -> torch.Tensor:
    """``sum_ij k(x_i, y_j)`` as a float64 0-d tensor; ``y=None`` means ``y = x`` without the
    diagonal (``sum_{i != j}``). Same contract as :func:`fastgen.kernels.mmd.kernel_sum`.

    ``x (N, D)``, ``y (M, D)``; kernel values in the inputs' dtype (float16 / bfloat16:
    float32), block sums in float64. ``kernel``: ``"polynomial"``
    (``(gamma <x, y> + coef0)^degree``) or ``"rbf"`` (``exp(-gamma |x - y|^2)``).
    """
    symmetric = y is None
    if x.dtype in HALF_DTYPES:
        x = x.float()
        y = None if symmetric else y.float()
    other = x if symmetric else y
    rows = max(1, BLOCK_ELEMENTS // max(other.shape[0], 1))
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], rows):
        block = _kernel_values(x[start : start + rows], other, kernel, degree, gamma, coef0)
        total = total + block.sum(dtype=torch.float64)
    if symmetric:
        diagonal = _kernel_values_diagonal(x, kernel, degree, gamma, coef0)
        total = total - diagonal.sum(dtype=torch.float64)
    return total
