"""The comparison helper itself: it passes the same-precision reference and fails a wrong,
a systematically less precise, a NaN-poisoned or a wrongly non-finite output."""

import pytest
import torch
from tolerances import assert_matches_reference


@pytest.fixture
def problem(generator):
    ref64 = torch.randn(1000, generator=generator, dtype=torch.float64).exp()
    return ref64, ref64.float()


def test_the_reference_itself_passes(problem):
    ref64, ref32 = problem
    assert_matches_reference(ref32, ref64, ref32, name="ref32")
    assert_matches_reference([ref32, ref32], [ref64, ref64], [ref32, ref32], name=["a", "b"])


def test_one_wrong_element_fails(problem):
    ref64, ref32 = problem
    out = ref32.clone()
    out[123] += 0.01 * (1 + out[123].abs())
    with pytest.raises(AssertionError, match=r"worst error .*at \(123,\)"):
        assert_matches_reference(out, ref64, ref32, name="one wrong")


def test_a_systematic_loss_of_precision_fails(problem):
    """Every element 64 float32 ulps off: within the worst-case bound, not the typical one."""
    ref64, ref32 = problem
    out = (ref64 * (1 + 64 * torch.finfo(torch.float32).eps)).float()
    with pytest.raises(AssertionError, match="90th percentile"):
        assert_matches_reference(out, ref64, ref32, name="imprecise")


@pytest.mark.parametrize(
    "where, value, message",
    [
        (5, float("nan"), "NaN where the reference is not"),
        (5, float("inf"), "not finite where the reference is finite"),
    ],
)
def test_non_finite_where_the_reference_is_finite_fails(problem, where, value, message):
    ref64, ref32 = problem
    out = ref32.clone()
    out[where] = value
    with pytest.raises(AssertionError, match=message):
        assert_matches_reference(out, ref64, ref32, name="poisoned")


def test_non_finite_references_are_matched_exactly(problem):
    ref64, ref32 = problem
    ref64, ref32 = ref64.clone(), ref32.clone()
    ref64[:2] = ref32[:2] = torch.tensor([float("nan"), -float("inf")])
    assert_matches_reference(ref32, ref64, ref32, name="same non-finite values")
    for value, message in ((1.0, "not NaN where"), (float("inf"), "not the reference's inf")):
        out = ref32.clone()
        out[0 if value == 1.0 else 1] = value
        with pytest.raises(AssertionError, match=message):
            assert_matches_reference(out, ref64, ref32, name="wrong non-finite")


def test_dtype_and_shape_must_match(problem):
    ref64, ref32 = problem
    with pytest.raises(AssertionError, match="dtype torch.float64, the reference's"):
        assert_matches_reference(ref64, ref64, ref32, name="dtype")
    with pytest.raises(AssertionError, match="shapes"):
        assert_matches_reference(ref32[1:], ref64, ref32, name="shape")
