"""Property tests of the Sinkhorn divergence at the extremes of ``blur`` (1e-6 to 1e6 times
the data's diameter) and of the data's magnitude: symmetry, non-negativity, float32 within
the stated tolerance of float64 (or a ValueError naming ``blur``), the closed-form limit for
blur >> diameter, homogeneity, NaN in -> NaN out, and the schedule-length cap on ``scaling``.
Tiny clouds (hypothesis, time-bounded); the Triton checks run under the interpreter."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgen.backend import TRITON_AVAILABLE
from fastgen.metrics import sinkhorn_divergence
from fastgen.metrics.sinkhorn import MAX_TEMPERATURE_RATIO, max_diameter

# float32 against float64: |S32 - S64| <= FLOAT32_TOLERANCE * diameter^p (the documented
# accuracy; measured <= 3e-7 over blur 1e-6 .. 1e6 diameters).
FLOAT32_TOLERANCE = 1e-4
FUZZ = settings(max_examples=25, deadline=None)


@st.composite
def clouds(draw):
    """Two clouds of 2 to 5 points in 1 to 3 dimensions, float64, seeded."""
    seed = draw(st.integers(0, 2**31 - 1))
    n, m, d = draw(st.integers(2, 5)), draw(st.integers(2, 5)), draw(st.integers(1, 3))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(m, d, generator=g, dtype=torch.float64) + draw(st.floats(0, 1))
    return x, y


def _refused_blur(call):
    """Run ``call``; a ValueError must name blur (beyond MAX_TEMPERATURE_RATIO)."""
    try:
        return call()
    except ValueError as error:
        assert "blur" in str(error)
        return None


@FUZZ
@given(clouds(), st.floats(-6, 6), st.sampled_from([1, 2]))
def test_symmetric_non_negative_and_float32_matches_float64(pair, log_blur, p):
    x, y = pair
    diameter = max_diameter(x, y)
    blur = 10**log_blur * diameter
    ratio = (blur / diameter) ** p
    s64 = _refused_blur(lambda: sinkhorn_divergence(x, y, blur=blur, p=p))
    assert (s64 is None) == (ratio > MAX_TEMPERATURE_RATIO)
    if s64 is None:
        return
    tolerance = FLOAT32_TOLERANCE * diameter**p
    s64_swapped = sinkhorn_divergence(y, x, blur=blur, p=p)
    s32 = sinkhorn_divergence(x.float(), y.float(), blur=blur, p=p)
    assert math.isfinite(s64.item()) and math.isfinite(s32.item())
    assert s64.item() >= -1e-9 * diameter**p
    assert abs(s64.item() - s64_swapped.item()) <= 1e-9 * diameter**p
    assert abs(s32.item() - s64.item()) <= tolerance, (s32.item(), s64.item())


@FUZZ
@given(clouds(), st.floats(4, 7.9))
def test_large_blur_reaches_the_energy_distance(pair, log_ratio):
    """p = 2, blur^2 = 10^log_ratio diameter^2: S tends to |mean x - mean y|^2 / 2 within
    about diameter^2 / (50 t); checked at 1e-3 relative plus that bound."""
    x, y = pair
    diameter = max_diameter(x, y)
    blur = math.sqrt(10**log_ratio) * diameter
    limit = 0.5 * (x.mean(0) - y.mean(0)).pow(2).sum().item()
    bound = 1e-3 * limit + diameter**2 / 10**log_ratio
    for dtype in (torch.float64, torch.float32):
        value = sinkhorn_divergence(x.to(dtype), y.to(dtype), blur=blur).item()
        assert abs(value - limit) <= bound + FLOAT32_TOLERANCE * diameter**2, (dtype, value)


@FUZZ
@given(clouds(), st.floats(-150, 150), st.sampled_from([torch.float32, torch.float64]))
def test_homogeneous_in_the_magnitude(pair, log_scale, dtype):
    """S(l x, l y; l blur) = l^2 S(x, y; blur) (p = 2) where l^2 S fits the dtype: data whose
    squared norms overflow (float32 from |x| ~ 1e19) give the scaled value, not NaN."""
    x, y = pair
    scale = 10.0**log_scale
    expected = sinkhorn_divergence(x, y, blur=0.1).item() * scale * scale
    tiny, huge = torch.finfo(dtype).tiny, torch.finfo(dtype).max
    xs, ys = (x * scale).to(dtype), (y * scale).to(dtype)
    if not (tiny * 1e3 < expected < huge / 10 and xs.abs().min() > tiny * 1e3):
        return
    value = sinkhorn_divergence(xs, ys, blur=0.1 * scale).item()
    assert value == pytest.approx(expected, rel=1e-4 if dtype == torch.float32 else 1e-9)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("blur", [1e-6, 1.0, 1e3])
def test_nan_data_gives_nan(blur, dtype, p):
    x = torch.rand(4, 2, dtype=dtype)
    y = torch.rand(3, 2, dtype=dtype)
    for bad in (math.nan, math.inf):
        poisoned = x.clone()
        poisoned[1, 0] = bad
        assert torch.isnan(sinkhorn_divergence(poisoned, y, blur=blur, p=p))


@pytest.mark.parametrize("scaling", [0.9999, 1 - 1e-12])
def test_scaling_near_one_is_refused_by_name(scaling):
    x = torch.rand(5, 2)
    with pytest.raises(ValueError, match="scaling = .* at most 10000"):
        sinkhorn_divergence(x, x + 1, blur=1e-3, scaling=scaling)


@pytest.mark.parametrize("blur", [1e200, 1e-200, 1e9])
def test_blur_beyond_the_accurate_range_is_refused_by_name(blur):
    x = torch.rand(5, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="blur = "):
        sinkhorn_divergence(x, x + 1, blur=blur)


@pytest.mark.skipif(not TRITON_AVAILABLE, reason="triton is not installed")
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("relative_blur", [1e-6, 1e3])
def test_triton_at_extreme_blur(relative_blur, p, device):
    """The Triton backend at blur 1e-6 and 1e3 diameters (the latter computed in float64 by
    the reference) within the float32 tolerance of the float64 reference; NaN -> NaN."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 2, generator=g, dtype=torch.float64)
    y = torch.randn(4, 2, generator=g, dtype=torch.float64) + 0.5
    diameter = max_diameter(x, y)
    blur = relative_blur * diameter
    expected = sinkhorn_divergence(x, y, blur=blur, p=p, backend="torch").item()
    x32, y32 = x.float().to(device), y.float().to(device)
    value = sinkhorn_divergence(x32, y32, blur=blur, p=p, backend="triton").item()
    assert abs(value - expected) <= FLOAT32_TOLERANCE * diameter**p
    x32[0, 0] = math.nan
    assert math.isnan(sinkhorn_divergence(x32, y32, blur=blur, p=p, backend="triton").item())
