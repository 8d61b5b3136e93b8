"""Pure-PyTorch interpolation and gradient penalty: the correctness oracle and the CPU path.

Arguments are assumed validated by :mod:`fastgen.gan`: ``real`` and ``fake`` of one shape
``(B, ...)`` and dtype, ``eps`` with ``B`` elements in that dtype, ``gradients (B, ...)``.
Both are plain differentiable PyTorch, so they serve any order of differentiation.

Each is as few passes over memory as PyTorch allows: ``torch.lerp`` is one fused pass
(a hand-written ``eps * real + (1 - eps) * fake`` is three, with two full-size
temporaries), and ``torch.linalg.vector_norm`` is one reduction whose backward is zero for
a zero row (``g / ||g||`` is masked where ``||g|| = 0``), so no NaN reaches the critic.
"""

from __future__ import annotations

import torch

from fastgen.backend import HALF_DTYPES


def interpolate(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``fake + eps * (real - fake)`` with ``eps`` broadcast per sample."""
    return torch.lerp(fake, real, eps.reshape((-1,) + (1,) * (real.dim() - 1)))


def penalty_from_gradients(
    gradients: torch.Tensor, target: float, one_sided: bool, weight: float
) -> torch.Tensor:
    """``weight * mean_i(excess_i^2)``, ``excess_i = ||g_i||_2 - target`` (clamped at 0 when
    ``one_sided``); the norm is accumulated in float32 for half-precision gradients."""
    accumulate = torch.float32 if gradients.dtype in HALF_DTYPES else gradients.dtype
    norms = torch.linalg.vector_norm(gradients.reshape(len(gradients), -1), dim=1, dtype=accumulate)
    excess = norms - target
    if one_sided:
        excess = excess.clamp(min=0)
    return (weight * excess.square().mean()).to(gradients.dtype)
