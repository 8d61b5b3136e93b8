"""Relative-oracle assertions shared by the tests (DESIGN.md, "Testing method").

An implementation in low precision is judged against the float64 reference by comparison
with a reference run in the same precision: its error may be a small multiple of that
reference's own round-off, never an absolute number picked to pass. Errors are elementwise
and relative to ``1 + |ref64|``, so that large values (log-dets of narrow bins, gradients of
steep bins) and values near zero are held to the same standard.

Two statistics, because a few ill-conditioned elements (an inverse evaluated where the bin
is nearly flat) amplify round-off differently in every implementation, by factors seen up to
14 between nflows and fastgen in float32:

* typical elements (given ``samples >= 100`` independent ones): the 90th percentile of
  the error within ``factor`` times the same-precision reference's, so a systematic loss of
  precision fails;
* every element: within ``worst_factor`` times the reference's worst error plus
  ``worst_atol``, so a wrong formula, a wrong bin or an unwritten element fails. The
  absolute term covers samples of one or a few elements, whose worst errors are single
  draws from that heavy-tailed distribution.
"""

import torch


def scaled_errors(actual: torch.Tensor, ref64: torch.Tensor) -> torch.Tensor:
    """Elementwise ``|actual - ref64| / (1 + |ref64|)``; NaN where exactly one is NaN."""
    assert actual.shape == ref64.shape, (actual.shape, ref64.shape)
    errors = (actual.double() - ref64).abs() / (1 + ref64.abs())
    errors = errors.masked_fill(actual.isnan() & ref64.isnan(), 0.0)
    return errors.masked_fill(actual.isnan() != ref64.isnan(), float("nan")).flatten()


def _stats(errors: torch.Tensor) -> tuple[float, float]:
    if errors.numel() == 0:
        return 0.0, 0.0
    if errors.isnan().any():
        return float("nan"), float("nan")
    return torch.quantile(errors, 0.9).item(), errors.max().item()


def assert_close_to_reference(
    actual, ref64, ref_same_precision, name, samples=None, factor=3.0, atol=1e-6,
    worst_factor=50.0, worst_atol=1e-3,
):  # fmt: skip
    """Judge ``actual`` against ``ref64`` by the error of ``ref_same_precision``.
    ``samples``: independent problems behind ``actual`` (default: its number of elements;
    a row of K parameter gradients is one problem)."""
    errors = scaled_errors(actual, ref64)
    typical, worst = _stats(errors)
    ref_typical, ref_worst = _stats(scaled_errors(ref_same_precision, ref64))
    assert typical == typical and worst == worst, f"{name}: NaN where the reference has none"
    samples = errors.numel() if samples is None else samples
    assert samples < 100 or typical <= factor * ref_typical + atol, (
        f"{name}: 90th percentile error {typical:.3g} > {factor} x reference's "
        f"{ref_typical:.3g} + {atol:g}"
    )
    assert worst <= worst_factor * ref_worst + worst_atol, (
        f"{name}: worst error {worst:.3g} > {worst_factor} x reference's {ref_worst:.3g} "
        f"+ {worst_atol:g}"
    )
