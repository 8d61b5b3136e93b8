"""Autoregressive transforms: a MADE conditioner plus an element-wise transform (masked
autoregressive flows, Papamakarios et al. 2017, arXiv:1705.07057), with nflows' classes,
constructors and numbers.

A new autoregressive layer is an :class:`AutoregressiveTransform` over a
:class:`fastgen.nn.MADE` whose ``output_multiplier`` is the element-wise transform's
``params_per_feature``; see :class:`MaskedAffineAutoregressiveTransform` (a dozen lines). Its
inverse autoregressive counterpart (IAF) is that layer wrapped in
:class:`fastgen.flows.InverseTransform`; a whole IAF is
:class:`fastgen.flows.InverseAutoregressiveFlow`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fastgen.flows.elementwise import (
    AffineElementwiseTransform,
    ElementwiseTransform,
    RQSElementwiseTransform,
)
from fastgen.flows.transforms import Transform, check_inputs
from fastgen.nn.made import MADE
from fastgen.splines import DEFAULT_MIN_BIN_HEIGHT, DEFAULT_MIN_BIN_WIDTH, DEFAULT_MIN_DERIVATIVE


class AutoregressiveTransform(Transform):
    """``y_d = f(x_d; theta_d)`` with ``theta = autoregressive_net(x, context)``, so that
    ``theta_d`` depends on ``x_{<d}`` only (nflows ``AutoregressiveTransform``): the Jacobian
    is triangular and ``logabsdet`` is the element-wise transform's.

    ``forward`` (data to noise, density evaluation) is one MADE pass. ``inverse`` (sampling)
    needs ``D`` sequential passes: after pass ``d + 1``, feature ``d`` is exact. It is
    therefore about ``D`` times slower than ``forward``, as in nflows.

    Args:
        autoregressive_net: a :class:`fastgen.nn.MADE` on ``D`` features whose
            ``output_multiplier`` is ``elementwise.params_per_feature``.
        elementwise: the :class:`fastgen.flows.ElementwiseTransform` ``f``.

    Shapes: ``inputs (B, D)``, ``context (B, C)`` -> ``(outputs (B, D), logabsdet (B,))``.

    Raises:
        ValueError: a MADE whose ``output_multiplier`` does not match; at call time, inputs
            not ``(B, D)`` and the MADE's context errors.

    Example:
        >>> import torch
        >>> from fastgen.flows import AffineElementwiseTransform, AutoregressiveTransform
        >>> from fastgen.nn import MADE
        >>> _ = torch.manual_seed(0)
        >>> t = AutoregressiveTransform(MADE(3, 16, output_multiplier=2),
        ...                             AffineElementwiseTransform())
        >>> x = torch.randn(4, 3)
        >>> torch.allclose(t.inverse(t(x)[0])[0], x, atol=1e-5)
        True
    """

    def __init__(self, autoregressive_net: MADE, elementwise: ElementwiseTransform):
        if autoregressive_net.output_multiplier != elementwise.params_per_feature:
            raise ValueError(
                f"autoregressive_net must have output_multiplier = "
                f"elementwise.params_per_feature = {elementwise.params_per_feature}, got "
                f"{autoregressive_net.output_multiplier}"
            )
        super().__init__()
        self.features = autoregressive_net.features
        self.autoregressive_net = autoregressive_net
        self.elementwise = elementwise

    def _params(self, inputs, context):
        return self.autoregressive_net(inputs, context).view(inputs.shape[0], self.features, -1)

    def forward(self, inputs, context=None):
        check_inputs(inputs, self.features)
        return self.elementwise(inputs, self._params(inputs, context))

    def inverse(self, inputs, context=None):
        check_inputs(inputs, self.features)
        outputs = torch.zeros_like(inputs)
        logabsdet = None
        for _ in range(self.features):
            outputs, logabsdet = self.elementwise.inverse(inputs, self._params(outputs, context))
        return outputs, logabsdet

    def load_nflows_state_dict(self, state_dict) -> None:
        """Copy the parameters of the nflows counterpart (its ``state_dict()``) into this
        transform (see :meth:`fastgen.nn.MADE.load_nflows_state_dict`)."""
        self.autoregressive_net.load_nflows_state_dict(state_dict, prefix="autoregressive_net.")


class MaskedAffineAutoregressiveTransform(AutoregressiveTransform):
    """MAF layer (Papamakarios et al. 2017, arXiv:1705.07057), nflows
    ``MaskedAffineAutoregressiveTransform``: a :class:`fastgen.nn.MADE` with two outputs per
    feature and :class:`fastgen.flows.AffineElementwiseTransform`,
    ``y_d = (softplus(u_d) + 1e-3) x_d + t_d``.

    Args:
        features: ``D >= 1``.
        hidden_features: width ``H >= 1`` of the MADE's hidden layers.
        context_features: ``C >= 1`` for a conditional layer, or None.
        num_blocks, use_residual_blocks, random_mask, activation, dropout_probability,
        use_batch_norm, backend: passed to :class:`fastgen.nn.MADE` (same meaning as nflows').

    Shapes, cost and errors: as :class:`AutoregressiveTransform` and :class:`fastgen.nn.MADE`.

    Example:
        >>> import torch
        >>> from fastgen.flows import MaskedAffineAutoregressiveTransform
        >>> _ = torch.manual_seed(0)
        >>> maf = MaskedAffineAutoregressiveTransform(features=3, hidden_features=16)
        >>> x = torch.randn(4, 3)
        >>> y, logabsdet = maf(x)
        >>> logabsdet.shape, torch.allclose(maf.inverse(y)[0], x, atol=1e-5)
        (torch.Size([4]), True)
    """

    def __init__(
        self,
        features,
        hidden_features,
        context_features=None,
        num_blocks=2,
        use_residual_blocks=True,
        random_mask=False,
        activation=F.relu,
        dropout_probability=0.0,
        use_batch_norm=False,
        backend=None,
    ):
        affine = AffineElementwiseTransform()
        made = MADE(
            features,
            hidden_features,
            context_features,
            num_blocks,
            affine.params_per_feature,
            use_residual_blocks,
            random_mask,
            activation,
            dropout_probability,
            use_batch_norm,
            backend=backend,
        )
        super().__init__(made, affine)


class MaskedRQSAutoregressiveTransform(AutoregressiveTransform):
    """Autoregressive rational-quadratic spline layer (neural spline flows, Durkan et al.
    2019, arXiv:1906.04032), nflows ``MaskedPiecewiseRationalQuadraticAutoregressiveTransform``:
    a :class:`fastgen.nn.MADE` computing ``params_per_feature`` logits per feature for
    :class:`fastgen.flows.RQSElementwiseTransform`.

    The width and height logits are not divided by ``sqrt(hidden_features)``: nflows does
    that only for conditioners with a ``hidden_features`` attribute, which neither its MADE nor
    fastgen's has.

    Args:
        features: ``D >= 1``.
        hidden_features: width ``H >= 1`` of the MADE's hidden layers.
        context_features: ``C >= 1`` for a conditional layer, or None.
        num_bins, tails, tail_bound, min_bin_width, min_bin_height, min_derivative: the
            spline's, see :class:`fastgen.flows.RQSElementwiseTransform` (``tails`` may be
            one per feature).
        num_blocks, use_residual_blocks, random_mask, activation, dropout_probability,
        use_batch_norm: passed to :class:`fastgen.nn.MADE` (same meaning as nflows').
        backend: for the spline and the masked layers.

    Shapes and cost: as :class:`AutoregressiveTransform`.

    Raises:
        ValueError: bad ``num_bins``, ``tails`` or ``tail_bound`` (the spline's), bad MADE
            arguments; at call time, inputs not ``(B, D)`` and context mismatches.

    Example:
        >>> import torch
        >>> from fastgen.flows import MaskedRQSAutoregressiveTransform
        >>> _ = torch.manual_seed(0)
        >>> nsf = MaskedRQSAutoregressiveTransform(3, 16, num_bins=4, tails="linear",
        ...                                        tail_bound=3.0)
        >>> x = torch.randn(4, 3)
        >>> y, logabsdet = nsf(x)
        >>> torch.allclose(nsf.inverse(y)[0], x, atol=1e-5)
        True
    """

    def __init__(
        self,
        features,
        hidden_features,
        context_features=None,
        num_bins=10,
        tails=None,
        tail_bound=1.0,
        num_blocks=2,
        use_residual_blocks=True,
        random_mask=False,
        activation=F.relu,
        dropout_probability=0.0,
        use_batch_norm=False,
        min_bin_width=DEFAULT_MIN_BIN_WIDTH,
        min_bin_height=DEFAULT_MIN_BIN_HEIGHT,
        min_derivative=DEFAULT_MIN_DERIVATIVE,
        backend=None,
    ):
        spline = RQSElementwiseTransform(
            features,
            num_bins,
            tails,
            tail_bound,
            min_bin_width,
            min_bin_height,
            min_derivative,
            backend=backend,
        )
        made = MADE(
            features,
            hidden_features,
            context_features,
            num_blocks,
            spline.params_per_feature,
            use_residual_blocks,
            random_mask,
            activation,
            dropout_probability,
            use_batch_norm,
            backend=backend,
        )
        super().__init__(made, spline)
