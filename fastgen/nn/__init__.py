"""Neural-network layers of fastgen: MADE (Germain et al. 2015, arXiv:1502.03509) and its
masked linear layer, nflows-compatible.

The flow transforms live in :mod:`fastgen.flows`; their old names here
(``fastgen.nn.MaskedRQSAutoregressiveTransform``, ...) still resolve to them.
"""

from fastgen.nn.made import MADE
from fastgen.nn.masked_linear import MaskedLinear, masked_linear

__all__ = ["MADE", "MaskedLinear", "masked_linear"]

# Names that moved to fastgen.flows, resolved on first use: fastgen.flows imports
# fastgen.nn.made, so importing it here would be circular.
_MOVED_TO_FLOWS = (
    "AutoregressiveTransform",
    "CompositeTransform",
    "MaskedAffineAutoregressiveTransform",
    "MaskedRQSAutoregressiveTransform",
    "Permutation",
    "RQSCouplingTransform",
    "RandomPermutation",
    "ReversePermutation",
    "Transform",
)


def __getattr__(name):
    if name in _MOVED_TO_FLOWS:
        from fastgen import flows

        return getattr(flows, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
