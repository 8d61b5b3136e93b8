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

    Compiling: ``torch.compile(flow.log_prob, fullgraph=True)``, or the training loss
    ``-flow.log_prob(x).mean()`` with its backward, is one graph for fastgen's transforms (on
    the reference path, with or without the profiler). Batch sizes: mark the batch
    dimension dynamic on the first call, ``torch._dynamo.mark_dynamic(x, 0)`` (and the
    context's), and one graph serves every batch of 2 or more rows (PyTorch specialises
    sizes 0 and 1). Unmarked, PyTorch compiles the first size statically and once more, with
    a symbolic batch, at the second size, then no more. ``dynamic=True`` does not work: it
    makes the Python floats of the spline settings symbolic, and the argument checks refuse
    them.

    Args:
        transform: a :class:`fastgen.flows.Transform` (``forward``: data to noise).
        base_distribution: a module with nflows' distribution interface,
            ``log_prob(inputs, context)`` and ``sample(num_samples, context)``, e.g.
            :class:`fastgen.flows.StandardNormal`.

    ``inputs`` and ``context`` must be tensors in the flow's dtype and on its device (those
    of its first parameter or buffer; move the flow with ``.to``): nothing is converted
    silently, since a float64 context fed to a float32 flow, or a NumPy array, is more often
    a mistake than a wish. Convert with ``torch.as_tensor(c, dtype=..., device=...)``.

    Raises:
        TypeError: ``inputs`` or ``context`` not a floating tensor, or not in the flow's
            dtype; ``num_samples`` not an int.
        ValueError: ``inputs`` or ``context`` not on the flow's device; a context that is
            not ``(batch, C)`` or whose batch does not match ``inputs``; ``num_samples <
            1``; and what the transform raises (context given to an unconditional model or
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

    def _check_like_flow(self, name, tensor):
        """``tensor``: a floating tensor in the dtype and on the device of the flow."""
        check_tensor(name, tensor)
        tensors = (*self.parameters(), *self.buffers())
        like = next((t for t in tensors if t.is_floating_point()), None)
        if like is None:
            return
        if tensor.dtype != like.dtype:
            raise TypeError(f"{name} must have the flow's dtype {like.dtype}, got {tensor.dtype}")
        if tensor.device != like.device:
            raise ValueError(
                f"{name} must be on the flow's device {like.device}, got {tensor.device}"
            )

    def _check_context(self, context, batch=None):
        if context is None:
            return
        self._check_like_flow("context", context)
        if context.dim() != 2:
            raise ValueError(
                f"context must have shape (batch, context_features), got {tuple(context.shape)}"
            )
        if batch is not None and context.shape[0] != batch:
            raise ValueError(
                f"context must have one row per input ({batch}), got shape {tuple(context.shape)}"
            )

    def log_prob(self, inputs, context=None):
        self._check_like_flow("inputs", inputs)
        self._check_context(context, inputs.shape[0] if inputs.dim() > 0 else None)
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
        self._check_context(context)
        return self._inverse(self._distribution.sample(num_samples, context), context)[0]

    def sample_and_log_prob(self, num_samples, context=None):
        check_number("num_samples", num_samples, integer=True, minimum=1)
        self._check_context(context)
        noise, log_prob = self._distribution.sample_and_log_prob(num_samples, context)
        samples, logabsdet = self._inverse(noise, context)
        return samples, log_prob - logabsdet
