"""Flow transforms with nflows' conventions: ``forward(inputs, context=None)`` and
``inverse(inputs, context=None)`` return ``(outputs, logabsdet)``, ``inputs (B, D)``,
``logabsdet (B,)`` = log |det d outputs / d inputs| of the direction called.

Same constructors, parameter layouts and numbers as the nflows classes named in each
docstring (Durkan et al. 2019, arXiv:1906.04032 for the spline transforms; Papamakarios et al.
2017, arXiv:1705.07057 for MAF), with the splines of :mod:`fastgen.splines` and the MADE of
:mod:`fastgen.nn.made`. Branch-free: no boolean indexing, no host synchronisation.

The width and height logits are divided by ``sqrt(hidden_features)`` exactly when nflows
does: when the conditioner has a ``hidden_features`` attribute. nflows' ``ResidualNet`` has
one (coupling transforms are scaled); its ``MADE`` has none, and neither has fastgen's, so
autoregressive spline transforms are not scaled, in both libraries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fastgen._checks import check_tensor
from fastgen.nn.made import MADE
from fastgen.splines import (
    DEFAULT_MIN_BIN_HEIGHT,
    DEFAULT_MIN_BIN_WIDTH,
    DEFAULT_MIN_DERIVATIVE,
    rational_quadratic_spline,
    unconstrained_rational_quadratic_spline,
)


def _check_inputs(inputs, features: int) -> None:
    check_tensor("inputs", inputs)
    if inputs.dim() != 2 or inputs.shape[1] != features:
        raise ValueError(f"inputs must have shape (batch, features) = (batch, {features}), got "
                         f"{tuple(inputs.shape)}")  # fmt: skip


class Transform(nn.Module):
    """Base class: ``forward`` and ``inverse`` return ``(outputs, logabsdet (B,))``."""

    def forward(self, inputs, context=None):
        raise NotImplementedError

    def inverse(self, inputs, context=None):
        raise NotImplementedError


class CompositeTransform(Transform):
    """``forward = t_n o ... o t_1`` (nflows ``CompositeTransform``); logabsdets add up;
    ``inverse`` runs the inverses in reverse order."""

    def __init__(self, transforms: Sequence[Transform]):
        super().__init__()
        self._transforms = nn.ModuleList(transforms)

    @staticmethod
    def _cascade(inputs, funcs, context):
        total = inputs.new_zeros(inputs.shape[0])
        for func in funcs:
            inputs, logabsdet = func(inputs, context)
            total = total + logabsdet
        return inputs, total

    def forward(self, inputs, context=None):
        return self._cascade(inputs, self._transforms, context)

    def inverse(self, inputs, context=None):
        return self._cascade(inputs, [t.inverse for t in reversed(self._transforms)], context)


class Permutation(Transform):
    """``outputs = inputs.index_select(dim, permutation)``, logabsdet 0 (nflows
    ``Permutation``; the buffer is ``_permutation`` as there).

    Raises:
        ValueError: ``permutation`` not a permutation of ``0..D-1``; inputs whose ``dim``
            does not have length ``D``.
    """

    def __init__(self, permutation: torch.Tensor, dim: int = 1):
        permutation = torch.as_tensor(permutation, dtype=torch.long)
        if permutation.dim() != 1 or not torch.equal(
            permutation.sort().values, torch.arange(len(permutation))
        ):
            raise ValueError(f"permutation must be a permutation of 0..D-1, got {permutation}")
        super().__init__()
        self._dim = dim
        self.register_buffer("_permutation", permutation)

    def _permute(self, inputs, permutation):
        check_tensor("inputs", inputs)
        if inputs.dim() <= self._dim or inputs.shape[self._dim] != len(permutation):
            raise ValueError(f"inputs must have {len(permutation)} features in dim {self._dim}, "
                             f"got shape {tuple(inputs.shape)}")  # fmt: skip
        outputs = inputs.index_select(self._dim, permutation)
        return outputs, inputs.new_zeros(inputs.shape[0])

    def forward(self, inputs, context=None):
        return self._permute(inputs, self._permutation)

    def inverse(self, inputs, context=None):
        return self._permute(inputs, torch.argsort(self._permutation))


class ReversePermutation(Permutation):
    """Reverses the features (nflows ``ReversePermutation``)."""

    def __init__(self, features: int, dim: int = 1):
        super().__init__(torch.arange(features - 1, -1, -1), dim)


class RandomPermutation(Permutation):
    """A fixed random permutation drawn at construction (nflows ``RandomPermutation``)."""

    def __init__(self, features: int, dim: int = 1):
        super().__init__(torch.randperm(features), dim)


class AutoregressiveTransform(Transform):
    """Elementwise transform of each feature with parameters from a MADE of the previous
    features (nflows ``AutoregressiveTransform``). ``forward`` is one MADE pass; ``inverse``
    needs ``D`` sequential passes (feature ``d`` is exact after pass ``d + 1``), as in nflows:
    it is ``D`` times slower than ``forward``."""

    def __init__(self, autoregressive_net: MADE):
        super().__init__()
        self.autoregressive_net = autoregressive_net

    def forward(self, inputs, context=None):
        _check_inputs(inputs, self.features)
        params = self.autoregressive_net(inputs, context)
        return self._elementwise(inputs, params, inverse=False)

    def inverse(self, inputs, context=None):
        _check_inputs(inputs, self.features)
        outputs = torch.zeros_like(inputs)
        logabsdet = None
        for _ in range(self.features):
            params = self.autoregressive_net(outputs, context)
            outputs, logabsdet = self._elementwise(inputs, params, inverse=True)
        return outputs, logabsdet

    def load_nflows_state_dict(self, state_dict) -> None:
        """Copy the nflows counterpart's parameters (see :meth:`MADE.load_nflows_state_dict`)."""
        self.autoregressive_net.load_nflows_state_dict(state_dict, prefix="autoregressive_net.")

    def _elementwise(self, inputs, params, inverse):
        raise NotImplementedError


