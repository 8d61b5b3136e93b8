"""fastgen.vae against closed forms of the linear-Gaussian model (factor analysis).

The model: ``z ~ N(0, I_L)``, ``x = W z + b + W_c c + sigma * eps``, whose marginal is
``N(b + W_c c, W W^T + sigma^2 I)`` (``torch.distributions.MultivariateNormal`` gives the
exact ``log p(x)``). ``W`` has orthogonal columns, so that the exact posterior
``N(A (x - b - W_c c), diag(1 / (1 + s^2 / sigma^2)))`` with ``A = Sigma_post W^T / sigma^2`` is a
diagonal Gaussian: a :class:`ConditionalVAE` without hidden layers holds the model exactly.

Oracles: the closed-form ELBO derived below (and torch.distributions for the KL and the
log-densities); ``log p(x)`` for the IWAE bound, which is exact for every ``K`` when the
encoder is the exact posterior (constant importance weights) and converges for a shifted one.
Monte Carlo comparisons use a fixed seed and a tolerance of a few standard errors, computed
from the same draws, far below the size of the effects they test.
"""

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

import fastgen.vae as vae
from fastgen.vae import ConditionalVAE, GaussianLikelihood

D, L, C, SIGMA = 3, 2, 2, 0.5
F64 = torch.float64


class LinearGaussian:
    """The factor-analysis model above, in float64, with its exact posterior."""

    def __init__(self, seed=0, context_features=None):
        generator = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(D, L, generator=generator, dtype=F64))
        self.scales = torch.tensor([1.5, 0.7], dtype=F64)
        self.W = q * self.scales  # W^T W = diag(scales^2)
        self.b = torch.randn(D, generator=generator, dtype=F64)
        self.Wc = None
        if context_features is not None:
            self.Wc = torch.randn(D, context_features, generator=generator, dtype=F64)
        self.post_var = 1 / (1 + self.scales**2 / SIGMA**2)
        self.A = self.post_var[:, None] * self.W.T / SIGMA**2
        self.covariance = self.W @ self.W.T + SIGMA**2 * torch.eye(D, dtype=F64)

    def offset(self, context):
        return self.b if context is None else self.b + context @ self.Wc.T

    def marginal(self, context=None):
        return MultivariateNormal(self.offset(context), self.covariance)

    def posterior(self, x, context=None, shift=0.0, log_var_offset=0.0):
        """The exact posterior's (mean, log_var), or one moved by ``shift`` posterior standard
        deviations and ``log_var_offset``."""
        mean = (x - self.offset(context)) @ self.A.T + shift * self.post_var.sqrt()
        log_var = (self.post_var.log() + log_var_offset).expand_as(mean)
        return mean, log_var

    def elbo(self, x, mean, log_var, context=None):
        """Closed form: E_q log N(x; W z + b, sigma^2 I) = -D/2 log(2 pi sigma^2)
        - (||x - W m - b||^2 + tr(W^T W diag v)) / (2 sigma^2), minus KL(q || N(0, I))."""
        var = log_var.exp()
        residual = x - mean @ self.W.T - self.offset(context)
        trace = (var * self.scales**2).sum(-1)
        reconstruction = -0.5 * D * math.log(2 * math.pi * SIGMA**2) - (
            residual.square().sum(-1) + trace
        ) / (2 * SIGMA**2)
        kl = 0.5 * (var + mean.square() - 1 - log_var).sum(-1)
        return reconstruction - kl, reconstruction, kl

    def vae(self, shift=0.0, log_var_offset=0.0):
        """A ConditionalVAE without hidden layers holding this model and that encoder."""
        context_features = None if self.Wc is None else self.Wc.shape[1]
        model = ConditionalVAE(
            D,
            context_features,
            latent_features=L,
            num_hidden_layers=0,
            likelihood=GaussianLikelihood(D, log_var=2 * math.log(SIGMA)),
        ).double()
        encoder, decoder = model.encoder[-1].linear, model.decoder[-1]
        with torch.no_grad():
            mean_weight = self.A if self.Wc is None else torch.cat([self.A, -self.A @ self.Wc], 1)
            encoder.weight.zero_()
            encoder.weight[:L] = mean_weight
            encoder.bias[:L] = -self.A @ self.b + shift * self.post_var.sqrt()
            encoder.bias[L:] = self.post_var.log() + log_var_offset
            decoder.weight.copy_(self.W if self.Wc is None else torch.cat([self.W, self.Wc], 1))
            decoder.bias.copy_(self.b)
        return model


