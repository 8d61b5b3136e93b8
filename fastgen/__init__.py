"""fastgen: fused Triton kernels and fast PyTorch references for generative models in science."""

from fastgen import gan
from fastgen.splines import rational_quadratic_spline, unconstrained_rational_quadratic_spline

__all__ = ["gan", "rational_quadratic_spline", "unconstrained_rational_quadratic_spline"]
__version__ = "0.1.0"
