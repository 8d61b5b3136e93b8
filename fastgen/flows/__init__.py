"""Normalizing flows with nflows' classes and conventions, built by composition as zuko's.

A :class:`Flow` is a transform from data to noise plus a base distribution
(:class:`StandardNormal`). A transform maps ``inputs (B, D)`` to ``(outputs, logabsdet (B,))``
(:class:`Transform`). Layers with a network are compositions:

* :class:`AutoregressiveTransform` = a :class:`fastgen.nn.MADE` conditioner + an element-wise
  transform (module ``fastgen.flows.autoregressive``);
* :class:`CouplingTransform` = a conditioner on the unchanged features + an element-wise
  transform of the others (``fastgen.flows.coupling``);
* the element-wise transforms (``fastgen.flows.elementwise``) declare
  ``params_per_feature`` and map ``(inputs, params)`` to ``(outputs, logabsdet)``:
  :class:`AffineElementwiseTransform` (MAF; RealNVP's :class:`AffineCouplingTransform` with
  ``scale_activation="sigmoid"``) and :class:`RQSElementwiseTransform` (splines, with
  per-feature linear or circular tails).

A new layer is a few lines: a subclass whose constructor builds its conditioner and
element-wise transform and calls the composition's constructor (see
:class:`MaskedAffineAutoregressiveTransform`). Structural transforms (composition,
inversion, permutations) are in ``fastgen.flows.transforms``, :class:`BatchNorm` in
``fastgen.flows.normalization``; the flows :class:`NeuralSplineFlow` in ``fastgen.flows.nsf``,
:class:`MaskedAutoregressiveFlow` and :class:`InverseAutoregressiveFlow` (IAF: the MAF stack
wrapped in :class:`InverseTransform`) in ``fastgen.flows.maf``.
"""

from fastgen.flows.autoregressive import (
    AutoregressiveTransform,
    MaskedAffineAutoregressiveTransform,
    MaskedRQSAutoregressiveTransform,
)
from fastgen.flows.core import Flow
from fastgen.flows.coupling import (
    AffineCouplingTransform,
    CouplingTransform,
    RQSCouplingTransform,
)
from fastgen.flows.distributions import StandardNormal
from fastgen.flows.elementwise import (
    AffineElementwiseTransform,
    ElementwiseTransform,
    RQSElementwiseTransform,
)
from fastgen.flows.maf import InverseAutoregressiveFlow, MaskedAutoregressiveFlow
from fastgen.flows.normalization import BatchNorm
from fastgen.flows.nsf import NeuralSplineFlow
from fastgen.flows.transforms import (
    CompositeTransform,
    InverseTransform,
    Permutation,
    RandomPermutation,
    ReversePermutation,
    Transform,
)

__all__ = [
    "AffineCouplingTransform",
    "AffineElementwiseTransform",
    "AutoregressiveTransform",
    "BatchNorm",
    "CompositeTransform",
    "CouplingTransform",
    "ElementwiseTransform",
    "Flow",
    "InverseAutoregressiveFlow",
    "InverseTransform",
    "MaskedAutoregressiveFlow",
    "MaskedAffineAutoregressiveTransform",
    "MaskedRQSAutoregressiveTransform",
    "NeuralSplineFlow",
    "Permutation",
    "RQSCouplingTransform",
    "RQSElementwiseTransform",
    "RandomPermutation",
    "ReversePermutation",
    "StandardNormal",
    "Transform",
]
