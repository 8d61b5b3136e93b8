"""``fastgen demo``: a short two-seed run through the command line (table, JSON, figures, the
test split read only after training, the GAN's checkpoint selection), the selection on its
own, and the command line's errors."""

import json
import math

import pytest
import torch

from fastgen import cli
from fastgen.demo import data, experiment, models, train

MODELS = ("flow", "gan", "vae", "baseline")
METRICS = (
    "sinkhorn",
    "wasserstein_1d",
    "ks",
    "frechet",
    "kid",
    "classifier_auc",
    "generated_samples_per_second",
    "training_samples_per_second",
    "nll",
)


def _finite(value) -> bool:
    return all(math.isfinite(v) for v in (value if isinstance(value, list) else [value]))


def test_short_run_over_two_seeds(tmp_path, monkeypatch, capsys):
    events = []
    fit, load_test = train.fit, data.load_test

    def spy_fit(trainer, steps, on_step=lambda stats: None):
        events.append(("fit", type(trainer).__name__))
        return fit(trainer, steps, on_step)

    def spy_load_test(seed, preprocessing):
        events.append(("test", seed))
        return load_test(seed, preprocessing)

    monkeypatch.setattr(train, "fit", spy_fit)
    monkeypatch.setattr(data, "load_test", spy_load_test)
    threads = torch.get_num_threads()
    arguments = ["demo", "--steps", "12", "--seeds", "0,1", "--validation-interval", "3"]
    assert cli.main([*arguments, "--out", str(tmp_path)]) == 0
    assert torch.get_num_threads() == threads  # the demo's thread count is scoped

    # every seed trains its three models, then reads its test split, once
    gan = [("fit", "GanTrainer")] * train.GAN_RESTARTS
    per_seed = [("fit", "FlowTrainer"), *gan, ("fit", "VaeTrainer")]
    assert events == [*per_seed, ("test", 0), *per_seed, ("test", 1)]

    printed = capsys.readouterr().out
    assert "classifier" in printed and "±" in printed  # rich wraps cells at 80 columns
    for model in MODELS:
        assert model in printed
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["settings"]["seeds"] == [0, 1] and result["settings"]["steps"] == 12
    assert [seed["seed"] for seed in result["seeds"]] == [0, 1]
    for seed in result["seeds"]:
        for model in MODELS:
            metrics = seed["models"][model]
            for key in METRICS:
                if (
                    key == "nll"
                    and model == "gan"
                    or key.startswith("training")
                    and (model == "baseline")
                ):
                    assert metrics[key] is None
                    continue
                assert _finite(metrics[key]), (seed["seed"], model, key, metrics[key])
            assert 0 <= metrics["classifier_auc"] <= 1
        # the kept checkpoint is the best score recorded, every 3 of the 12 steps, over the
        # GAN's restarts
        assert (
            len(seed["gan_validation"]) == result["settings"]["gan_restarts"] == train.GAN_RESTARTS
        )
        scored = [
            (score, restart, step)
            for restart, run in enumerate(seed["gan_validation"])
            for step, score in run
        ]
        assert all([step for step, _ in run] == [3, 6, 9, 12] for run in seed["gan_validation"])
        _, restart, step = min(scored)
        assert (seed["gan_selected_restart"], seed["gan_selected_step"]) == (restart, step)
        steps = (3, 6, 9, 12)
        # the flow and the VAE keep their best validation-loss checkpoint on the same steps
        assert set(seed["selected_steps"]) == {"flow", "gan", "vae"}
        assert all(step in steps for step in seed["selected_steps"].values())
    for model in MODELS:
        mean, std = result["summary"][model]["sinkhorn"]
        values = [seed["models"][model]["sinkhorn"] for seed in result["seeds"]]
        assert mean == pytest.approx(sum(values) / 2)
        assert std == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))
    assert set(result["settings"]["backends"].values()) == {"torch"}  # CPU: the reference
    for figure in ("marginals.png", "radius_energy.png", "gan_validation.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoint_selection_restores_the_best_recorded_weights():
    module = torch.nn.Linear(1, 1)
    scores = iter([0.5, 0.2, float("nan"), 0.3, 0.2])
    selection = train.CheckpointSelection(module, lambda: next(scores), 2, total_steps=10)
    weights = {}
    for step in range(1, 11):
        with torch.no_grad():
            module.weight.fill_(step)
        selection()
        weights[step] = module.weight.item()
    assert [step for step, _ in selection.history] == [2, 4, 6, 8, 10]
    assert selection.best_step == 4 and selection.best_score == 0.2  # ties keep the first
    selection.restore()
    assert module.weight.item() == weights[4]


def test_checkpoint_selection_without_a_finite_score_refuses_to_restore():
    selection = train.CheckpointSelection(torch.nn.Linear(1, 1), lambda: math.nan, 4, 6)
    for _ in range(6):
        selection()
    assert [step for step, _ in selection.history] == [4, 6]  # the last step is scored too
    with pytest.raises(RuntimeError, match="no finite validation score"):
        selection.restore()


def test_validation_split_is_disjoint_by_bundle_and_fixed_by_seed():
    _, first, validation = data.load(3, data.TAIL_BOUND)
    _, again, _ = data.load(3, data.TAIL_BOUND)
    assert torch.equal(first.latent, again.latent)
    test = data.load_test(3, data.load(3, data.TAIL_BOUND)[0])
    total = len(first.latent) + len(validation.latent) + len(test.latent)
    assert total == 7768  # every muon in exactly one split
    fraction = len(validation.latent) / (len(first.latent) + len(validation.latent))
    assert 0.08 < fraction < 0.25


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--steps", "0"], "--steps must be >= 1"),
        (["--steps", "ten"], "--steps: invalid int value"),
        (["--seeds", "1.5"], "--seeds: must be comma-separated integers"),
        (["--seeds", "0,-1"], "--seeds: must be distinct integers >= 0"),
        (["--seeds", "2,2"], "--seeds: must be distinct integers >= 0"),
        (["--validation-interval", "0"], "--validation-interval must be >= 1"),
        (["--device", "tpu"], "--device: invalid choice"),
        (["--backend", "numpy"], "--backend: invalid choice"),
    ],
)
def test_invalid_arguments_exit_2_before_training(arguments, message, capsys, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(experiment, "run_seed", no_training)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_out_must_be_a_directory(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--out", str(path)])
    assert exit_info.value.code == 2
    assert "is not a directory" in capsys.readouterr().err


def test_wrapped_azimuth_likelihood_is_a_normalised_density_on_the_circle():
    likelihood = models.WrappedAzimuthLikelihood(data.TAIL_BOUND)
    with torch.no_grad():
        likelihood.log_var.copy_(torch.tensor([-0.5, 1.2, 0.3]))
    # azimuth on a fine grid over one period, the other two features fixed
    grid = torch.linspace(-data.TAIL_BOUND, data.TAIL_BOUND, 40_001, dtype=torch.float64)[:-1]
    inputs = torch.stack([torch.full_like(grid, 0.2), grid, torch.full_like(grid, -0.4)], 1)
    mean = torch.tensor([0.0, 2.7, 0.1], dtype=torch.float64).expand(len(grid), 3)
    log_prob = likelihood.double().log_prob(inputs, mean)
    normal = torch.distributions.Normal(mean[0], likelihood.log_var.double().mul(0.5).exp())
    others = normal.log_prob(inputs[0])[[0, 2]].sum()
    integral = (log_prob - others).exp().sum() * (2 * data.TAIL_BOUND / len(grid))
    assert integral.item() == pytest.approx(1.0, abs=1e-9)
    # the images a + 2 k tail_bound, summed by torch.distributions
    shifts = 2 * data.TAIL_BOUND * torch.arange(-2, 3, dtype=torch.float64)
    expected = (
        normal.log_prob(
            inputs[:, None, :]
            + torch.stack(
                [torch.zeros(5, dtype=torch.float64), shifts, torch.zeros(5, dtype=torch.float64)],
                1,
            )
        )[..., 1].logsumexp(1)
        + others
    )
    torch.testing.assert_close(log_prob, expected)
    # samples lie on the circle, also for latents stacked in front (IWAE's (K, B, D))
    draws = likelihood.sample(mean[:8].expand(3, 8, 3))
    assert draws.shape == (3, 8, 3) and draws[..., 1].abs().max() <= data.TAIL_BOUND


def test_command_line_default_interval_is_the_demos():
    assert cli.VALIDATION_INTERVAL == experiment.VALIDATION_INTERVAL  # cli avoids torch


def test_thread_profile_times_every_model_at_one_and_two_threads(capsys):
    from profiling import demo_threads

    previous = torch.get_num_threads()
    result = demo_threads.main(["--repeats", "1", "--steps", "1"])
    assert set(result) == {"flow", "vae", "gan"}
    for times in result.values():
        assert times["1"] > 0 and times["2"] > 0
        assert times["ratio"] == pytest.approx(times["2"] / times["1"])
    assert torch.get_num_threads() == previous  # the caller's setting comes back
    assert "gan:" in capsys.readouterr().out
