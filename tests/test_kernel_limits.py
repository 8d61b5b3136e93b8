"""CUDA's launch limits, int64 offsets and the TF32 policy, proven without a GPU where that is
possible: the launchers' grids as pure functions at sizes past the limits (grid axes 1 and 2
stop at 65,535 blocks), the kernels' program-index decompositions under the interpreter at
small sizes (``profiling.gpu_check``'s limit cases with tiny shapes); the real limits (more
than 2^31 elements, grids past 65,535) run on a GPU in tests/test_gpu_scale.py."""

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")

from fastgen.kernels import gradient_penalty, mmd, newton_schulz, sinkhorn  # noqa: E402
from fastgen.kernels.utils import MAX_GRID, checked_grid, input_precision  # noqa: E402

from profiling.gpu_check import LIMITS, run_limit  # noqa: E402

HUGE = (1, 7, 65_535, 65_536, 70_001, 10**6)


def assert_launchable(grid):
    assert 1 <= len(grid) <= 3
    for axis, (size, limit) in enumerate(zip(grid, MAX_GRID, strict=False)):
        assert 1 <= size <= limit, f"axis {axis} of {grid}"


def test_checked_grid_names_the_axis():
    assert checked_grid(2**31 - 1, 65_535, 65_535) == (2**31 - 1, 65_535, 65_535)
    with pytest.raises(ValueError, match="grid axis 1 has 65536 blocks, CUDA allows at most 65535"):
        checked_grid(1, 65_536)
    with pytest.raises(ValueError, match="grid axis 0"):
        checked_grid(2**31)


@pytest.mark.parametrize("batch", HUGE)
@pytest.mark.parametrize("dim, backward", [(3, False), (3, True), (1024, False), (1024, True)])
def test_softmin_grid(batch, dim, backward):
    blocks = sinkhorn._settings(dim)
    grid = sinkhorn.softmin_grid(batch, 1000, 999, 4, dim, blocks, backward)
    assert_launchable(grid)
    row_blocks = -(-1000 // blocks["BLOCK_M"])
    splits = -(-dim // blocks["BLOCK_D"]) if backward else 1
    assert grid == (batch * row_blocks, 4, splits)


@pytest.mark.parametrize("batch", HUGE)
@pytest.mark.parametrize("n", [1, 17, 2048, 10**5])
def test_gemm_grid(batch, n):
    block, _, _ = newton_schulz._settings(n)
    grid = newton_schulz.gemm_grid(batch, n, block)
    assert_launchable(grid)
    tiles = -(-n // block)
    assert grid == (batch * tiles, tiles)


@pytest.mark.parametrize("rows", HUGE)
@pytest.mark.parametrize("features", [1, 3, 2048, 65_537 * 2048, 3 * 10**9])
def test_penalty_grid(rows, features):
    row_block, block_f = gradient_penalty._settings(features)
    tiles = -(-rows // row_block) * -(-features // block_f)
    if tiles >= 2**31:  # petabytes of gradients: refused by name, not launched wrong
        with pytest.raises(ValueError, match="grid axis 0"):
            gradient_penalty._grid(rows, features)
        return
    grid, _, _ = gradient_penalty._grid(rows, features)
    assert_launchable(grid)
    assert grid == (tiles,)


@pytest.mark.parametrize("n_x", HUGE)
@pytest.mark.parametrize("n_y", HUGE)
def test_kernel_sum_grid(n_x, n_y):
    tiles, grid = mmd.kernel_sum_grid(n_x, n_y)
    assert_launchable(grid)
    assert tiles == (-(-n_x // mmd.BLOCK), -(-n_y // mmd.BLOCK))
    assert grid == (tiles[0] * tiles[1],)


@pytest.mark.parametrize("name", [limit.name for limit in LIMITS])
def test_limit_cases_at_small_sizes(name, device):
    """The program-index decompositions (batch with row blocks, tiles on one axis) and the
    int64 offset paths, run on small shapes: the GPU-scale cases below with tiny sizes."""
    if device != "cpu":
        pytest.skip("the small-size variant runs under the interpreter")
    result = run_limit(name, dry=True)
    assert result["status"] == "pass", result


class TestTf32Policy:
    """:func:`fastgen.kernels.utils.input_precision` reads PyTorch's old and new TF32 APIs
    without raising, whichever the user set."""

    @pytest.fixture(autouse=True)
    def restore(self):
        matmul = torch.backends.cuda.matmul
        saved = matmul.fp32_precision if hasattr(matmul, "fp32_precision") else None
        legacy = None if saved is not None else matmul.allow_tf32
        yield
        if saved is not None:
            matmul.fp32_precision = saved
        else:
            matmul.allow_tf32 = legacy

    def test_default_is_ieee(self):
        assert input_precision(torch.float32) == "ieee"

    def test_legacy_flag(self):
        torch.backends.cuda.matmul.allow_tf32 = True
        assert input_precision(torch.float32) == "tf32"
        assert input_precision(torch.bfloat16) == "ieee"
        torch.backends.cuda.matmul.allow_tf32 = False
        assert input_precision(torch.float32) == "ieee"

    def test_new_api_then_legacy_flag_do_not_raise(self):
        matmul = torch.backends.cuda.matmul
        if not hasattr(matmul, "fp32_precision"):
            pytest.skip("torch without the fp32_precision API")
        matmul.fp32_precision = "tf32"
        with pytest.raises(RuntimeError):  # what the kernels must never do
            _ = matmul.allow_tf32
        assert input_precision(torch.float32) == "tf32"
        matmul.fp32_precision = "ieee"
        assert input_precision(torch.float32) == "ieee"
        matmul.allow_tf32 = True
        assert input_precision(torch.float32) == "tf32"
