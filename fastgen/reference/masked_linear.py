"""Pure-PyTorch MADE masked linear layer: the oracle of the Triton kernel and the CPU path.

``y = act(F.linear(x, W * M, b))`` with ``M[o, i] = out_degrees[o] >= in_degrees[i]`` (``>``
when strict), exactly what nflows, zuko and normflows compute. The mask is built once from
the degrees by the module and passed in (a float tensor in the weight's dtype), so each call
costs one elementwise product ``W * M`` (N x K, small next to the batch matmul), whose
autograd backward masks ``grad_W``. Activations are applied out of place so that autograd
keeps what each derivative needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS = {
    None: None,
    "relu": F.relu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
    "elu": F.elu,
    "silu": F.silu,
}


def mask_from_degrees(
    in_degrees: torch.Tensor, out_degrees: torch.Tensor, strict: bool, dtype: torch.dtype
) -> torch.Tensor:
    """``M (N, K)``: ``out_degrees[o] > in_degrees[i]`` if strict else ``>=``, in ``dtype``."""
    connected = out_degrees[:, None] > in_degrees if strict else out_degrees[:, None] >= in_degrees
    return connected.to(dtype)


def masked_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
    activation: str | None,
) -> torch.Tensor:
    """``act(x @ (weight * mask).T + bias)``; ``x (..., K)``, ``weight, mask (N, K)``."""
    return linear_activation(x, weight * mask, bias, activation)


def linear_activation(
    x: torch.Tensor, masked_weight: torch.Tensor, bias: torch.Tensor | None, activation: str | None
) -> torch.Tensor:
    """``act(x @ masked_weight.T + bias)``: the layer given its masked weight ``W * M`` (N, K)
    (computed per call, or cached by :class:`fastgen.nn.MaskedLinear` while it is unchanged)."""
    y = F.linear(x, masked_weight, bias)
    function = ACTIVATIONS[activation]
    return y if function is None else function(y)
