"""Memory traffic of the PyTorch reference implementations next to the fused kernels' minimum.

``TrafficCounter`` is a ``TorchDispatchMode`` that adds up, for every aten op run inside it,
the bytes of its tensor arguments (read) and of its tensor results (written); views move
nothing and are not counted. It is an upper bound of what each op touches (an op may read
only part of an argument) and ignores caches: the quantity to compare is the ratio to a
fused kernel that reads each input once and writes each output once.

``python -m profiling.traffic [--elements N] [--num-bins K] [--bandwidth TB/s]
[--flops TFLOP/s]`` prints, per hot path and direction, the bytes per element of each
reference (fastgen's and the peer libraries' when installed), the fused kernel's minimum, the
ratio, the FLOPs per element and the predicted GPU floor time of the kernel, the larger of
bytes over bandwidth and FLOPs over rate (defaults 3.0 TB/s, an H100's measured copy rate,
and 50 TFLOP/s, its fp32 rate). Hot paths: the RQ spline, WGAN-GP's interpolation and
penalty, a MADE masked linear layer, one Sinkhorn softmin pass (an element is a cost entry).
"""

from __future__ import annotations

import argparse
import itertools

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


def _nbytes(tree) -> int:
    leaves, _ = tree_flatten(tree)
    return sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))


class TrafficCounter(TorchDispatchMode):
    """Counts ops, bytes read and bytes written by the aten ops run under it."""

    def __init__(self):
        super().__init__()
        self.ops = self.read = self.written = 0

    def bytes(self, per: torch.Tensor) -> float:
        """Bytes read and written per element of ``per``."""
        return (self.read + self.written) / per.numel()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not func.is_view:
            self.ops += 1
            self.read += _nbytes((args, kwargs))
            self.written += _nbytes(out)
        return out


def spline_rows(elements: int, num_bins: int):
    """(provider, direction, bytes per element moved, fused minimum per element) rows for the
    unconstrained RQ spline with linear tails, float32."""
    import fastgen

    providers = {
        "fastgen-torch": lambda *a, **k: fastgen.unconstrained_rational_quadratic_spline(
            *a, **k, backend="torch"
        )
    }
    try:
        from nflows.transforms.splines.rational_quadratic import (
            unconstrained_rational_quadratic_spline,
        )

        providers["nflows"] = unconstrained_rational_quadratic_spline
    except ImportError:
        pass
    value = 4  # float32
    # Fused kernel: forward reads x and 3K - 1 parameters, writes outputs and logabsdet;
    # backward reads the same plus 2 upstream gradients and writes 3K gradients.
    forward_min = (3 * num_bins + 2) * value
    minimum = {
        "forward": forward_min,
        "inverse": forward_min,
        "forward+backward": forward_min + (6 * num_bins + 2) * value,
    }
    generator = torch.Generator().manual_seed(0)
    shapes = [(elements,), (elements, num_bins), (elements, num_bins), (elements, num_bins - 1)]
    tensors = [torch.randn(shape, generator=generator) for shape in shapes]
    tensors[0] *= 1.5
    for name, spline in providers.items():
        for direction, fused in minimum.items():
            grad = direction == "forward+backward"
            leaves = [t.clone().requires_grad_(grad) for t in tensors]
            with TrafficCounter() as counter:
                outputs, logabsdet = spline(*leaves, inverse=direction == "inverse", tail_bound=3.0)
                if grad:
                    torch.autograd.grad(outputs.sum() + logabsdet.sum(), leaves)
            flops = (22 + (36 if grad else 0)) * num_bins + (200 if grad else 50)
            yield "rq spline", name, direction, counter.ops, counter.bytes(leaves[0]), fused, flops


