"""Neural-network layers of fastgen: MADE, its masked linear layer, and the flow transforms
built on them (nflows conventions)."""

from fastgen.nn.made import MADE
from fastgen.nn.masked_linear import MaskedLinear, masked_linear
from fastgen.nn.transforms import (
    AutoregressiveTransform,
    CompositeTransform,
    MaskedAffineAutoregressiveTransform,
    MaskedRQSAutoregressiveTransform,
    Permutation,
    RandomPermutation,
    ReversePermutation,
    RQSCouplingTransform,
    Transform,
)

__all__ = [
    "MADE",
    "AutoregressiveTransform",
    "CompositeTransform",
    "MaskedAffineAutoregressiveTransform",
    "MaskedLinear",
    "MaskedRQSAutoregressiveTransform",
    "Permutation",
    "RQSCouplingTransform",
    "RandomPermutation",
    "ReversePermutation",
    "Transform",
    "masked_linear",
]
