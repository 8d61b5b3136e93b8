"""The flow: a transform from data to noise and a base distribution on the noise."""

from __future__ import annotations

from torch import nn

from fastgen._checks import check_number, check_tensor
from fastgen.flows.transforms import Transform


class Flow(nn.Module):
    """A normalizing flow, nflows ``Flow`` without an embedding net: the density
    ``log p(x | c) = log p_base(T(x, c) | c) + log|det dT/dx|`` of a ``transform`` ``T`` from
    data to noise, sampled by running ``T^-1`` on base samples.

    ``log_prob(inputs (B, D), context=None) -> (B,)``. ``sample(num_samples, context=None)``
    returns ``(num_samples, D)``, or ``(C_B, num_samples, D)`` for a context ``(C_B, C)``
    (``num_samples`` per context row); ``sample_and_log_prob`` returns the samples and their
    log-density, shaped alike. Gradients flow through all three (train by maximising
    ``log_prob``).

    Args:
        transform: a :class:`fastgen.flows.Transform` (``forward``: data to noise).
        base_distribution: a module with nflows' distribution interface,
            ``log_prob(inputs, context)`` and ``sample(num_samples, context)``, e.g.
            :class:`fastgen.flows.StandardNormal`.

    Raises:
        TypeError: ``inputs`` not a floating tensor; ``num_samples`` not an int.
        ValueError: a context whose batch does not match ``inputs``; ``num_samples < 1``;
            and what the transform raises (context given to an unconditional model or
            missing for a conditional one, a wrong feature count).

    Example:
        >>> import torch
        >>> from fastgen.flows import Flow, MaskedAffineAutoregressiveTransform, StandardNormal
        >>> _ = torch.manual_seed(0)
        >>> flow = Flow(MaskedAffineAutoregressiveTransform(2, 8), StandardNormal([2]))
        >>> flow.log_prob(torch.randn(5, 2)).shape, flow.sample(3).shape
        (torch.Size([5]), torch.Size([3, 2]))
    """

    def __init__(self, transform: Transform, base_distribution: nn.Module):
        super().__init__()
        self._transform = transform
        self._distribution = base_distribution

    def log_prob(self, inputs, context=None):
        check_tensor("inputs", inputs)
        if context is not None and (context.dim() < 1 or context.shape[0] != inputs.shape[0]):
            raise ValueError(
                f"context must have one row per input ({inputs.shape[0]}), got shape "
                f"{tuple(context.shape)}"
            )
        noise, logabsdet = self._transform(inputs, context)
        return self._distribution.log_prob(noise, context) + logabsdet

    def _inverse(self, noise, context):
        """Noise ``(N, D)`` or ``(C_B, N, D)`` -> samples and logabsdet of the inverse."""
        if context is None:
            return self._transform.inverse(noise)
        batch, num_samples = noise.shape[:2]
        samples, logabsdet = self._transform.inverse(
            noise.reshape(batch * num_samples, *noise.shape[2:]),
            context.repeat_interleave(num_samples, dim=0),
        )
        return (
            samples.reshape(batch, num_samples, *samples.shape[1:]),
            logabsdet.reshape(batch, num_samples),
        )

    def sample(self, num_samples, context=None):
        check_number("num_samples", num_samples, integer=True, minimum=1)
        return self._inverse(self._distribution.sample(num_samples, context), context)[0]

    def sample_and_log_prob(self, num_samples, context=None):
        check_number("num_samples", num_samples, integer=True, minimum=1)
        noise, log_prob = self._distribution.sample_and_log_prob(num_samples, context)
        samples, logabsdet = self._inverse(noise, context)
        return samples, log_prob - logabsdet
