"""``profiling.aot_keys.launch_key``: the specialisation key of a launch is what Triton's JIT
specialises on (its own ``native_specialize_impl``): pointer dtypes and 16-byte alignment,
integers equal to 1 made constants, integers divisible by 16, constexpr values as given,
launch options apart."""

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")

import triton.language as tl  # noqa: E402

from profiling.aot_keys import launch_key  # noqa: E402


def _kernel(x_ptr, out_ptr, n, stride, eps, MODE: tl.constexpr, BLOCK: tl.constexpr):
    pass


def test_launch_key():
    x = torch.zeros(40)
    key = launch_key(
        _kernel, (x, x[1:]), dict(n=33, stride=1, eps=0.5, MODE="a", BLOCK=64, num_warps=8)
    )
    assert key["kernel"].endswith(":_kernel")
    assert key["signature"] == {
        "x_ptr": "*fp32",
        "out_ptr": "*fp32",
        "n": "i32",
        "stride": "constexpr",
        "eps": "fp32",
        "MODE": "constexpr",
        "BLOCK": "constexpr",
    }
    assert key["constexprs"] == {"stride": 1, "MODE": "a", "BLOCK": 64}
    assert key["divisible"] == ["x_ptr"]  # x[1:] is 4 bytes past a 16-byte boundary
    assert key["num_warps"] == 8


def test_divisibility_of_integers_and_default_warps():
    x = torch.zeros(8, dtype=torch.bfloat16)
    key = launch_key(_kernel, (x, x, 32, 48, 1.0, tl.constexpr(2), 16), {})
    assert key["signature"]["x_ptr"] == "*bf16"
    assert key["divisible"] == ["x_ptr", "out_ptr", "n", "stride"]
    assert key["constexprs"] == {"MODE": 2, "BLOCK": 16}
    assert key["num_warps"] == 4