class MaskedAffineAutoregressiveTransform(AutoregressiveTransform):
    """MAF layer, nflows ``MaskedAffineAutoregressiveTransform``: ``y = s x + t`` with
    ``s = softplus(u) + 1e-3`` and ``(u, t) = MADE(x).view(B, D, 2).unbind(-1)``;
    ``logabsdet = sum log s``. Arguments as :class:`fastgen.nn.MADE`."""

    def __init__(self, features, hidden_features, context_features=None, num_blocks=2,
                 use_residual_blocks=True, random_mask=False, activation=F.relu,
                 dropout_probability=0.0, use_batch_norm=False, backend=None):  # fmt: skip
        self.features = features
        self._epsilon = 1e-3
        made = MADE(features, hidden_features, context_features, num_blocks, 2,
                    use_residual_blocks, random_mask, activation, dropout_probability,
                    use_batch_norm, backend=backend)  # fmt: skip
        super().__init__(made)

    def _elementwise(self, inputs, params, inverse):
        params = params.view(-1, self.features, 2)
        scale = F.softplus(params[..., 0]) + self._epsilon
        log_scale = torch.log(scale)
        if inverse:
            return (inputs - params[..., 1]) / scale, -log_scale.sum(-1)
        return scale * inputs + params[..., 1], log_scale.sum(-1)


def _tails_per_feature(tails, features):
    """``tails`` as None, one string, or a tuple of per-feature strings (mixed)."""
    if tails is None or tails in ("linear", "circular"):
        return tails
    if isinstance(tails, str) or not isinstance(tails, Sequence):
        raise ValueError(f"tails must be None, 'linear', 'circular' or a sequence of those per "
                         f"feature, got {tails!r}")  # fmt: skip
    tails = tuple(tails)
    if len(tails) != features or not set(tails) <= {"linear", "circular"}:
        raise ValueError(f"per-feature tails must be {features} values of 'linear' / "
                         f"'circular', got {tails!r}")  # fmt: skip
    return tails[0] if len(set(tails)) == 1 else tails


