"""Random spline problems shared by the spline tests, drawn from ``generator`` (default: the
global generator, which tests/conftest.py seeds per test)."""

import torch

# Number of unnormalised derivatives relative to K, per tails setting (None: bounded spline).
DERIVATIVE_OFFSET = {"linear": -1, "circular": 0, None: 1}


def spline_params(
    shape, num_bins, tails, dtype=torch.float64, device="cpu", scale=1.0, generator=None
):
    """``(widths, heights, derivatives)`` of shapes ``shape + (K,)`` and ``shape + (K'',)``,
    standard normal times ``scale``."""
    num_derivatives = num_bins + DERIVATIVE_OFFSET[tails]

    def normal(last):
        return scale * torch.randn(*shape, last, generator=generator, dtype=dtype).to(device)

    return normal(num_bins), normal(num_bins), normal(num_derivatives)


def inputs_for(shape, bound, dtype=torch.float64, device="cpu", outside=True, generator=None):
    """Inputs covering ``[-bound, bound]`` (and beyond it when ``outside``), with the two
    bounds themselves included when there is room."""
    spread = 1.5 * bound if outside else bound
    x = (2 * torch.rand(*shape, generator=generator, dtype=dtype) - 1) * spread
    flat = x.view(-1)
    if flat.numel() >= 4:
        flat[:2] = torch.tensor([-bound, bound], dtype=dtype)
    return x.to(device)


def bounded_inputs(shape, lower, upper, dtype=torch.float64, device="cpu", generator=None):
    x = lower + (upper - lower) * torch.rand(*shape, generator=generator, dtype=dtype)
    flat = x.view(-1)
    if flat.numel() >= 4:
        flat[:2] = torch.tensor([lower, upper], dtype=dtype)
    return x.to(device)
