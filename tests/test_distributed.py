"""fastgen under torch.distributed, on 2 CPU processes with the gloo backend.

Training: a conditional neural spline flow (MADE conditioners) and a conditional WGAN-GP
critic with masked layers train under ``DistributedDataParallel`` for a few float64 SGD
steps; the parameters must be identical on both ranks and equal those of one process
trained on the concatenated batch (DDP averages the ranks' gradients of per-rank means: the
gradient of the mean over the whole batch, up to the order of the additions).

Metrics: each rank holds an uneven shard (37 and 64 real rows; 0 and 70 generated rows);
the reduced Fréchet distance and the KID and Sinkhorn values of the gathered samples must
equal one process's values on all the data.

Each test spawns 2 fresh processes (rendezvous through a file store in ``tmp_path``) and
waits at most ``TIMEOUT_S``; a failing rank's traceback is re-raised here.
"""

import contextlib
import inspect
import time
from datetime import timedelta

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fid_oracle import pytorch_fid_formula
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fastgen.distributed import gather_all_tensors, gather_samples
from fastgen.flows import NeuralSplineFlow
from fastgen.gan import wgan_gp_critic_loss
from fastgen.metrics import (
    FeatureStatistics,
    FrechetDistance,
    frechet_distance,
    kernel_inception_distance,
    sinkhorn_divergence,
)
from fastgen.nn import MADE

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="needs torch.distributed with the gloo backend",
)

WORLD_SIZE = 2
TIMEOUT_S = 120
STEPS = 3
BATCH = 8  # rows per rank and step
LEARNING_RATE = 0.05


