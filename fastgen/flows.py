"""Normalizing flows with nflows' conventions: ``Flow(transform, base_distribution)`` and the
one-line :class:`NeuralSplineFlow` (Durkan et al. 2019, arXiv:1906.04032).

A flow's ``transform`` maps data to noise: ``log p(x) = log p_base(T(x)) + log|det dT/dx|``;
sampling runs ``T^-1`` on base samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from fastgen._checks import check_tensor
from fastgen.nn.transforms import (
    CompositeTransform,
    MaskedRQSAutoregressiveTransform,
    ReversePermutation,
    RQSCouplingTransform,
    Transform,
)


class StandardNormal(nn.Module):
    """``N(0, I)`` on event shape ``shape`` (nflows ``StandardNormal``): ``log_prob(inputs,
    context=None)`` sums over the event dims; ``sample(num_samples, context=None)`` gives
    ``(num_samples, *shape)``, or ``(context.shape[0], num_samples, *shape)`` with a context
    (which it otherwise ignores). Samples take the dtype and device of the module (``.to``)."""

    def __init__(self, shape):
        super().__init__()
        self._shape = torch.Size(shape)
        log_z = 0.5 * self._shape.numel() * math.log(2 * math.pi)
        self.register_buffer("_log_z", torch.tensor(log_z), persistent=False)

    def log_prob(self, inputs, context=None):
        if tuple(inputs.shape[1:]) != tuple(self._shape):
            raise ValueError(f"inputs must have shape (batch, *{tuple(self._shape)}), got "
                             f"{tuple(inputs.shape)}")  # fmt: skip
        return -0.5 * inputs.square().flatten(1).sum(-1) - self._log_z.to(inputs.dtype)

    def sample(self, num_samples, context=None):
        leading = (num_samples,) if context is None else (context.shape[0], num_samples)
        return torch.randn(*leading, *self._shape, dtype=self._log_z.dtype,
                           device=self._log_z.device)  # fmt: skip

    def sample_and_log_prob(self, num_samples, context=None):
        samples = self.sample(num_samples, context)
        flat = samples.reshape(-1, *self._shape)
        return samples, self.log_prob(flat).reshape(samples.shape[: samples.dim() - 1])


class Flow(nn.Module):
    """``Flow(transform, base_distribution)`` (nflows ``Flow`` without an embedding net).

    ``log_prob(inputs (B, D), context=None) -> (B,)``;
    ``sample(num_samples, context=None)`` -> ``(num_samples, D)``, or ``(C_B, num_samples, D)``
    for a context ``(C_B, C)`` (each context row repeated ``num_samples`` times);
    ``sample_and_log_prob`` returns both, shaped alike. ``base_distribution`` has nflows'
    interface (``log_prob(inputs, context)``, ``sample(num_samples, context)``; see
    :class:`StandardNormal`).

    Raises:
        ValueError: context whose batch does not match ``inputs``; non-positive
            ``num_samples``; and whatever the transform raises (context given to an
            unconditional model or missing for a conditional one, wrong feature count).
    """

    def __init__(self, transform: Transform, base_distribution: nn.Module):
        super().__init__()
        self._transform = transform
        self._distribution = base_distribution

    def log_prob(self, inputs, context=None):
        check_tensor("inputs", inputs)
        if context is not None and (context.dim() < 1 or context.shape[0] != inputs.shape[0]):
            raise ValueError(f"context must have one row per input ({inputs.shape[0]}), got "
                             f"shape {tuple(context.shape)}")  # fmt: skip
        noise, logabsdet = self._transform(inputs, context)
        return self._distribution.log_prob(noise, context) + logabsdet

    def _check_num_samples(self, num_samples):
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")

    def _inverse(self, noise, context):
        """Noise ``(N, D)`` or ``(C_B, N, D)`` -> samples and logabsdet of the inverse."""
        if context is None:
            return self._transform.inverse(noise)
        batch, num_samples = noise.shape[:2]
        samples, logabsdet = self._transform.inverse(
            noise.reshape(batch * num_samples, *noise.shape[2:]),
            context.repeat_interleave(num_samples, dim=0),
        )
        return (samples.reshape(batch, num_samples, *samples.shape[1:]),
                logabsdet.reshape(batch, num_samples))  # fmt: skip

    def sample(self, num_samples, context=None):
        self._check_num_samples(num_samples)
        return self._inverse(self._distribution.sample(num_samples, context), context)[0]

    def sample_and_log_prob(self, num_samples, context=None):
        self._check_num_samples(num_samples)
        noise, log_prob = self._distribution.sample_and_log_prob(num_samples, context)
        samples, logabsdet = self._inverse(noise, context)
        return samples, log_prob - logabsdet


class _ConditionerNet(nn.Module):
    """MLP ``in -> hidden (relu) x (num_blocks + 1) -> out`` on ``cat(inputs, context)``, the
    coupling conditioner of :class:`NeuralSplineFlow`. Its last layer starts at zero (the
    coupling starts near the identity); ``hidden_features`` scales the spline logits as nflows'
    ResidualNet does."""

    def __init__(self, in_features, out_features, hidden_features, context_features, num_blocks):
        super().__init__()
        self.hidden_features = hidden_features
        self.context_features = context_features
        sizes = [in_features + (context_features or 0)] + [hidden_features] * (num_blocks + 1)
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden_features, out_features))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, inputs, context=None):
        if (context is None) != (self.context_features is None):
            raise ValueError(f"context must be given exactly when context_features is set "
                             f"(context_features={self.context_features})")  # fmt: skip
        return self.net(inputs if context is None else torch.cat([inputs, context], -1))


class NeuralSplineFlow(Flow):
    """Rational-quadratic neural spline flow on ``features`` dims with a standard normal base.

    ``num_layers`` spline layers with linear tails on ``[-tail_bound, tail_bound]`` (circular
    tails for the features listed in ``circular_features``, e.g. angles rescaled to that
    interval), a :class:`ReversePermutation` between consecutive layers. Each layer is a
    :class:`MaskedRQSAutoregressiveTransform` (MADE conditioner with ``num_blocks`` residual
    blocks of ``hidden_features``; ``autoregressive=True``, the default) or an
    :class:`RQSCouplingTransform` with an MLP conditioner transforming alternate halves of the
    features (``autoregressive=False``).

    Cost: ``log_prob`` is one conditioner pass per layer. ``sample`` of the autoregressive
    flow inverts each layer with ``features`` sequential MADE passes (exact, as nflows does),
    so sampling is about ``features`` times slower than density evaluation; coupling layers
    invert in one pass.

    Raises:
        ValueError: ``features < 1`` (or ``< 2`` for coupling layers), ``num_layers < 1``,
            ``circular_features`` outside ``0..features-1``.
    """

    def __init__(self, features: int, context_features: int | None = None, num_layers: int = 5,
                 hidden_features: int = 64, num_blocks: int = 2, num_bins: int = 8,
                 tail_bound: float = 3.0, autoregressive: bool = True,
                 circular_features: Sequence[int] = (), backend: str | None = None):  # fmt: skip
        if features < (1 if autoregressive else 2):
            raise ValueError(f"features must be >= {1 if autoregressive else 2}, got {features}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        circular = set(circular_features)
        if not circular <= set(range(features)):
            raise ValueError(f"circular_features must be indices in 0..{features - 1}, got "
                             f"{sorted(circular)}")  # fmt: skip
        order = torch.arange(features)  # original feature at each position
        transforms = []
        for layer in range(num_layers):
            tails = ["circular" if int(i) in circular else "linear" for i in order]
            spline = dict(num_bins=num_bins, tail_bound=tail_bound, backend=backend)
            if autoregressive:
                transforms.append(MaskedRQSAutoregressiveTransform(
                    features, hidden_features, context_features, tails=tails,
                    num_blocks=num_blocks, **spline,
                ))  # fmt: skip
            else:
                mask = (torch.arange(features) + layer) % 2

                def create(in_features, out_features):
                    return _ConditionerNet(in_features, out_features, hidden_features,
                                           context_features, num_blocks)  # fmt: skip

                transformed = [t for t, m in zip(tails, mask.tolist(), strict=True) if m > 0]
                transforms.append(RQSCouplingTransform(mask, create, tails=transformed,
                                                       **spline))  # fmt: skip
            if layer < num_layers - 1:
                permutation = ReversePermutation(features)
                transforms.append(permutation)
                order = order[permutation._permutation]
        super().__init__(CompositeTransform(transforms), StandardNormal([features]))
        self.features = features
        self.context_features = context_features
