"""Coupling transforms: a conditioner network on the features a mask leaves unchanged plus an
element-wise transform of the others (Dinh et al. 2017, arXiv:1605.08803; neural spline
flows, Durkan et al. 2019, arXiv:1906.04032), with nflows' classes, constructors and numbers.

A new coupling layer is a :class:`CouplingTransform` with another element-wise transform;
see :class:`RQSCouplingTransform`, and :class:`AffineCouplingTransform` for a conditioner
whose outputs are laid out otherwise (override ``_feature_params``).
"""

from __future__ import annotations

import math

import torch

from fastgen.flows.elementwise import (
    AffineElementwiseTransform,
    ElementwiseTransform,
    RQSElementwiseTransform,
)
from fastgen.flows.transforms import Transform, check_inputs
from fastgen.splines import DEFAULT_MIN_BIN_HEIGHT, DEFAULT_MIN_BIN_WIDTH, DEFAULT_MIN_DERIVATIVE


def split_features(mask) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices of the identity (``mask <= 0``) and transformed (``mask > 0``) features of
    a coupling mask.

    Raises:
        ValueError: a mask that is not 1-D, is empty, or transforms no feature.
    """
    mask = torch.as_tensor(mask)
    if mask.dim() != 1 or mask.numel() == 0:
        raise ValueError(f"mask must be a non-empty 1-D tensor, got shape {tuple(mask.shape)}")
    if not bool((mask > 0).any()):
        raise ValueError("mask must mark at least one feature (> 0) to transform")
    features = torch.arange(len(mask))
    return features[mask <= 0], features[mask > 0]


class CouplingTransform(Transform):
    """The features with ``mask > 0`` go through ``elementwise`` with parameters
    ``transform_net(identity features, context)``; the others pass through unchanged (nflows
    ``CouplingTransform`` on 2-D inputs). The Jacobian is triangular, and both directions
    cost one conditioner pass.

    Args:
        mask: ``(D,)``; ``> 0`` marks the ``D_t`` transformed features, ``<= 0`` the
            ``D_i`` identity features (alternate them between layers, or permute).
        transform_net_create_fn: ``(in_features, out_features) -> nn.Module``, called with
            ``(D_i, D_t * m)`` where ``m = elementwise.params_per_feature``; the module's
            ``forward(inputs (B, D_i), context)`` returns ``(B, D_t * m)``, read as
            ``(B, D_t, m)`` (feature-major; a subclass may override ``_feature_params`` to
            read another layout). An nflows ``ResidualNet`` works.
        elementwise: the :class:`fastgen.flows.ElementwiseTransform` on ``D_t`` features.

    Shapes: ``inputs (B, D)``, ``context (B, C)`` -> ``(outputs (B, D), logabsdet (B,))``.
    The buffers ``identity_features`` and ``transform_features`` are nflows'.

    Raises:
        ValueError: a mask that is not 1-D, is empty or transforms nothing; at call time,
            inputs not ``(B, D)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from fastgen.flows import AffineElementwiseTransform, CouplingTransform
        >>> class Net(nn.Linear):
        ...     def forward(self, inputs, context=None):
        ...         return super().forward(inputs)
        >>> t = CouplingTransform([1, 0, 1], Net, AffineElementwiseTransform())
        >>> t.transform_net
        Net(in_features=1, out_features=4, bias=True)
        >>> x = torch.randn(5, 3)
        >>> torch.allclose(t.inverse(t(x)[0])[0], x, atol=1e-6)
        True
    """

    def __init__(self, mask, transform_net_create_fn, elementwise: ElementwiseTransform):
        identity, transform = split_features(mask)
        super().__init__()
        self.features = len(identity) + len(transform)
        self.register_buffer("identity_features", identity)
        self.register_buffer("transform_features", transform)
        self.register_buffer("_unsplit", torch.argsort(torch.cat([identity, transform])))
        self.elementwise = elementwise
        out_features = len(transform) * elementwise.params_per_feature
        self.transform_net = transform_net_create_fn(len(identity), out_features)

    def _feature_params(self, params):
        """The conditioner's outputs ``(B, D_t * m)`` as the element-wise transform's
        ``(B, D_t, m)``: feature-major, nflows' layout for its spline couplings."""
        return params.reshape(params.shape[0], len(self.transform_features), -1)

    def _coupling(self, inputs, context, inverse):
        check_inputs(inputs, self.features)
        identity_split = inputs.index_select(1, self.identity_features)
        transform_split = inputs.index_select(1, self.transform_features)
        params = self._feature_params(self.transform_net(identity_split, context))
        step = self.elementwise.inverse if inverse else self.elementwise
        transformed, logabsdet = step(transform_split, params)
        outputs = torch.cat([identity_split, transformed], 1).index_select(1, self._unsplit)
        return outputs, logabsdet

    def forward(self, inputs, context=None):
        return self._coupling(inputs, context, inverse=False)

    def inverse(self, inputs, context=None):
        return self._coupling(inputs, context, inverse=True)