def _worker(rank, store, out_dir, scenario, kwargs):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=timedelta(seconds=TIMEOUT_S / 2),
    )
    try:
        torch.save(scenario(rank, **kwargs), f"{out_dir}/{rank}.pt")
        # Both ranks finish talking before gloo's threads are torn down (without this
        # barrier, exiting processes abort now and then).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_distributed(tmp_path, scenario, **kwargs) -> list:
    """``scenario(rank, **kwargs)`` on each of 2 spawned ranks; their results by rank."""
    context = mp.start_processes(
        _worker,
        nprocs=WORLD_SIZE,
        join=False,
        start_method="spawn",
        args=(str(tmp_path / "store"), str(tmp_path), scenario, kwargs),
    )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not context.join(timeout=1):  # re-raises a rank's exception
            if time.monotonic() > deadline:
                pytest.fail(f"{scenario.__name__} did not finish within {TIMEOUT_S} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
                process.join()
    return [torch.load(tmp_path / f"{rank}.pt") for rank in range(WORLD_SIZE)]


def _no_forward_buffer_sync() -> dict:
    """DDP's option that skips the buffer broadcast before each forward (renamed in 2.13)."""
    parameters = inspect.signature(DistributedDataParallel).parameters
    name = "forward_sync_buffers" if "forward_sync_buffers" in parameters else "broadcast_buffers"
    return {name: False}


# ---- models and data (the same in the spawned ranks and in this process) ----------------


class LogProb(nn.Module):
    """DDP reduces gradients only of what runs through the wrapped module's ``forward``."""

    def __init__(self, flow):
        super().__init__()
        self.flow = flow

    def forward(self, inputs, context):
        return self.flow.log_prob(inputs, context)


class Critic(nn.Module):
    """A conditional critic with masked layers (their masks are buffers)."""

    def __init__(self):
        super().__init__()
        self.made = MADE(4, 16, context_features=2, num_blocks=1)
        self.head = nn.Linear(4, 1)

    def forward(self, inputs, context):
        return self.head(self.made(inputs, context))


def _flow():
    torch.manual_seed(0)
    flow = NeuralSplineFlow(
        3, context_features=2, num_layers=2, hidden_features=16, num_blocks=1, num_bins=4
    )
    return LogProb(flow).double()


def _critic():
    torch.manual_seed(1)
    return Critic().double()


def _batch(step, *shapes):
    """Step ``step``'s full batch: one float64 tensor ``(2 * BATCH, n)`` per ``n``."""
    generator = torch.Generator().manual_seed(100 + step)
    return [
        torch.randn(WORLD_SIZE * BATCH, n, generator=generator, dtype=torch.float64) for n in shapes
    ]


def _flow_loss(model, step, rows):
    inputs, context = (t[rows] for t in _batch(step, 3, 2))
    return -model(inputs, context).mean()


def _critic_loss(model, step, rows):
    real, fake, context, eps = (t[rows] for t in _batch(step, 4, 4, 2, 1))
    return wgan_gp_critic_loss(model, real, torch.tanh(fake), context=context, eps=eps[:, 0])[0]


def _train(model, loss_fn, rows):
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    for step in range(STEPS):
        optimizer.zero_grad()
        loss_fn(model, step, rows).backward()
        optimizer.step()


def _params(model) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# ---- spawned scenarios --------------------------------------------------------------------


def train_ddp(rank, model_fn, loss_fn, ddp_options):
    """``STEPS`` DDP steps on this rank's half of each batch; the parameters, or the error."""
    model = DistributedDataParallel(model_fn(), **ddp_options)
    rows = slice(rank * BATCH, (rank + 1) * BATCH)
    try:
        _train(model, loss_fn, rows)
    except RuntimeError as error:
        return {"error": str(error)}
    return _params(model.module)


def train_critic_with_pre_fix_ddp(rank):
    """The critic trained with DDP's default buffer broadcast, then without it, with DDP as
    PyTorch 2.6 - 2.12 runs it: their per-forward broadcast copied into the buffers in place
    and bumped their version counters (pytorch#175024); later versions wrap the copy in
    ``_unsafe_preserve_version_counter`` (pytorch#175851), made a no-op here."""
    torch.autograd._unsafe_preserve_version_counter = contextlib.nullcontext
    return [
        train_ddp(rank, _critic, _critic_loss, options)
        for options in ({}, _no_forward_buffer_sync())
    ]


def _assert_ddp_matches_one_process(results, model_fn, loss_fn):
    reference = model_fn()
    initial = _params(reference)
    _train(reference, loss_fn, slice(None))
    expected = _params(reference)
    for name, value in expected.items():
        assert torch.equal(results[0][name], results[1][name]), name
        torch.testing.assert_close(results[0][name], value, rtol=1e-12, atol=1e-13, msg=name)
    moved = max((expected[n] - initial[n]).abs().max().item() for n in expected)
    assert moved > 1e-3, f"training barely moved the parameters ({moved})"


def test_ddp_conditional_spline_flow_matches_one_process(tmp_path):
    results = run_distributed(
        tmp_path, train_ddp, model_fn=_flow, loss_fn=_flow_loss, ddp_options={}
    )
    _assert_ddp_matches_one_process(results, _flow, _flow_loss)


def test_ddp_wgan_gp_critic_matches_one_process(tmp_path):
    """Three critic forwards (real, fake, interpolates) before one backward, through the
    penalty's double backward, with the per-forward buffer broadcast off (README)."""
    results = run_distributed(
        tmp_path,
        train_ddp,
        model_fn=_critic,
        loss_fn=_critic_loss,
        ddp_options=_no_forward_buffer_sync(),
    )
    _assert_ddp_matches_one_process(results, _critic, _critic_loss)


def test_ddp_buffer_broadcast_breaks_critic_step_before_the_pytorch_fix(tmp_path):
    """Why the README turns the buffer broadcast off: with DDP as PyTorch 2.6 - 2.12 runs it,
    the broadcast before the second critic forward modifies the masks the first forward saved
    for backward; without the broadcast the same step trains as one process does."""
    broken, fixed = zip(*run_distributed(tmp_path, train_critic_with_pre_fix_ddp), strict=True)
    for result in broken:
        assert "modified by an inplace operation" in result["error"]
    _assert_ddp_matches_one_process(fixed, _critic, _critic_loss)


# ---- metrics --------------------------------------------------------------------------------

REAL_SHARDS = (37, 64)
FAKE_SHARDS = (0, 70)
FEATURES = 5
KID = dict(subsets=20, subset_size=30)
SINKHORN = dict(blur=0.3, scaling=0.9)


def _features():
    generator = torch.Generator().manual_seed(7)
    mix = torch.randn(FEATURES, FEATURES, generator=generator, dtype=torch.float64)
    real = torch.randn(sum(REAL_SHARDS), FEATURES, generator=generator, dtype=torch.float64)
    fake = torch.randn(sum(FAKE_SHARDS), FEATURES, generator=generator, dtype=torch.float64)
    return real @ mix, fake @ mix.T + 0.5


def _shard(samples, sizes, rank):
    start = sum(sizes[:rank])
    return samples[start : start + sizes[rank]]


def evaluate_sharded(rank):
    real, fake = _features()
    real, fake = _shard(real, REAL_SHARDS, rank), _shard(fake, FAKE_SHARDS, rank)
    fid = FrechetDistance(FEATURES)
    for batch in real.split(20):  # several updates per rank
        fid.update(real=batch)
    if len(fake):
        fid.update(fake=fake)
    stats = FeatureStatistics(FEATURES).update(real).synced()
    uneven = gather_all_tensors(torch.full((rank + 1, 3 - 2 * rank), float(rank)))
    all_real, all_fake = gather_samples(real), gather_samples(fake)
    return {
        "fid": fid.compute(),
        "fid_again": fid.compute(),  # the local statistics were not replaced by the sums
        "count": stats.num_samples,
        "mean": stats.mean,
        "covariance": stats.covariance,
        "uneven": uneven,
        "kid": kernel_inception_distance(all_real, all_fake, **KID),
        "sinkhorn": sinkhorn_divergence(all_real, all_fake, **SINKHORN).item(),
    }


def test_metrics_reduced_across_ranks_equal_one_process(tmp_path):
    results = run_distributed(tmp_path, evaluate_sharded)
    real, fake = _features()
    one = FrechetDistance(FEATURES)
    one.update(real=real, fake=fake)
    expected = {
        "fid": one.compute(),
        "kid": kernel_inception_distance(real, fake, **KID),
        "sinkhorn": sinkhorn_divergence(real, fake, **SINKHORN).item(),
    }
    # The independent oracle: pytorch-fid's formula on NumPy's two-pass covariances.
    real64, fake64 = real.numpy(), fake.numpy()
    oracle = pytorch_fid_formula(
        real64.mean(0), np.cov(real64, rowvar=False), fake64.mean(0), np.cov(fake64, rowvar=False)
    )
    assert expected["fid"] == pytest.approx(oracle, rel=1e-10)
    assert expected["fid"] == pytest.approx(frechet_distance(real, fake), rel=1e-12)
    for result in results:
        for name in ("fid", "kid", "sinkhorn"):
            assert result[name] == pytest.approx(expected[name], rel=1e-12), name
        assert result["fid_again"] == result["fid"]
        assert result["count"] == len(real)
        torch.testing.assert_close(result["mean"], real.mean(0), rtol=1e-13, atol=1e-14)
        torch.testing.assert_close(result["covariance"], torch.cov(real.mT), rtol=1e-12, atol=1e-13)
        assert [tuple(t.shape) for t in result["uneven"]] == [(1, 3), (2, 1)]
        assert [t.unique().tolist() for t in result["uneven"]] == [[0.0], [1.0]]
    assert results[0]["fid"] == results[1]["fid"]
    assert results[0]["kid"] == results[1]["kid"]


def test_one_process_collectives_return_local_data():
    samples = torch.randn(6, 2)
    assert gather_samples(samples) is samples
    assert gather_all_tensors(samples) == [samples]
    stats = FeatureStatistics(2).update(samples)
    synced = stats.synced()
    assert synced is not stats and synced.num_samples == 6
    torch.testing.assert_close(synced.covariance, stats.covariance, rtol=0, atol=0)
    with pytest.raises(TypeError, match="samples must have a floating-point dtype"):
        gather_samples(torch.arange(3))
    with pytest.raises(TypeError, match="sync_on_compute must be a bool"):
        FrechetDistance(2, sync_on_compute=1)
