"""The relative-oracle comparison shared by every reference / kernel test (DESIGN.md, "Testing
method"): ``max|out - ref64| <= c * max|ref32 - ref64| + atol``.

An implementation in low precision is judged against the float64 reference by comparison
with a reference run in the same precision: its error may be a small multiple of that
reference's own round-off, never an absolute number picked to pass. Errors are elementwise
and relative to ``1 + |ref64|``, so that large values (log-dets of narrow bins, gradients of
steep bins) and values near zero are held to the same standard.

Two statistics, because a few ill-conditioned elements (an inverse evaluated where the bin
is nearly flat) amplify round-off differently in every implementation, by factors seen up to
14 between nflows and fastgen in float32:

* every element: within ``c`` times the reference's worst error plus ``atol``, so a wrong
  formula, a wrong bin or an unwritten element fails. The absolute term covers samples of
  one or a few elements, whose worst errors are single draws from that heavy-tailed
  distribution;
* typical elements (given ``samples >= 100`` independent ones): the 90th percentile of
  the error within ``typical_c`` times the same-precision reference's plus
  ``typical_atol``, so a systematic loss of precision fails.

Non-finite values are compared exactly: NaN where ``ref64`` is NaN, the same infinity where
it is infinite, and finite numbers everywhere else.
"""

from collections.abc import Sequence

import torch


def scaled_errors(actual: torch.Tensor, ref64: torch.Tensor) -> torch.Tensor:
    """Elementwise ``|actual - ref64| / (1 + |ref64|)``, flattened; NaN where exactly one is
    NaN."""
    assert actual.shape == ref64.shape, (actual.shape, ref64.shape)
    errors = (actual.double() - ref64).abs() / (1 + ref64.abs())
    errors = errors.masked_fill(actual.isnan() & ref64.isnan(), 0.0)
    return errors.masked_fill(actual.isnan() != ref64.isnan(), float("nan")).flatten()


def _stats(errors: torch.Tensor) -> tuple[float, float]:
    if errors.numel() == 0:
        return 0.0, 0.0
    return torch.quantile(errors, 0.9).item(), errors.max().item()


def _first(mask: torch.Tensor) -> str:
    """``count`` and the index of the first True element of ``mask``, for a message."""
    index = tuple(int(i) for i in mask.nonzero()[0])
    return f"{int(mask.sum())} element(s), first at {index}"


def _check_one(out, ref64, ref32, name, c, atol, typical_c, typical_atol, samples):
    out, ref64, ref32 = (t.detach().cpu() for t in (out, ref64, ref32))
    assert out.shape == ref64.shape == ref32.shape, (
        f"{name}: shapes {tuple(out.shape)}, ref64 {tuple(ref64.shape)}, ref32 {tuple(ref32.shape)}"
    )
    assert ref64.dtype == torch.float64, f"{name}: ref64 has dtype {ref64.dtype}"
    assert out.dtype == ref32.dtype, f"{name}: dtype {out.dtype}, the reference's {ref32.dtype}"
    finite = ref64.isfinite()
    for wrong, what in (
        (out.isnan() & ~ref64.isnan(), "NaN where the reference is not"),
        (~out.isnan() & ref64.isnan(), "not NaN where the reference is NaN"),
        (~out.isfinite() & finite, "not finite where the reference is finite"),
        (ref64.isinf() & (out != ref64), "not the reference's infinity"),
        (~ref32.isfinite() & finite, "same-precision reference not finite (no bound)"),
    ):
        assert not wrong.any(), f"{name}: {what}: {_first(wrong)}"
    # non-finite elements are settled above: the statistics are over the finite ones
    errors = scaled_errors(out, ref64)[finite.flatten()]
    typical, worst = _stats(errors)
    ref_typical, ref_worst = _stats(scaled_errors(ref32, ref64)[finite.flatten()])
    samples = errors.numel() if samples is None else samples
    if worst > c * ref_worst + atol:
        index = tuple(int(i) for i in finite.nonzero()[errors.argmax()])
        raise AssertionError(
            f"{name}: worst error {worst:.3g} (at {index}: {out[index].item()!r} vs "
            f"{ref64[index].item()!r}) > {c:g} x reference's {ref_worst:.3g} + {atol:g}"
        )
    assert samples < 100 or typical <= typical_c * ref_typical + typical_atol, (
        f"{name}: 90th percentile error {typical:.3g} > {typical_c:g} x reference's "
        f"{ref_typical:.3g} + {typical_atol:g}"
    )


def assert_matches_reference(
    out,
    ref64,
    ref32,
    *,
    name: str | Sequence[str],
    c: float = 50.0,
    atol: float = 1e-3,
    typical_c: float = 3.0,
    typical_atol: float = 1e-6,
    samples: int | None = None,
) -> None:
    """Assert ``out`` matches the float64 reference ``ref64`` as closely as ``ref32`` does.

    Args:
        out: the implementation under test: a tensor, or a sequence of tensors
            (outputs, then gradients).
        ref64: the float64 reference, same shapes.
        ref32: the reference run in ``out``'s precision (same shapes and dtype as ``out``).
        name: what is compared, for the message (a sequence: one name per tensor).
        c, atol: the worst element's error bound, ``c * (ref32's worst) + atol``.
        typical_c, typical_atol: the 90th percentile's bound, checked when ``samples >= 100``.
        samples: independent problems behind each tensor (default: its number of elements;
            a row of K parameter gradients is one problem).
    """
    if isinstance(out, (list, tuple)):
        assert not isinstance(name, str), "a sequence of outputs needs one name per output"
        for args in zip(out, ref64, ref32, name, strict=True):
            _check_one(*args, c, atol, typical_c, typical_atol, samples)
    else:
        _check_one(out, ref64, ref32, name, c, atol, typical_c, typical_atol, samples)