class _SplineMixin:
    """The spline step shared by the autoregressive and coupling spline transforms."""

    def _init_spline(self, features, num_bins, tails, tail_bound, min_bin_width,
                     min_bin_height, min_derivative, backend):  # fmt: skip
        self.num_bins = num_bins
        self.tails = _tails_per_feature(tails, features)
        self.tail_bound = tail_bound
        self.min_bin_width = min_bin_width
        self.min_bin_height = min_bin_height
        self.min_derivative = min_derivative
        self.backend = backend
        if isinstance(self.tails, tuple):
            linear = [i for i, t in enumerate(self.tails) if t == "linear"]
            circular = [i for i, t in enumerate(self.tails) if t == "circular"]
            self.register_buffer("_linear_features", torch.tensor(linear))
            self.register_buffer("_circular_features", torch.tensor(circular))
            self.register_buffer("_unsplit_tails", torch.argsort(torch.tensor(linear + circular)))

    def _dim_multiplier(self):
        """Parameters per feature: widths, heights and the derivatives of ``tails``: ``K - 1``
        (linear), ``K`` (circular and mixed: linear features ignore the last), ``K + 1``."""
        extra = {None: 1, "linear": -1, "circular": 0}.get(self.tails, 0)
        return 3 * self.num_bins + extra

    def _spline(self, inputs, params, net, inverse):
        """``inputs (B, D)``, ``params (B, D, m)`` -> outputs, logabsdet summed ``(B,)``."""
        k = self.num_bins
        widths, heights, derivatives = params[..., :k], params[..., k : 2 * k], params[..., 2 * k :]
        if hasattr(net, "hidden_features"):  # nflows' rule; see the module docstring
            widths = widths / math.sqrt(net.hidden_features)
            heights = heights / math.sqrt(net.hidden_features)
        common = dict(inverse=inverse, min_bin_width=self.min_bin_width,
                      min_bin_height=self.min_bin_height, min_derivative=self.min_derivative,
                      backend=self.backend)  # fmt: skip
        if self.tails is None:
            outputs, logabsdet = rational_quadratic_spline(inputs, widths, heights, derivatives,
                                                           **common)  # fmt: skip
        elif not isinstance(self.tails, tuple):
            outputs, logabsdet = unconstrained_rational_quadratic_spline(
                inputs, widths, heights, derivatives, tails=self.tails,
                tail_bound=self.tail_bound, **common,
            )  # fmt: skip
        else:
            parts = []
            groups = ((self._linear_features, "linear", k - 1),
                      (self._circular_features, "circular", k))  # fmt: skip
            for index, tails, num_derivatives in groups:
                parts.append(unconstrained_rational_quadratic_spline(
                    inputs.index_select(1, index), widths.index_select(1, index),
                    heights.index_select(1, index),
                    derivatives.index_select(1, index)[..., :num_derivatives], tails=tails,
                    tail_bound=self.tail_bound, **common,
                ))  # fmt: skip
            outputs = torch.cat([parts[0][0], parts[1][0]], 1).index_select(1, self._unsplit_tails)
            logabsdet = torch.cat([parts[0][1], parts[1][1]], 1)
        return outputs, logabsdet.sum(-1)


class MaskedRQSAutoregressiveTransform(_SplineMixin, AutoregressiveTransform):
    """Autoregressive rational-quadratic spline layer, nflows
    ``MaskedPiecewiseRationalQuadraticAutoregressiveTransform``: ``y_d = f(x_d; theta_d)``
    with ``theta_d = MADE(x_{<d})`` laid out ``(B, D, m)`` as widths ``[:K]``, heights
    ``[K:2K]``, derivatives ``[2K:]``.

    Args:
        features, hidden_features, context_features, num_blocks, use_residual_blocks,
        random_mask, activation, dropout_probability, use_batch_norm: as nflows (MADE).
        num_bins: ``K``. tails: ``None`` (spline on ``[0, 1]``, inputs must lie there),
            ``"linear"``, ``"circular"`` (on ``[-tail_bound, tail_bound]``, identity
            outside), or a sequence of ``"linear"`` / ``"circular"`` per feature (e.g. angles
            among other features; the MADE then outputs ``3K`` per feature).
        tail_bound, min_bin_width, min_bin_height, min_derivative: as nflows.
        backend: for the spline and the masked layers.

    Raises:
        ValueError: bad ``tails``; inputs not ``(B, features)``; context mismatches (MADE).
    """

    def __init__(self, features, hidden_features, context_features=None, num_bins=10,
                 tails=None, tail_bound=1.0, num_blocks=2, use_residual_blocks=True,
                 random_mask=False, activation=F.relu, dropout_probability=0.0,
                 use_batch_norm=False, min_bin_width=DEFAULT_MIN_BIN_WIDTH,
                 min_bin_height=DEFAULT_MIN_BIN_HEIGHT,
                 min_derivative=DEFAULT_MIN_DERIVATIVE, backend=None):  # fmt: skip
        nn.Module.__init__(self)
        self.features = features
        self._init_spline(features, num_bins, tails, tail_bound, min_bin_width, min_bin_height,
                          min_derivative, backend)  # fmt: skip
        self.autoregressive_net = MADE(features, hidden_features, context_features, num_blocks,
                                       self._dim_multiplier(), use_residual_blocks, random_mask,
                                       activation, dropout_probability, use_batch_norm,
                                       backend=backend)  # fmt: skip

    def _elementwise(self, inputs, params, inverse):
        params = params.view(inputs.shape[0], self.features, self._dim_multiplier())
        return self._spline(inputs, params, self.autoregressive_net, inverse)


