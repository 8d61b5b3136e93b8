"""Pure-PyTorch batched matmul with the Newton-Schulz epilogue: the correctness oracle of
:mod:`fastgen.kernels.newton_schulz` and the CPU path of :func:`fastgen.linalg.sqrtm` (which
runs the iteration on either and validates the arguments)."""

from __future__ import annotations

import torch


def fused_gemm(a, b, c, alpha, beta, gamma) -> torch.Tensor:
    """``alpha a @ b + beta c + gamma I`` for ``(B, n, n)`` matrices in their dtype (``c`` may
    be ``None``). Same contract as :func:`fastgen.kernels.newton_schulz.fused_gemm`, without
    its ``input_precision`` (torch matmuls are exact in the inputs' dtype)."""
    out = alpha * (a @ b)
    if c is not None:
        out = out + beta * c
    if gamma != 0:
        out = out + gamma * torch.eye(a.shape[-1], dtype=out.dtype, device=out.device)
    return out
