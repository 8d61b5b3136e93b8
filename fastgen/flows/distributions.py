"""Base distributions of fastgen's flows, with nflows' interface: ``log_prob(inputs,
context=None)``, ``sample(num_samples, context=None)``, ``sample_and_log_prob``."""

from __future__ import annotations

import math

import torch
from torch import nn

from fastgen._checks import check_number, check_tensor


class StandardNormal(nn.Module):
    """The standard normal ``N(0, I)`` on events of shape ``shape`` (nflows
    ``StandardNormal``), the usual base of a flow.

    ``log_prob(inputs (B, *shape), context=None) -> (B,)`` sums over the event dimensions.
    ``sample(num_samples, context=None)`` returns ``(num_samples, *shape)``, or
    ``(C_B, num_samples, *shape)`` for a context of batch ``C_B`` (which it otherwise
    ignores), drawn from torch's global generator in the dtype and on the device of the
    module (move it with ``.to``). ``sample_and_log_prob`` returns both, shaped alike.

    Args:
        shape: the event shape, e.g. ``[D]``.

    Raises:
        TypeError: ``inputs`` not a floating tensor.
        ValueError: ``inputs`` not of shape ``(B, *shape)``.

    Example:
        >>> import torch
        >>> from fastgen.flows import StandardNormal
        >>> StandardNormal([2]).log_prob(torch.zeros(1, 2))  # -log(2 pi)
        tensor([-1.8379])
    """

    def __init__(self, shape):
        super().__init__()
        self._shape = torch.Size(shape)
        # A Python float: a float32 buffer would round it, 6e-8 off in float64 for D = 4.
        self._log_z = 0.5 * self._shape.numel() * math.log(2 * math.pi)
        # Follows .to() / .double(): the dtype and device of the samples.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def log_prob(self, inputs, context=None):
        check_tensor("inputs", inputs)
        if tuple(inputs.shape[1:]) != tuple(self._shape):
            raise ValueError(
                f"inputs must have shape (batch, *{tuple(self._shape)}), got {tuple(inputs.shape)}"
            )
        return -0.5 * inputs.square().flatten(1).sum(-1) - self._log_z

    def sample(self, num_samples, context=None):
        num_samples = check_number("num_samples", num_samples, integer=True, minimum=1)
        leading = (num_samples,) if context is None else (context.shape[0], num_samples)
        return torch.randn(
            *leading, *self._shape, dtype=self._anchor.dtype, device=self._anchor.device
        )

    def sample_and_log_prob(self, num_samples, context=None):
        samples = self.sample(num_samples, context)
        flat = samples.reshape(-1, *self._shape)
        return samples, self.log_prob(flat).reshape(samples.shape[: samples.dim() - 1])