def log_joint(model, x, context=None):
    """log p(x | z) + log p(z) written with torch.distributions, for latents (n, B, L)."""

    def function(z):
        mean = z @ model.W.T + model.offset(context)
        likelihood = Independent(Normal(mean, SIGMA), 1).log_prob(x)
        return likelihood + Independent(Normal(torch.zeros_like(z), 1.0), 1).log_prob(z)

    return function


@pytest.fixture
def model():
    return LinearGaussian()


@pytest.fixture
def data(model):
    return model.marginal().sample((4,))


def test_closed_form_elbo_is_log_likelihood_at_the_exact_posterior(model, data):
    """The oracle's own check: at q = p(z | x) the ELBO is log p(x)."""
    elbo, _, _ = model.elbo(data, *model.posterior(data))
    torch.testing.assert_close(elbo, model.marginal().log_prob(data), rtol=0, atol=1e-12)


def test_gaussian_kl_against_closed_form_and_torch_distributions():
    generator = torch.Generator().manual_seed(1)
    mean, log_var, prior_mean, prior_log_var = torch.randn(4, 5, 3, generator=generator, dtype=F64)
    kl = vae.gaussian_kl(mean, log_var)
    hand = 0.5 * (log_var.exp() + mean.square() - 1 - log_var).sum(-1)
    torch.testing.assert_close(kl, hand, rtol=1e-13, atol=1e-13)
    q = Normal(mean, (0.5 * log_var).exp())
    reference = kl_divergence(q, Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl, reference, rtol=1e-12, atol=1e-12)
    conditional = vae.gaussian_kl(mean, log_var, prior_mean, prior_log_var)
    prior = Normal(prior_mean, (0.5 * prior_log_var).exp())
    torch.testing.assert_close(conditional, kl_divergence(q, prior).sum(-1), rtol=1e-12, atol=1e-12)


