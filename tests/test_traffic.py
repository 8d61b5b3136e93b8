"""The memory-traffic counter of profiling/traffic.py on a hand-checked op sequence."""

import torch

from profiling.traffic import (
    TrafficCounter,
    gradient_penalty_rows,
    masked_linear_rows,
    softmin_rows,
    spline_rows,
)


def test_counts_are_exact_on_a_hand_checked_sequence():
    a = torch.ones(10, 4)  # 160 bytes
    b = torch.ones(4, dtype=torch.float64)  # 32 bytes
    with TrafficCounter() as counter:
        c = a * 2  # reads 160, writes 160
        d = c[:, 1]  # a view: nothing
        e = d.sum()  # reads 40 (the view's elements), writes 4
        f = b.float() + e  # to: reads 32, writes 16; add: reads 16 + 4, writes 16
        a.add_(1)  # reads 160, writes 160
    assert counter.ops == 5
    assert counter.read == 160 + 40 + 32 + 20 + 160
    assert counter.written == 160 + 4 + 16 + 16 + 160
    assert f.shape == (4,)


def test_spline_rows_cover_every_direction():
    rows = list(spline_rows(elements=64, num_bins=4))
    directions = {(name, direction) for _, name, direction, *_ in rows}
    assert {("fastgen-torch", d) for d in ("forward", "inverse", "forward+backward")} <= directions
    for *_, ops, moved, fused, flops in rows:
        assert ops > 0 and moved > fused > 0 and flops > 0


def test_gradient_penalty_rows():
    """torch.lerp is one pass: reads real, fake and the per-sample eps, writes x_hat; the
    hand-written interpolation moves 7 values per element in 4 ops."""
    batch, features = 8, 64
    rows = {
        (path, name): (ops, moved, fused)
        for path, name, _, ops, moved, fused, _ in gradient_penalty_rows(batch * features, features)
    }
    eps_bytes = 4 / features  # one float32 per sample, per element
    assert rows["wgan-gp interpolation", "fastgen-torch"] == (1, 4 * 3 + eps_bytes, 12)
    ops, moved, _ = rows["wgan-gp interpolation", "hand-written"]
    # eps * real, 1 - eps (reads and writes a per-sample value), (1 - eps) * fake, +
    assert ops == 4 and moved == 4 * 7 + 4 * eps_bytes
    ops, moved, fused = rows["wgan-gp penalty", "fastgen-torch"]
    assert ops > 1 and moved > fused == 12


def test_masked_linear_and_softmin_rows():
    """F.linear(x, W * M, b) then ReLU: W * M reads W and M and writes W * M (3 weight-sized
    passes), linear reads x, W * M and b and writes y, ReLU reads and writes y."""
    batch, features = 4, 16
    (forward, _) = list(masked_linear_rows(batch * features, features))
    _, _, _, ops, moved, fused, _ = forward
    x, w, y, b = batch * features, features * features, batch * features, features
    assert ops == 3
    assert moved == (3 * w + x + w + b + y + 2 * y) * 4 / y
    assert fused == (x + w + b + y) * 4 / y
    (row,) = softmin_rows(elements=100)
    assert row[3] > 0 and row[4] > row[5] > 0
