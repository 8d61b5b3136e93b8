"""Neural-network layers of fastgen: MADE and the flow transforms built on it."""

from fastgen.nn.masked_linear import MaskedLinear, masked_linear

__all__ = ["MaskedLinear", "masked_linear"]