class AffineCouplingTransform(CouplingTransform):
    """RealNVP affine coupling layer (Dinh et al. 2017, arXiv:1605.08803), nflows
    ``AffineCouplingTransform`` on 2-D inputs: the transformed features become
    ``y = s x + t`` with ``s = sigmoid(u + 2) + 1e-3``
    (:class:`fastgen.flows.AffineElementwiseTransform` with ``scale_activation="sigmoid"``),
    ``(u, t)`` computed by the conditioner from the identity features; ``logabsdet =
    sum log s``. Both directions are one conditioner pass, so sampling and density evaluation
    cost the same.

    The conditioner's ``2 D_t`` outputs are read as nflows reads them, shifts first:
    ``t = out[:, :D_t]``, ``u = out[:, D_t:]``, so an nflows conditioner's weights load
    unchanged (``transform_net.load_state_dict``).

    Args:
        mask, transform_net_create_fn: as :class:`CouplingTransform` (the conditioner is
            created with ``(D_i, 2 D_t)``).

    Shapes: ``inputs (B, D)``, ``context (B, C)`` -> ``(outputs (B, D), logabsdet (B,))``.

    Raises:
        ValueError: a mask that is not 1-D, is empty or transforms nothing; at call time,
            inputs not ``(B, D)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from fastgen.flows import AffineCouplingTransform
        >>> class Net(nn.Linear):
        ...     def forward(self, inputs, context=None):
        ...         return super().forward(inputs)
        >>> _ = torch.manual_seed(0)
        >>> t = AffineCouplingTransform([1, 0, 1], Net)
        >>> x = torch.randn(5, 3)
        >>> y, logabsdet = t(x)
        >>> torch.equal(y[:, 1], x[:, 1]), torch.allclose(t.inverse(y)[0], x, atol=1e-6)
        (True, True)
    """

    def __init__(self, mask, transform_net_create_fn):
        affine = AffineElementwiseTransform(scale_activation="sigmoid")
        super().__init__(mask, transform_net_create_fn, affine)

    def _feature_params(self, params):
        # nflows: (B, 2 * D_t) = [shifts | unconstrained scales]; ours: (B, D_t, (u, t)).
        return params.unflatten(1, (2, -1)).flip(1).transpose(1, 2)


class RQSCouplingTransform(CouplingTransform):
    """Coupling rational-quadratic spline layer (neural spline flows, Durkan et al. 2019,
    arXiv:1906.04032), nflows ``PiecewiseRationalQuadraticCouplingTransform`` on 2-D inputs:
    a :class:`CouplingTransform` with :class:`fastgen.flows.RQSElementwiseTransform`.

    As nflows does, the width and height logits are divided by
    ``sqrt(transform_net.hidden_features)`` when the conditioner has that attribute (nflows'
    ``ResidualNet`` has), which keeps the initial bins near uniform.

    Args:
        mask, transform_net_create_fn: as :class:`CouplingTransform`.
        num_bins, tails, tail_bound, min_bin_width, min_bin_height, min_derivative, backend:
            the spline's, see :class:`fastgen.flows.RQSElementwiseTransform`; per-feature
            ``tails`` list the transformed features in order.

    Raises:
        ValueError: a bad mask (:class:`CouplingTransform`); bad ``num_bins``, ``tails`` or
            ``tail_bound``; at call time, inputs not ``(B, D)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from fastgen.flows import RQSCouplingTransform
        >>> class Net(nn.Linear):
        ...     def forward(self, inputs, context=None):
        ...         return super().forward(inputs)
        >>> _ = torch.manual_seed(0)
        >>> t = RQSCouplingTransform([1, 0, 1], Net, num_bins=4, tails="linear", tail_bound=3.0)
        >>> x = torch.randn(5, 3)
        >>> y, logabsdet = t(x)
        >>> torch.equal(y[:, 1], x[:, 1]), torch.allclose(t.inverse(y)[0], x, atol=1e-5)
        (True, True)
    """

    def __init__(
        self,
        mask,
        transform_net_create_fn,
        num_bins=10,
        tails=None,
        tail_bound=1.0,
        min_bin_width=DEFAULT_MIN_BIN_WIDTH,
        min_bin_height=DEFAULT_MIN_BIN_HEIGHT,
        min_derivative=DEFAULT_MIN_DERIVATIVE,
        backend=None,
    ):
        spline = RQSElementwiseTransform(
            len(split_features(mask)[1]),
            num_bins,
            tails,
            tail_bound,
            min_bin_width,
            min_bin_height,
            min_derivative,
            backend=backend,
        )
        super().__init__(mask, transform_net_create_fn, spline)
        if hasattr(self.transform_net, "hidden_features"):
            spline.logit_scale = math.sqrt(self.transform_net.hidden_features)