def gradient_penalty_rows(elements: int, features: int = 64):
    """The same rows for WGAN-GP's element-wise work on ``(elements / features, features)``
    float32 samples: the interpolation (forward; the critic step needs no gradient of the
    samples) and the penalty on the critic's gradients (forward and backward)."""
    from fastgen import gan

    def hand_written_interpolate(real, fake, eps):
        return eps * real + (1 - eps) * fake

    def hand_written_penalty(grads):
        return 10.0 * ((grads.norm(2, dim=1) - 1) ** 2).mean()

    providers = {
        "fastgen-torch": (
            lambda real, fake, eps: gan.interpolate(real, fake, eps, backend="torch"),
            lambda grads: gan.penalty_from_gradients(grads, weight=10.0, backend="torch"),
        ),
        "hand-written": (hand_written_interpolate, hand_written_penalty),
    }
    value = 4  # float32
    generator = torch.Generator().manual_seed(0)
    batch = max(1, elements // features)
    real, fake, grads = (torch.randn(batch, features, generator=generator) for _ in range(3))
    eps = torch.rand(batch, 1, generator=generator)
    for name, (interpolate, penalty) in providers.items():
        with TrafficCounter() as counter:
            interpolate(real, fake, eps)
        moved = counter.bytes(real)
        yield "wgan-gp interpolation", name, "forward", counter.ops, moved, 3 * value, 3
        leaf = grads.clone().requires_grad_()
        with TrafficCounter() as counter:
            torch.autograd.grad(penalty(leaf), leaf)
        moved = counter.bytes(leaf)
        yield "wgan-gp penalty", name, "forward+backward", counter.ops, moved, 3 * value, 5


def masked_linear_rows(elements: int, features: int = 256):
    """A MADE hidden layer, ``features -> features`` with ReLU on ``elements / features`` rows,
    float32, per output element: fastgen's reference (``F.linear(x, W * M, b)``, the ops nflows
    and zuko run too) against the fused kernel, which reads ``x``, ``W`` and ``b`` once and
    writes ``y`` (the mask comes from the degrees: no bytes)."""
    from fastgen.reference.masked_linear import mask_from_degrees, masked_linear

    batch = max(1, elements // features)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, features, generator=generator)
    weight = torch.randn(features, features, generator=generator).requires_grad_()
    bias = torch.zeros(features, requires_grad=True)
    degrees = torch.arange(features) % 8 + 1
    mask = mask_from_degrees(degrees.int(), degrees.sort().values.int(), False, torch.float32)
    outputs = batch * features
    forward = (x.numel() + weight.numel() + features + outputs) * 4 / outputs
    # backward: reads x, W, y and the upstream gradient, writes the gradients of x, W and b
    backward = (2 * x.numel() + 2 * weight.numel() + 2 * outputs + features) * 4 / outputs
    for direction, fused in (("forward", forward), ("forward+backward", forward + backward)):
        with TrafficCounter() as counter:
            y = masked_linear(x, weight, bias, mask, "relu")
            if direction == "forward+backward":
                torch.autograd.grad(y.sum(), (weight, bias))
        flops = 2 * features * (3 if direction == "forward+backward" else 1)
        yield (
            "masked linear",
            "fastgen-torch",
            direction,
            counter.ops,
            counter.bytes(y),
            (fused),
            flops,
        )


def softmin_rows(elements: int, dim: int = 3):
    """One Sinkhorn softmin pass between ``N = M = sqrt(elements)`` points in ``dim``
    dimensions, per cost entry: fastgen's blocked reference against the streaming kernel,
    which reads the points and the potential once and writes one potential."""
    from fastgen.reference.sinkhorn import softmin

    points = max(2, int(elements**0.5))
    generator = torch.Generator().manual_seed(0)
    x, y = (torch.randn(1, points, dim, generator=generator) for _ in range(2))
    h = torch.zeros(1, points)
    with TrafficCounter() as counter:
        softmin(x, y, h, 0.01, 2)
    entries = points * points
    fused = (2 * points * dim + 2 * points) * 4 / entries
    moved = (counter.read + counter.written) / entries
    yield "sinkhorn softmin", "fastgen-torch", "forward", counter.ops, moved, fused, 2 * dim + 8


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m profiling.traffic", description=__doc__)
    parser.add_argument("--elements", type=int, default=2**16)
    parser.add_argument("--num-bins", type=int, default=8)
    parser.add_argument("--bandwidth", type=float, default=3.0, help="TB/s (default 3.0)")
    parser.add_argument("--flops", type=float, default=50.0, help="TFLOP/s (default 50)")
    args = parser.parse_args(argv)
    header = (
        "hot path",
        "reference",
        "direction",
        "ops",
        "B/elem",
        "fused B/elem",
        "ratio",
        "FLOP/elem",
        f"fused floor at 2^20 elem ({args.bandwidth:g} TB/s, {args.flops:g} TFLOP/s)",
    )
    print(" | ".join(header))
    rows = itertools.chain(
        spline_rows(args.elements, args.num_bins),
        gradient_penalty_rows(args.elements),
        masked_linear_rows(args.elements),
        softmin_rows(args.elements),
    )
    for path, name, direction, ops, moved, fused, flops in rows:
        seconds = max(fused / (args.bandwidth * 1e12), flops / (args.flops * 1e12)) * 2**20
        print(
            f"{path} | {name} | {direction} | {ops} | {moved:.3g} | {fused:.3g} | "
            f"{moved / fused:.1f}x | {flops} | {seconds * 1e6:.1f} us"
        )


if __name__ == "__main__":
    main()
