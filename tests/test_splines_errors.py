"""Bad input to the splines: a clear TypeError / ValueError naming the argument."""

import pytest
import torch

import fastgen


def _args(n=4, num_bins=8, num_derivatives=None, dtype=torch.float32):
    num_derivatives = num_bins - 1 if num_derivatives is None else num_derivatives
    return (
        torch.zeros(n, dtype=dtype),
        torch.zeros(n, num_bins, dtype=dtype),
        torch.zeros(n, num_bins, dtype=dtype),
        torch.zeros(n, num_derivatives, dtype=dtype),
    )


def _spline(*args, **kwargs):
    return fastgen.unconstrained_rational_quadratic_spline(*args, **kwargs)


@pytest.mark.parametrize(
    "change, error, pattern",
    [
        (lambda a: (a[0][:3], *a[1:]), ValueError, r"unnormalized_widths must have shape"),
        (lambda a: (a[0], a[1], a[2][:, :5], a[3]), ValueError, r"unnormalized_heights must"),
        (
            lambda a: (*a[:3], a[3][:, :3]),
            ValueError,
            r"unnormalized_derivatives must have "
            r"shape \(4, 7\) \(num_bins 8-1 for these tails\), got \(4, 3\)",
        ),
        (lambda a: (a[0].long(), *a[1:]), TypeError, r"inputs must have a floating-point"),
        (lambda a: (a[0], a[1].double(), *a[2:]), TypeError, r"share one dtype"),
        (lambda a: (a[0].tolist(), *a[1:]), TypeError, r"inputs must be a torch.Tensor"),
    ],
)
def test_bad_tensors(change, error, pattern):
    with pytest.raises(error, match=pattern):
        _spline(*change(_args()))


def test_too_few_bins():
    with pytest.raises(ValueError, match=r"num_bins .* must be >= 2, got 1"):
        _spline(*_args(num_bins=1, num_derivatives=0))


@pytest.mark.parametrize("name", ["min_bin_width", "min_bin_height"])
def test_minimum_sizes_must_leave_room(name):
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1 / num_bins\)"):
        _spline(*_args(), **{name: 1 / 8})
    with pytest.raises(ValueError, match=name):
        _spline(*_args(), **{name: -1e-3})


@pytest.mark.parametrize(
    "value, error",
    [
        (0.0, ValueError),
        (-1.0, ValueError),
        (float("inf"), ValueError),
        ("1", TypeError),
        (torch.tensor(1.0), TypeError),
    ],
)
def test_tail_bound(value, error):
    with pytest.raises(error, match="tail_bound"):
        _spline(*_args(), tail_bound=value)


def test_unknown_tails():
    with pytest.raises(ValueError, match=r"tails must be one of \('linear', 'circular'\), got"):
        _spline(*_args(), tails="quadratic")


def test_circular_derivative_layout():
    with pytest.raises(ValueError, match=r"\(4, 8\) \(num_bins 8\+0 for these tails\)"):
        _spline(*_args(), tails="circular")


def test_min_derivative():
    with pytest.raises(ValueError, match="min_derivative must be >= 0"):
        _spline(*_args(), min_derivative=-0.1)
    with pytest.raises(ValueError, match="min_derivative must be finite"):
        _spline(*_args(), min_derivative=float("nan"))


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        _spline(*_args(), backend="cuda")


def test_bounded_domain_and_bounds():
    args = _args(num_derivatives=9)
    x = torch.tensor([0.5, 1.5, 0.2, 0.1])
    with pytest.raises(ValueError, match=r"inputs must lie in \[left, right\] = \[0.0, 1.0\]"):
        fastgen.rational_quadratic_spline(x, *args[1:])
    with pytest.raises(ValueError, match=r"\[bottom, top\]"):
        fastgen.rational_quadratic_spline(x * 3, *args[1:], inverse=True, top=2.0)
    with pytest.raises(ValueError, match="inputs must lie in"):
        fastgen.rational_quadratic_spline(torch.full((4,), float("nan")), *args[1:])
    with pytest.raises(ValueError, match="right must be > left"):
        fastgen.rational_quadratic_spline(x, *args[1:], left=1.0, right=1.0)
    with pytest.raises(ValueError, match="top must be > bottom"):
        fastgen.rational_quadratic_spline(x, *args[1:], bottom=2.0)
    with pytest.raises(ValueError, match=r"\(4, 9\) \(num_bins 8\+1 for these tails\)"):
        fastgen.rational_quadratic_spline(torch.zeros(4), *_args()[1:])
