"""Element-wise transforms: the per-feature bijections ``y_d = f(x_d; theta_d)`` that
autoregressive and coupling transforms apply, with parameters ``theta`` that a conditioner
network computes (zuko's univariate transforms, with nflows' parameter layouts).

An element-wise transform declares ``params_per_feature`` (``m``), the number of
unconstrained parameters it needs per feature, and maps ``(inputs (B, D), params (B, D, m))``
to ``(outputs (B, D), logabsdet (B,))`` by ``forward`` and ``inverse``. It holds no learned
parameters: the conditioner does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fastgen._checks import check_choice, check_number
from fastgen.splines import (
    DEFAULT_MIN_BIN_HEIGHT,
    DEFAULT_MIN_BIN_WIDTH,
    DEFAULT_MIN_DERIVATIVE,
    TAILS,
    rational_quadratic_spline,
    unconstrained_rational_quadratic_spline,
)

# Knot derivatives per feature beyond num_bins K, by tails (nflows' layouts): the bounded
# spline (None) learns all K + 1; linear tails fix the two end ones to 1 (K - 1 learned);
# circular tails share one between both ends (K).
EXTRA_DERIVATIVES = {None: 1, "linear": -1, "circular": 0}


class ElementwiseTransform(nn.Module):
    """Base class: a bijection of each feature with its own parameters.

    Subclasses set ``params_per_feature`` (``m``) and define ``forward(inputs, params)`` and
    ``inverse(inputs, params)``: ``inputs (B, D)``, ``params (B, D, m)`` (feature-major, the
    layout of :class:`fastgen.nn.MADE`'s outputs viewed ``(B, D, m)``) -> ``(outputs (B, D),
    logabsdet (B,))``, the log-determinant of the direction called summed over the features.
    """

    params_per_feature: int

    def forward(self, inputs, params):
        raise NotImplementedError

    def inverse(self, inputs, params):
        raise NotImplementedError


# The positive scale of the affine transform from its unconstrained parameter u, by name:
# nflows' MAF (softplus) and nflows' RealNVP coupling (sigmoid(u + 2): at most 1, starts near
# 0.88, so a coupling layer can only contract, which keeps deep stacks stable).
SCALE_ACTIVATIONS = {
    "softplus": F.softplus,
    "sigmoid": lambda u: torch.sigmoid(u + 2.0),
}


class AffineElementwiseTransform(ElementwiseTransform):
    """``y = s x + t`` with ``s = a(u) + epsilon`` and ``(u, t) = params.unbind(-1)``;
    ``logabsdet = sum_d log s_d``. With ``scale_activation="softplus"`` (``a = softplus``) it
    is the element-wise step of nflows' ``MaskedAffineAutoregressiveTransform`` (MAF,
    Papamakarios et al. 2017, arXiv:1705.07057); with ``"sigmoid"``
    (``a(u) = sigmoid(u + 2)``) that of nflows' ``AffineCouplingTransform`` (RealNVP, Dinh et
    al. 2017, arXiv:1605.08803).

    ``params_per_feature`` is 2: ``params[..., 0]`` is the unconstrained scale ``u``,
    ``params[..., 1]`` the shift ``t``. Both activations keep ``s > epsilon``; the softplus,
    unlike ``exp``, grows linearly, so one large logit cannot blow the sample up, and the
    sigmoid caps ``s`` below ``1 + epsilon``.

    Args:
        epsilon: the smallest scale, ``> 0`` (nflows: 1e-3).
        scale_activation: ``"softplus"`` (MAF) or ``"sigmoid"`` (RealNVP coupling).

    Raises:
        ValueError: ``epsilon <= 0``; an unknown ``scale_activation``.

    Example:
        >>> import torch
        >>> from fastgen.flows import AffineElementwiseTransform
        >>> affine = AffineElementwiseTransform()
        >>> params = torch.zeros(1, 2, 2)  # s = softplus(0) + 1e-3 = 0.6941, t = 0
        >>> affine(torch.tensor([[1.0, -2.0]]), params)
        (tensor([[ 0.6941, -1.3883]]), tensor([-0.7301]))
        >>> AffineElementwiseTransform(scale_activation="sigmoid")(torch.ones(1, 1), params[:, :1])
        (tensor([[0.8818]]), tensor([-0.1258]))
    """

    params_per_feature = 2

    def __init__(self, epsilon: float = 1e-3, scale_activation: str = "softplus"):
        super().__init__()
        self.epsilon = check_number("epsilon", epsilon, minimum=0, exclusive=True)
        self.scale_activation = check_choice(
            "scale_activation", scale_activation, tuple(SCALE_ACTIVATIONS)
        )

    def _scale_and_shift(self, params):
        activation = SCALE_ACTIVATIONS[self.scale_activation]
        return activation(params[..., 0]) + self.epsilon, params[..., 1]

    def forward(self, inputs, params):
        scale, shift = self._scale_and_shift(params)
        return scale * inputs + shift, torch.log(scale).sum(-1)

    def inverse(self, inputs, params):
        scale, shift = self._scale_and_shift(params)
        return (inputs - shift) / scale, -torch.log(scale).sum(-1)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, scale_activation={self.scale_activation!r}"


def per_feature_tails(tails, features: int) -> tuple:
    """``tails`` (None, one of ``"linear"`` / ``"circular"``, or a sequence of those, one per
    feature) as a tuple of ``features`` entries."""
    if tails is None or isinstance(tails, str):
        if tails not in (None, *TAILS):
            raise ValueError(
                f"tails must be None, 'linear', 'circular' or a sequence of those per "
                f"feature, got {tails!r}"
            )
        return (tails,) * features
    if not isinstance(tails, Sequence):
        raise ValueError(f"tails must be None, a string or a sequence, got {tails!r}")
    tails = tuple(tails)
    if len(tails) != features or not set(tails) <= set(TAILS):
        raise ValueError(
            f"per-feature tails must be {features} values of 'linear' / 'circular', got {tails!r}"
        )
    return tails


class RQSElementwiseTransform(ElementwiseTransform):
    """Monotonic rational-quadratic spline of each feature with ``K = num_bins`` bins
    (neural spline flows, Durkan et al. 2019, arXiv:1906.04032), computed by
    :func:`fastgen.unconstrained_rational_quadratic_spline` or, with ``tails=None``,
    :func:`fastgen.rational_quadratic_spline`.

    ``params (B, D, m)`` are laid out as nflows': width logits ``[..., :K]``, height logits
    ``[..., K:2K]``, knot-derivative logits ``[..., 2K:]``. ``m = params_per_feature`` is
    ``3K + 1`` for the bounded spline, ``3K - 1`` for linear tails, and ``3K`` for circular
    tails and for mixed per-feature tails (a linear feature ignores its last derivative
    logit). Features are grouped by tails once at construction; mixed tails cost one gather
    per group and one to restore the order.

    Args:
        features: ``D``, the number of features transformed (needed for per-feature tails).
        num_bins: ``K >= 2``. More bins fit sharper densities, at ``3K`` logits per feature.
        tails: ``None``: the spline maps ``[0, 1]`` onto itself and inputs must lie there.
            ``"linear"``: the spline on ``[-tail_bound, tail_bound]``, the identity outside
            (derivative 1 at the ends). ``"circular"``: the same interval as a circle (one
            shared end derivative; for angles rescaled to it). A sequence of ``"linear"`` /
            ``"circular"``, one per feature, mixes the two (angles among other features).
        tail_bound: ``B > 0``, half the width of the spline's interval: put it where the
            data (or the previous layer's outputs) rarely go beyond.
        min_bin_width, min_bin_height: in ``[0, 1 / K)``, the floor of each bin's share.
        min_derivative: ``>= 0``, the floor of the knot derivatives.
        logit_scale: the width and height logits are divided by it (nflows divides them by
            ``sqrt(hidden_features)`` of conditioners that have that attribute; see
            :class:`fastgen.flows.RQSCouplingTransform`).
        backend: ``"auto"``, ``"triton"``, ``"torch"`` or ``None`` (``FASTGEN_BACKEND``).

    Shapes and dtypes: as :func:`fastgen.unconstrained_rational_quadratic_spline`; NaN inputs
    give NaN outputs.

    Raises:
        TypeError: a non-integer ``features`` or ``num_bins``; a non-number bound.
        ValueError: ``features < 1``, ``num_bins < 2``, ``tail_bound <= 0``, unknown
            ``tails`` or per-feature tails of the wrong length; at call time, what the spline
            functions raise (parameters of the wrong shape, bounded inputs outside
            ``[0, 1]``).

    Example:
        >>> import torch
        >>> from fastgen.flows import RQSElementwiseTransform
        >>> spline = RQSElementwiseTransform(2, num_bins=4, tails="linear", tail_bound=3.0)
        >>> spline.params_per_feature
        11
        >>> _ = torch.manual_seed(0)
        >>> x, params = torch.tensor([[0.5, -4.0]]), torch.randn(1, 2, 11)
        >>> y, logabsdet = spline(x, params)
        >>> y[0, 1]  # outside [-3, 3]: the identity
        tensor(-4.)
        >>> torch.allclose(spline.inverse(y, params)[0], x, atol=1e-6)
        True
    """

    def __init__(
        self,
        features: int,
        num_bins: int = 10,
        tails=None,
        tail_bound: float = 1.0,
        min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
        min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
        min_derivative: float = DEFAULT_MIN_DERIVATIVE,
        logit_scale: float = 1.0,
        backend: str | None = None,
    ):
        super().__init__()
        features = check_number("features", features, integer=True, minimum=1)
        self.num_bins = check_number("num_bins", num_bins, integer=True, minimum=2)
        self.tails = per_feature_tails(tails, features)
        self.tail_bound = check_number("tail_bound", tail_bound, minimum=0, exclusive=True)
        self.min_bin_width = min_bin_width
        self.min_bin_height = min_bin_height
        self.min_derivative = min_derivative
        self.logit_scale = check_number("logit_scale", logit_scale, minimum=0, exclusive=True)
        self.backend = backend
        # Groups of features with the same tails, in the order of TAILS (None alone).
        self._group_tails = [t for t in (None, *TAILS) if t in self.tails]
        self.params_per_feature = 3 * self.num_bins + max(
            EXTRA_DERIVATIVES[t] for t in self._group_tails
        )
        order, self._group_sizes = None, [features]
        if len(self._group_tails) > 1:
            groups = [[i for i, t in enumerate(self.tails) if t == g] for g in self._group_tails]
            order = torch.tensor([i for group in groups for i in group])
            self._group_sizes = [len(g) for g in groups]
        # Derived from the constructor's arguments: not part of the state_dict.
        self.register_buffer("_order", order, persistent=False)
        self.register_buffer(
            "_unsplit", None if order is None else torch.argsort(order), persistent=False
        )

    def _groups(self, *tensors):
        """``(tails, tensors restricted to the features with those tails)`` per group."""
        if self._order is None:
            return [(self._group_tails[0], tensors)]
        indices = self._order.split(self._group_sizes)
        return [
            (tails, [t.index_select(1, index) for t in tensors])
            for tails, index in zip(self._group_tails, indices, strict=True)
        ]

    def _spline(self, inputs, params, inverse):
        k = self.num_bins
        widths, heights, derivatives = params[..., :k], params[..., k : 2 * k], params[..., 2 * k :]
        if self.logit_scale != 1.0:
            widths, heights = widths / self.logit_scale, heights / self.logit_scale
        common = dict(
            inverse=inverse,
            min_bin_width=self.min_bin_width,
            min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative,
            backend=self.backend,
        )
        results = []
        for tails, (x, w, h, d) in self._groups(inputs, widths, heights, derivatives):
            d = d[..., : k + EXTRA_DERIVATIVES[tails]]
            if tails is None:
                results.append(rational_quadratic_spline(x, w, h, d, **common))
            else:
                results.append(
                    unconstrained_rational_quadratic_spline(
                        x, w, h, d, tails=tails, tail_bound=self.tail_bound, **common
                    )
                )
        if len(results) == 1:
            outputs, logabsdet = results[0]
        else:
            outputs = torch.cat([r[0] for r in results], 1).index_select(1, self._unsplit)
            logabsdet = torch.cat([r[1] for r in results], 1)
        return outputs, logabsdet.sum(-1)

    def forward(self, inputs, params):
        return self._spline(inputs, params, inverse=False)

    def inverse(self, inputs, params):
        return self._spline(inputs, params, inverse=True)

    def extra_repr(self) -> str:
        return (
            f"num_bins={self.num_bins}, tails={self.tails}, tail_bound={self.tail_bound}, "
            f"params_per_feature={self.params_per_feature}"
        )
