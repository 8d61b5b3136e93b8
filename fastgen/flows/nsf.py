"""The neural spline flow in one line: :class:`NeuralSplineFlow` (Durkan et al. 2019,
arXiv:1906.04032), assembled from the spline transforms of :mod:`fastgen.flows`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fastgen._checks import check_bool, check_number
from fastgen.flows.autoregressive import MaskedRQSAutoregressiveTransform
from fastgen.flows.core import Flow
from fastgen.flows.coupling import RQSCouplingTransform
from fastgen.flows.distributions import StandardNormal
from fastgen.flows.transforms import CompositeTransform, ReversePermutation


class _ConditionerNet(nn.Module):
    """MLP ``in -> hidden (relu) x (num_blocks + 1) -> out`` on ``cat(inputs, context)``, the
    coupling conditioner of :class:`NeuralSplineFlow`. Its last layer starts at zero (the
    coupling starts at the identity); its ``hidden_features`` attribute makes the coupling
    scale the spline logits as nflows' ResidualNet does."""

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
            raise ValueError(
                f"context must be given exactly when context_features is set "
                f"(context_features={self.context_features})"
            )
        return self.net(inputs if context is None else torch.cat([inputs, context], -1))


class NeuralSplineFlow(Flow):
    """Rational-quadratic neural spline flow on ``features`` dimensions with a standard normal
    base (Durkan et al. 2019, arXiv:1906.04032), conditional on ``context`` when
    ``context_features`` is set.

    ``num_layers`` spline layers with linear tails on ``[-tail_bound, tail_bound]`` (circular
    tails for the features listed in ``circular_features``), a :class:`ReversePermutation`
    between consecutive layers. Each layer is a :class:`MaskedRQSAutoregressiveTransform`
    (``autoregressive=True``, the default: MADE conditioner, the most expressive per layer)
    or an :class:`RQSCouplingTransform` transforming alternate halves of the features with
    an MLP conditioner (``autoregressive=False``).

    Cost: ``log_prob`` is one conditioner pass per layer. ``sample`` of the autoregressive
    flow inverts each layer with ``features`` sequential MADE passes (exact, as nflows does),
    so it is about ``features`` times slower than ``log_prob``; coupling layers invert in one
    pass.

    Args:
        features: ``D``: ``>= 1``, or ``>= 2`` for coupling layers.
        context_features: ``C >= 1`` for ``p(x | context)``, or None.
        num_layers: ``>= 1`` spline layers.
        hidden_features: ``>= 1``, the conditioners' width.
        num_blocks: ``>= 0`` residual blocks of the MADE (hidden layers + 1 of the coupling
            MLP).
        num_bins: ``K >= 2`` bins per spline.
        tail_bound: ``> 0``; the splines act on ``[-tail_bound, tail_bound]``: standardise
            the data and keep most of it inside.
        autoregressive: MADE (True) or coupling (False) layers.
        circular_features: indices of periodic features (angles rescaled to
            ``[-tail_bound, tail_bound]``), given circular splines.
        backend: ``"auto"``, ``"triton"``, ``"torch"`` or ``None`` (``FASTGEN_BACKEND``).

    Shapes and methods: as :class:`Flow`.

    Raises:
        TypeError: a non-integer count, a non-bool ``autoregressive``.
        ValueError: a count below its minimum, ``tail_bound <= 0``, ``circular_features``
            outside ``0..features-1``; at call time, what :class:`Flow` raises.

    Example:
        >>> import torch
        >>> from fastgen.flows import NeuralSplineFlow
        >>> _ = torch.manual_seed(0)
        >>> flow = NeuralSplineFlow(3, context_features=2, num_layers=2, hidden_features=16)
        >>> x, c = torch.randn(8, 3), torch.randn(8, 2)
        >>> loss = -flow.log_prob(x, context=c).mean()
        >>> flow.sample(5, context=c[:2]).shape
        torch.Size([2, 5, 3])
    """

    def __init__(
        self,
        features: int,
        context_features: int | None = None,
        num_layers: int = 5,
        hidden_features: int = 64,
        num_blocks: int = 2,
        num_bins: int = 8,
        tail_bound: float = 3.0,
        autoregressive: bool = True,
        circular_features: Sequence[int] = (),
        backend: str | None = None,
    ):
        autoregressive = check_bool("autoregressive", autoregressive)
        minimum = 1 if autoregressive else 2
        features = check_number("features", features, integer=True, minimum=minimum)
        context_features = check_number(
            "context_features", context_features, integer=True, minimum=1, allow_none=True
        )
        num_layers = check_number("num_layers", num_layers, integer=True, minimum=1)
        hidden_features = check_number("hidden_features", hidden_features, integer=True, minimum=1)
        num_blocks = check_number("num_blocks", num_blocks, integer=True, minimum=0)
        circular = set(circular_features)
        if not circular <= set(range(features)):
            raise ValueError(
                f"circular_features must be indices in 0..{features - 1}, got {sorted(circular)}"
            )
        spline = dict(num_bins=num_bins, tail_bound=tail_bound, backend=backend)

        def conditioner(in_features, out_features):
            return _ConditionerNet(
                in_features, out_features, hidden_features, context_features, num_blocks
            )

        order = torch.arange(features)  # the original feature at each position
        transforms = []
        for layer in range(num_layers):
            tails = ["circular" if int(i) in circular else "linear" for i in order]
            if autoregressive:
                transforms.append(
                    MaskedRQSAutoregressiveTransform(
                        features,
                        hidden_features,
                        context_features,
                        tails=tails,
                        num_blocks=num_blocks,
                        **spline,
                    )
                )
            else:
                mask = (torch.arange(features) + layer) % 2
                transformed = [t for t, m in zip(tails, mask.tolist(), strict=True) if m > 0]
                transforms.append(
                    RQSCouplingTransform(mask, conditioner, tails=transformed, **spline)
                )
            if layer < num_layers - 1:
                permutation = ReversePermutation(features)
                transforms.append(permutation)
                order = order[permutation._permutation]
        super().__init__(CompositeTransform(transforms), StandardNormal([features]))
        self.features = features
        self.context_features = context_features