class RQSCouplingTransform(_SplineMixin, Transform):
    """Coupling rational-quadratic spline layer, nflows
    ``PiecewiseRationalQuadraticCouplingTransform`` (2-D inputs): features with
    ``mask > 0`` are transformed by splines whose parameters
    ``transform_net(identity features, context)`` (``(B, D_t * m)``, viewed ``(B, D_t, m)``)
    come from the features with ``mask <= 0``, which pass through unchanged.

    Args:
        mask: ``(D,)``; ``> 0`` marks the transformed features.
        transform_net_create_fn: ``(in_features, out_features) -> nn.Module`` called with
            ``(D_identity, D_t * m)``; its ``forward(inputs, context)``. An nflows
            ``ResidualNet`` (whose ``hidden_features`` triggers the logit scaling) works.
        num_bins, tails, tail_bound, min_bin_width, min_bin_height, min_derivative, backend:
            as :class:`MaskedRQSAutoregressiveTransform` (per-feature tails are over the
            transformed features).

    Raises:
        ValueError: a mask that is not 1-D or is empty, or transforms nothing; inputs not
            ``(B, D)``.
    """

    def __init__(self, mask, transform_net_create_fn, num_bins=10, tails=None, tail_bound=1.0,
                 min_bin_width=DEFAULT_MIN_BIN_WIDTH, min_bin_height=DEFAULT_MIN_BIN_HEIGHT,
                 min_derivative=DEFAULT_MIN_DERIVATIVE, backend=None):  # fmt: skip
        mask = torch.as_tensor(mask)
        if mask.dim() != 1 or mask.numel() == 0:
            raise ValueError(f"mask must be a non-empty 1-D tensor, got shape {tuple(mask.shape)}")
        if not bool((mask > 0).any()):
            raise ValueError("mask must mark at least one feature (> 0) to transform")
        nn.Module.__init__(self)
        self.features = len(mask)
        features = torch.arange(self.features)
        identity, transform = features[mask <= 0], features[mask > 0]
        self.register_buffer("identity_features", identity)
        self.register_buffer("transform_features", transform)
        self.register_buffer("_unsplit", torch.argsort(torch.cat([identity, transform])))
        self._init_spline(len(transform), num_bins, tails, tail_bound, min_bin_width,
                          min_bin_height, min_derivative, backend)  # fmt: skip
        out_features = len(transform) * self._dim_multiplier()
        self.transform_net = transform_net_create_fn(len(identity), out_features)

    def _coupling(self, inputs, context, inverse):
        _check_inputs(inputs, self.features)
        identity_split = inputs.index_select(1, self.identity_features)
        transform_split = inputs.index_select(1, self.transform_features)
        params = self.transform_net(identity_split, context)
        params = params.reshape(inputs.shape[0], len(self.transform_features), -1)
        transformed, logabsdet = self._spline(transform_split, params, self.transform_net,
                                              inverse)  # fmt: skip
        outputs = torch.cat([identity_split, transformed], 1).index_select(1, self._unsplit)
        return outputs, logabsdet

    def forward(self, inputs, context=None):
        return self._coupling(inputs, context, inverse=False)

    def inverse(self, inputs, context=None):
        return self._coupling(inputs, context, inverse=True)
