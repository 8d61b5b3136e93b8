"""Neural-network layers of fastgen: MADE and the flow transforms built on it."""

from fastgen.nn.made import MADE
from fastgen.nn.masked_linear import MaskedLinear, masked_linear

__all__ = ["MADE", "MaskedLinear", "masked_linear"]