def test_log_densities_against_torch_distributions():
    generator = torch.Generator().manual_seed(2)
    x, mean, log_var = torch.randn(3, 6, 4, generator=generator, dtype=F64)
    expected = Independent(Normal(mean, (0.5 * log_var).exp()), 1).log_prob(x)
    torch.testing.assert_close(
        vae.gaussian_log_prob(x, mean, log_var), expected, rtol=1e-13, atol=1e-13
    )
    binary = torch.randint(0, 2, (6, 4), generator=generator).to(F64)
    logits = 5 * mean
    expected = Independent(torch.distributions.Bernoulli(logits=logits), 1).log_prob(binary)
    bernoulli = vae.BernoulliLikelihood().log_prob(binary, logits)
    torch.testing.assert_close(bernoulli, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("shift, log_var_offset", [(0.0, 0.0), (0.8, -0.5)])
def test_elbo_of_the_linear_gaussian_model(model, data, shift, log_var_offset):
    """The Monte Carlo ELBO (reparameterised draws, decoder log-likelihood, analytic KL)
    against the closed form, within 5 standard errors of its own draws."""
    num_samples = 100_000
    mean, log_var = model.posterior(data, shift=shift, log_var_offset=log_var_offset)
    latents = vae.reparameterize(
        mean, log_var, num_samples, generator=torch.Generator().manual_seed(3)
    )
    log_likelihood = (
        GaussianLikelihood(D, log_var=2 * math.log(SIGMA))
        .double()
        .log_prob(data, latents @ model.W.T + model.b)
    )
    torch.testing.assert_close(  # the decoder's log-likelihood, second oracle
        log_likelihood,
        Independent(Normal(latents @ model.W.T + model.b, SIGMA), 1).log_prob(data),
        rtol=1e-12,
        atol=1e-12,
    )
    terms = vae.elbo(log_likelihood, mean, log_var, beta=1.0)
    expected, reconstruction, kl = model.elbo(data, mean, log_var)
    standard_error = log_likelihood.std(0) / math.sqrt(num_samples)
    assert (terms.elbo - expected).abs().le(5 * standard_error).all(), (terms.elbo, expected)
    assert (terms.reconstruction - reconstruction).abs().le(5 * standard_error).all()
    torch.testing.assert_close(terms.kl, kl, rtol=1e-12, atol=1e-12)
    # The same through the module, whose encoder and decoder hold the model.
    torch.manual_seed(4)
    module_terms = model.vae(shift, log_var_offset).elbo(data, num_samples=num_samples)
    assert (module_terms.elbo - expected).abs().le(5 * standard_error).all()
    torch.testing.assert_close(module_terms.kl, kl, rtol=1e-12, atol=1e-12)


def test_beta_weights_the_kl_term(model, data):
    mean, log_var = model.posterior(data, shift=1.0)
    log_likelihood = torch.randn(7, len(data), dtype=F64)
    for beta in (0.0, 0.5, 4.0):
        terms = vae.elbo(log_likelihood, mean, log_var, beta=beta)
        assert torch.equal(terms.reconstruction, log_likelihood.mean(0))
        torch.testing.assert_close(
            terms.elbo, terms.reconstruction - beta * terms.kl, rtol=0, atol=1e-15
        )
    loss, stats = model.vae(shift=1.0).loss(data, beta=2.0)
    assert loss.dim() == 0 and set(stats) == {"reconstruction", "kl"}
    assert not stats["kl"].requires_grad


@pytest.mark.parametrize("context_features", [None, C])
@pytest.mark.parametrize("num_samples, chunk_size", [(1, 100), (37, 10)])
def test_iwae_is_exact_at_the_exact_posterior(context_features, num_samples, chunk_size):
    """With q = p(z | x) every importance weight equals p(x): the bound is log p(x) to
    round-off for any K, a check of the weights, their normalisation and the context path."""
    model = LinearGaussian(seed=5, context_features=context_features)
    context = None if context_features is None else torch.randn(6, C, dtype=F64)
    x = model.marginal(context).sample(() if context is not None else (6,))
    estimate = model.vae().log_prob(x, context, num_samples=num_samples, chunk_size=chunk_size)
    torch.testing.assert_close(estimate, model.marginal(context).log_prob(x), rtol=0, atol=1e-10)


def test_iwae_rises_from_the_elbo_with_the_number_of_samples(model, data):
    """E[IWAE_K] (mean over 4000 independent estimates per input) starts at the closed-form
    ELBO for K = 1 and rises significantly (> 3 standard errors) at each K up to 64, staying
    below log p(x). The gaps to log p(x) are about 0.33, 0.07, 0.015, 0.004 nats."""
    repeats = 4000
    x = data.repeat_interleave(repeats, 0)
    mean, log_var = model.posterior(x, shift=0.5, log_var_offset=0.4)
    generator = torch.Generator().manual_seed(6)
    elbo = model.elbo(data, *model.posterior(data, shift=0.5, log_var_offset=0.4))[0].mean()
    log_p = model.marginal().log_prob(data).mean()
    previous = None
    for num_samples in (1, 4, 16, 64):
        estimates = vae.iwae_bound(
            mean, log_var, log_joint(model, x), num_samples, chunk_size=16, generator=generator
        )
        per_input = estimates.reshape(len(data), repeats)
        value = per_input.mean()
        standard_error = per_input.var(1).mean().sqrt() / math.sqrt(len(x))
        if previous is None:
            assert abs(value - elbo) < 4 * standard_error, (value, elbo)
        else:
            assert value - previous[0] > 3 * math.hypot(standard_error, previous[1])
        assert value < log_p + 3 * standard_error
        previous = (value, standard_error)


def test_iwae_converges_to_the_factor_analysis_log_likelihood(model, data):
    """At K = 10,000 the estimate is within 0.04 nats of log p(x) (its spread measured over
    repeated seeds is about 0.009 nats; the K = 1 gap is 0.33)."""
    mean, log_var = model.posterior(data, shift=0.5, log_var_offset=0.4)
    estimate = vae.iwae_bound(
        mean,
        log_var,
        log_joint(model, data),
        10_000,
        chunk_size=1000,
        generator=torch.Generator().manual_seed(7),
    )
    torch.testing.assert_close(estimate, model.marginal().log_prob(data), rtol=0, atol=0.04)


def test_chunked_iwae_equals_one_logsumexp_over_all_samples(model, data):
    """The running logaddexp over chunks equals torch.logsumexp over all K log-weights
    (recomputed here with torch.distributions from the recorded draws)."""
    mean, log_var = model.posterior(data, shift=0.5, log_var_offset=0.4)
    drawn = []

    def recording(z):
        drawn.append(z)
        return log_joint(model, data)(z)

    estimate = vae.iwae_bound(
        mean, log_var, recording, 1000, chunk_size=64, generator=torch.Generator().manual_seed(8)
    )
    assert [len(z) for z in drawn] == [64] * 15 + [40]
    z = torch.cat(drawn)
    q = Independent(Normal(mean, (0.5 * log_var).exp()), 1)
    log_weights = log_joint(model, data)(z) - q.log_prob(z)
    expected = torch.logsumexp(log_weights, 0) - math.log(1000)
    torch.testing.assert_close(estimate, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("context_features", [None, C])
def test_samples_follow_the_model(context_features):
    """Samples of the model's VAE have the factor-analysis mean and covariance (the
    Monte Carlo error at 200,000 samples is about 0.005)."""
    model = LinearGaussian(seed=9, context_features=context_features)
    context = None if context_features is None else torch.tensor([[1.0, -2.0]], dtype=F64)
    torch.manual_seed(10)
    samples = model.vae().sample(200_000, context)
    if context is not None:
        assert samples.shape == (1, 200_000, D)
        samples = samples[0]
    assert samples.shape == (200_000, D) and samples.dtype == F64
    expected_mean = model.offset(context).reshape(D)
    torch.testing.assert_close(samples.mean(0), expected_mean, rtol=0, atol=0.03)
    torch.testing.assert_close(samples.T.cov(), model.covariance, rtol=0, atol=0.03)


def test_module_shapes_dtypes_and_training_step():
    torch.manual_seed(11)
    model = ConditionalVAE(4, context_features=2, latent_features=3, hidden_features=8)
    x, context = torch.randn(5, 4), torch.randn(5, 2)
    loss, stats = model.loss(x, context)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert model.log_prob(x, context, num_samples=20, chunk_size=7).shape == (5,)
    assert model.sample(3, context).shape == (5, 3, 4)
    assert ConditionalVAE(4).sample(3).shape == (3, 4)
    double = model.double()
    assert double.log_prob(x.double(), context.double(), num_samples=5).dtype == F64
    assert double.sample(2, context.double()).dtype == F64
    bernoulli = ConditionalVAE(4, likelihood=vae.BernoulliLikelihood())
    samples = bernoulli.sample(50)
    assert samples.shape == (50, 4) and set(samples.unique().tolist()) <= {0.0, 1.0}
    assert bernoulli.log_prob((x > 0).float(), num_samples=5).shape == (5,)


def test_float32_matches_float64():
    model = LinearGaussian(seed=12)
    x = model.marginal().sample((6,))
    estimate = model.vae().float().log_prob(x.float(), num_samples=10)
    assert estimate.dtype == torch.float32
    torch.testing.assert_close(
        estimate.double(), model.marginal().log_prob(x), rtol=1e-5, atol=1e-5
    )


def test_nan_inputs_give_nan(model, data):
    x = data.clone()
    x[1, 0] = float("nan")
    module = model.vae(shift=0.5)
    for values in (module.log_prob(x, num_samples=10), module.elbo(x).elbo):
        assert values[1].isnan() and values[[0, 2, 3]].isfinite().all()
    mean, log_var = model.posterior(data)
    mean[2, 1] = float("nan")
    assert vae.gaussian_kl(mean, log_var)[2].isnan()
    assert vae.reparameterize(mean, log_var)[2, 1].isnan()


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda m, x: vae.reparameterize(x, x[:, :1]), ValueError, "mean and log_var"),
        (lambda m, x: vae.reparameterize(x.long(), x), TypeError, "mean"),
        (lambda m, x: vae.reparameterize(x, x, 0), ValueError, "num_samples"),
        (lambda m, x: vae.elbo(x, x, x), ValueError, "log_likelihood"),
        (lambda m, x: vae.elbo(x[:, 0], x, x, beta=-1.0), ValueError, "beta"),
        (lambda m, x: vae.gaussian_kl(x, x, prior_mean=[0.0]), TypeError, "prior_mean"),
        (lambda m, x: vae.iwae_bound(x, x, lambda z: z, 3), ValueError, "log_joint"),
        (lambda m, x: vae.iwae_bound(x, x, lambda z: z, 3, chunk_size=0), ValueError, "chunk_size"),
        (lambda m, x: m.log_prob(x[:, :2]), ValueError, "inputs"),
        (lambda m, x: m.log_prob(x, torch.zeros(4, 2, dtype=F64)), ValueError, "context"),
        (lambda m, x: m.log_prob(x, num_samples=2.0), TypeError, "num_samples"),
        (lambda m, x: m.sample(0), ValueError, "num_samples"),
        (lambda m, x: ConditionalVAE(3, latent_features=0), ValueError, "latent_features"),
        (lambda m, x: GaussianLikelihood(3, learned=1), TypeError, "learned"),
        (lambda m, x: GaussianLikelihood(3, log_var=float("nan")), ValueError, "log_var"),
        (lambda m, x: ConditionalVAE(3, 2).log_prob(x), ValueError, "context"),
        (lambda m, x: ConditionalVAE(3, 2).double().log_prob(x, x[:, :1]), ValueError, "context"),
        (lambda m, x: ConditionalVAE(3, 2).log_prob(x, x[:, :2].float()), TypeError, "context"),
    ],
)
def test_argument_errors_name_the_argument(model, data, call, error, name):
    with pytest.raises(error, match=name):
        call(model.vae(), data)
