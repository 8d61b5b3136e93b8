"""Variational autoencoders (Kingma & Welling 2013, arXiv:1312.6114) and their conditional form
(Sohn et al. 2015, "Learning Structured Output Representation using Deep Conditional
Generative Models"), as building blocks and as one module, :class:`ConditionalVAE`.

The encoder ``q(z | x, c) = N(mean, diag exp(log_var))`` is a diagonal Gaussian given by its
mean and log-variance (Kingma & Welling's parametrisation, the field's ``mu, logvar``): any
real output is valid and the KL divergence is a closed form in it. Latents are drawn by
reparameterisation, ``z = mean + exp(log_var / 2) * eps``, so that gradients reach the encoder.
The prior is ``N(0, I)``. The decoder ``p(x | z, c)`` is a :class:`GaussianLikelihood` (fixed
or learned variance) or a :class:`BernoulliLikelihood` (logits).

Training maximises the ELBO ``E_q[log p(x | z)] - beta * KL(q || p(z))`` (:func:`elbo`; ``beta
!= 1`` is the beta-VAE of Higgins et al. 2017 and Burgess et al. 2018, arXiv:1804.03599).
Evaluation estimates ``log p(x)`` by the importance-weighted bound of Burda et al. 2015
(arXiv:1509.00519, :func:`iwae_bound`), which rises to ``log p(x)`` as the number of samples
``K`` grows and is computed in chunks of samples so that ``K = 1000`` or more fits in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from fastgen._checks import check_bool, check_number, check_pair, check_tensor

LOG_2PI = math.log(2 * math.pi)


class ELBO(NamedTuple):
    """The terms of the evidence lower bound per sample, each ``(B,)``, kept apart for logging:
    ``elbo = reconstruction - beta * kl``."""

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def _check_gaussian(mean: torch.Tensor, log_var: torch.Tensor) -> None:
    check_tensor("mean", mean)
    check_tensor("log_var", log_var)
    check_pair(("mean", "log_var"), mean, log_var, same_shape=True)
    if mean.dim() == 0 or mean.shape[-1] == 0:
        raise ValueError(f"mean must have shape (..., L) with L >= 1, got {tuple(mean.shape)}")


def reparameterize(
    mean: torch.Tensor,
    log_var: torch.Tensor,
    num_samples: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``z = mean + exp(log_var / 2) * eps`` with ``eps ~ N(0, I)``, differentiable with
    respect to ``mean`` and ``log_var`` (Kingma & Welling 2013, arXiv:1312.6114, section 2.4).

    Args:
        mean, log_var: ``(..., L)``, one floating dtype and device.
        num_samples: ``None`` for one draw shaped like ``mean``, else ``K >= 1`` draws stacked
            in front: ``(K, ..., L)``.
        generator: the ``torch.Generator`` for ``eps``, on ``mean``'s device.

    Returns:
        ``z`` in ``mean``'s dtype (NaN where ``mean`` or ``log_var`` is NaN).

    Raises:
        TypeError: non-floating or mismatched dtypes, non-integer ``num_samples``.
        ValueError: shapes or devices differ, ``L = 0``, ``num_samples < 1``.

    Example:
        >>> import torch
        >>> from fastgen import vae
        >>> vae.reparameterize(torch.zeros(4, 2), torch.zeros(4, 2), num_samples=3).shape
        torch.Size([3, 4, 2])
    """
    _check_gaussian(mean, log_var)
    num_samples = check_number("num_samples", num_samples, minimum=1, integer=True, allow_none=True)
    shape = mean.shape if num_samples is None else (num_samples, *mean.shape)
    eps = torch.randn(shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + torch.exp(0.5 * log_var) * eps


def gaussian_log_prob(
    inputs: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor
) -> torch.Tensor:
    """``sum_d log N(inputs_d; mean_d, exp(log_var_d))`` over the last dimension, the log-density
    of a diagonal Gaussian (the decoder likelihood, the encoder density and, with zero mean and
    log-variance, the standard normal prior).

    Args:
        inputs, mean, log_var: ``(..., D)`` floating tensors that broadcast together.

    Returns:
        ``(...)``, the broadcast shape without its last dimension.

    Example:
        >>> import torch
        >>> from fastgen import vae
        >>> vae.gaussian_log_prob(torch.zeros(1, 2), torch.zeros(2), torch.zeros(2))  # -log 2 pi
        tensor([-1.8379])
    """
    for name, value in (("inputs", inputs), ("mean", mean), ("log_var", log_var)):
        check_tensor(name, value)
    return -0.5 * ((inputs - mean).square() * torch.exp(-log_var) + log_var + LOG_2PI).sum(-1)


def gaussian_kl(
    mean: torch.Tensor,
    log_var: torch.Tensor,
    prior_mean: torch.Tensor | None = None,
    prior_log_var: torch.Tensor | None = None,
) -> torch.Tensor:
    """``KL(N(mean, diag exp(log_var)) || N(prior_mean, diag exp(prior_log_var)))`` in closed
    form, summed over the last dimension (Kingma & Welling 2013, arXiv:1312.6114, appendix B):
    ``1/2 sum(exp(log_var - prior_log_var) + (mean - prior_mean)^2 exp(-prior_log_var) - 1
    - log_var + prior_log_var)``; the prior defaults to ``N(0, I)``. A conditional prior
    ``p(z | c)`` passes its own mean and log-variance.

    Args:
        mean, log_var: ``(..., L)``, the encoder's diagonal Gaussian.
        prior_mean, prior_log_var: ``None`` (zero) or tensors broadcasting against ``mean``.

    Returns:
        ``(...)`` in ``mean``'s dtype, ``>= 0`` up to round-off.

    Raises:
        TypeError / ValueError: as :func:`reparameterize` for ``mean`` and ``log_var``.

    Example:
        >>> import torch
        >>> from fastgen import vae
        >>> vae.gaussian_kl(torch.ones(1, 2), torch.zeros(1, 2))  # 1/2 sum(mean^2)
        tensor([1.])
    """
    _check_gaussian(mean, log_var)
    zero = mean.new_zeros(())
    prior_mean = zero if prior_mean is None else check_tensor("prior_mean", prior_mean)
    prior_log_var = zero if prior_log_var is None else check_tensor("prior_log_var", prior_log_var)
    ratio = torch.exp(log_var - prior_log_var)
    distance = (mean - prior_mean).square() * torch.exp(-prior_log_var)
    return 0.5 * (ratio + distance - 1 - log_var + prior_log_var).sum(-1)


def elbo(
    log_likelihood: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    *,
    beta: float = 1.0,
    prior_mean: torch.Tensor | None = None,
    prior_log_var: torch.Tensor | None = None,
) -> ELBO:
    """The (beta-weighted) evidence lower bound per sample, ``reconstruction - beta * kl``, with
    ``reconstruction`` the Monte Carlo estimate of ``E_q[log p(x | z)]`` (the mean of
    ``log_likelihood`` over its ``K`` latent draws) and ``kl`` the closed-form
    :func:`gaussian_kl` (Kingma & Welling 2013, arXiv:1312.6114, eq. 10). ``beta = 1`` is the
    ELBO; other values give the beta-VAE objective (Higgins et al. 2017; Burgess et al. 2018,
    arXiv:1804.03599). Maximise it: the training loss is ``-elbo(...).elbo.mean()``.

    Args:
        log_likelihood: ``log p(x | z)`` of the decoder at latents drawn by
            :func:`reparameterize`: ``(B,)`` for one draw or ``(K, B)`` for ``K``.
        mean, log_var: ``(B, L)``, the encoder's output for the same inputs.
        beta: the weight of the KL term, >= 0.
        prior_mean, prior_log_var: as in :func:`gaussian_kl` (default ``N(0, I)``).

    Returns:
        :class:`ELBO` ``(elbo, reconstruction, kl)``, each ``(B,)``, differentiable.

    Raises:
        TypeError: non-floating tensors, ``beta`` not a number.
        ValueError: ``log_likelihood`` not ``(B,)`` or ``(K, B)``, ``beta`` negative.

    Example:
        >>> import torch
        >>> from fastgen import vae
        >>> mean, log_var = torch.zeros(3, 2), torch.zeros(3, 2)
        >>> terms = vae.elbo(torch.full((3,), -1.0), mean, log_var, beta=4.0)
        >>> terms.elbo, terms.kl
        (tensor([-1., -1., -1.]), tensor([0., 0., 0.]))
    """
    check_tensor("log_likelihood", log_likelihood)
    _check_gaussian(mean, log_var)
    beta = check_number("beta", beta, minimum=0)
    batch = mean.shape[:-1]
    if log_likelihood.shape != batch and log_likelihood.shape[1:] != batch:
        raise ValueError(
            f"log_likelihood must have shape {tuple(batch)} or (K, *{tuple(batch)}), got "
            f"{tuple(log_likelihood.shape)}"
        )
    if log_likelihood.shape != batch:
        log_likelihood = log_likelihood.mean(0)
    kl = gaussian_kl(mean, log_var, prior_mean, prior_log_var)
    return ELBO(log_likelihood - beta * kl, log_likelihood, kl)


def iwae_bound(
    mean: torch.Tensor,
    log_var: torch.Tensor,
    log_joint: Callable[[torch.Tensor], torch.Tensor],
    num_samples: int = 1000,
    *,
    chunk_size: int = 100,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The importance-weighted estimate of ``log p(x)`` (Burda et al. 2015, arXiv:1509.00519):
    ``log (1/K) sum_k p(x, z_k) / q(z_k | x)`` with ``z_k ~ q = N(mean, diag exp(log_var))``.
    Its expectation is a lower bound that does not decrease with ``K``, equals the ELBO at
    ``K = 1`` and tends to ``log p(x)`` as ``K -> inf``.

    The ``K`` samples are drawn ``chunk_size`` at a time and their log-weights reduced by a
    running ``logaddexp`` of per-chunk ``logsumexp``: the result is exact, and memory is that
    of ``chunk_size`` decoder passes. Under ``torch.no_grad()`` (evaluation) that is all; with
    gradients the graph keeps every chunk.

    Args:
        mean, log_var: ``(B, L)``, the encoder's output ``q(z | x)``.
        log_joint: maps latents ``(n, B, L)`` to ``log p(x | z) + log p(z)`` of shape
            ``(n, B)``, for the ``B`` inputs the encoder saw.
        num_samples: ``K >= 1``.
        chunk_size: samples per chunk, >= 1.
        generator: the ``torch.Generator`` for the draws.

    Returns:
        ``(B,)`` in ``mean``'s dtype (NaN where an input's weights are NaN).

    Raises:
        TypeError / ValueError: as :func:`reparameterize`, non-integer or non-positive
            ``chunk_size``, a ``log_joint`` output that is not ``(n, B)``.

    Example:
        >>> import torch
        >>> from fastgen import vae
        >>> mean, log_var = torch.zeros(5, 2), torch.zeros(5, 2)
        >>> prior = lambda z: vae.gaussian_log_prob(z, torch.zeros(2), torch.zeros(2))
        >>> vae.iwae_bound(mean, log_var, prior, num_samples=10).shape  # 0 for q = p
        torch.Size([5])
    """
    _check_gaussian(mean, log_var)
    num_samples = check_number("num_samples", num_samples, minimum=1, integer=True)
    chunk_size = check_number("chunk_size", chunk_size, minimum=1, integer=True)
    total = None
    for start in range(0, num_samples, chunk_size):
        count = min(chunk_size, num_samples - start)
        latents = reparameterize(mean, log_var, count, generator=generator)
        log_joints = log_joint(latents)
        expected = (count, *mean.shape[:-1])
        if not isinstance(log_joints, torch.Tensor) or log_joints.shape != expected:
            shape = getattr(log_joints, "shape", type(log_joints).__name__)
            raise ValueError(f"log_joint must return shape {expected}, got {tuple(shape)}")
        log_weights = log_joints - gaussian_log_prob(latents, mean, log_var)
        chunk = torch.logsumexp(log_weights, 0)
        total = chunk if total is None else torch.logaddexp(total, chunk)
    return total - math.log(num_samples)


class DiagonalGaussianHead(nn.Module):
    """The encoder's last layer: one linear map of ``(..., in_features)`` features to the
    ``(mean, log_var)`` of ``q(z | x)``, each ``(..., latent_features)``.

    Example:
        >>> import torch
        >>> from fastgen import vae
        >>> mean, log_var = vae.DiagonalGaussianHead(16, 2)(torch.zeros(4, 16))
        >>> mean.shape, log_var.shape
        (torch.Size([4, 2]), torch.Size([4, 2]))
    """

    def __init__(self, in_features: int, latent_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * latent_features)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.linear(inputs).chunk(2, dim=-1)
        return mean, log_var


class GaussianLikelihood(nn.Module):
    """Decoder likelihood ``p(x | z) = N(mean, diag exp(log_var))``: the decoder outputs the
    ``mean``; the log-variance is a fixed number (``learned=False``: a fixed ``log_var = 0`` is
    the squared-error loss up to a constant) or one trained parameter per feature
    (``learned=True``, initialised at ``log_var``; the sigma-VAE of Rybkin et al. 2021,
    arXiv:2006.13202, which calibrates the balance of reconstruction and KL). A variance
    predicted per input is left out: it can collapse onto single training points.

    ``log_prob(inputs (B, D), mean (..., B, D)) -> (..., B)``;
    ``sample(mean, generator=None)`` draws ``x`` shaped like ``mean``.

    Example:
        >>> import torch
        >>> from fastgen import vae
        >>> likelihood = vae.GaussianLikelihood(3, learned=True)
        >>> likelihood.log_prob(torch.zeros(2, 3), torch.zeros(2, 3)).shape
        torch.Size([2])
    """

    def __init__(self, features: int, log_var: float = 0.0, learned: bool = False):
        super().__init__()
        features = check_number("features", features, minimum=1, integer=True)
        log_var = check_number("log_var", log_var)
        # A fixed value stays a Python float, exact in any dtype the inputs come in.
        learned = check_bool("learned", learned)
        self.log_var = nn.Parameter(torch.full((features,), log_var)) if learned else log_var

    def _log_var(self, like: torch.Tensor) -> torch.Tensor:
        if isinstance(self.log_var, torch.Tensor):
            return self.log_var
        return like.new_full((), self.log_var)

    def log_prob(self, inputs: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        return gaussian_log_prob(inputs, mean, self._log_var(mean))

    def sample(self, mean: torch.Tensor, generator: torch.Generator | None = None):
        return reparameterize(mean, self._log_var(mean).expand_as(mean), generator=generator)


class BernoulliLikelihood(nn.Module):
    """Decoder likelihood ``p(x | z) = prod_d Bernoulli(x_d; sigmoid(logits_d))`` for data in
    ``[0, 1]`` (binary, or grey levels as Kingma & Welling's MNIST experiments treat them):
    ``log_prob = -sum_d binary_cross_entropy_with_logits(logits_d, x_d)``, stable for any
    logits. The decoder outputs the logits.

    ``log_prob(inputs (B, D), logits (..., B, D)) -> (..., B)``;
    ``sample(logits, generator=None)`` draws 0 / 1 values shaped like ``logits``.

    Example:
        >>> import torch
        >>> from fastgen import vae
        >>> vae.BernoulliLikelihood().log_prob(torch.ones(1, 2), torch.zeros(1, 2))  # 2 log 1/2
        tensor([-1.3863])
    """

    def log_prob(self, inputs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        targets = inputs.expand_as(logits)
        bce = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        return -bce.sum(-1)

    def sample(self, logits: torch.Tensor, generator: torch.Generator | None = None):
        return torch.bernoulli(torch.sigmoid(logits), generator=generator)


def _hidden_layers(in_features: int, hidden_features: int, num_hidden_layers: int):
    """``num_hidden_layers`` of ``Linear + ReLU`` and the width they end with."""
    layers, width = [], in_features
    for _ in range(num_hidden_layers):
        layers += [nn.Linear(width, hidden_features), nn.ReLU()]
        width = hidden_features
    return layers, width


class ConditionalVAE(nn.Module):
    """A (conditional) VAE on ``features`` dims with ``latent_features`` latents and an
    ``N(0, I)`` prior (Kingma & Welling 2013, arXiv:1312.6114; conditional: Sohn et al. 2015).
    The encoder ``q(z | x, c)`` and the decoder ``p(x | z, c)`` are MLPs with
    ``num_hidden_layers`` ReLU layers of ``hidden_features`` (0: linear maps) on the
    concatenation of their input and the context; the encoder ends in a
    :class:`DiagonalGaussianHead`, the decoder in the parameters of ``likelihood``
    (default a :class:`GaussianLikelihood` with a learned variance per feature).

    The interface is :class:`fastgen.flows.Flow`'s:
    ``log_prob(inputs (B, D), context=None, num_samples=1000, chunk_size=100) -> (B,)`` is the
    :func:`iwae_bound` with ``num_samples`` latent draws (a lower bound in expectation, exact as
    ``num_samples -> inf``); ``sample(num_samples, context=None)`` -> ``(num_samples, D)``, or
    ``(C_B, num_samples, D)`` for a context ``(C_B, C)``, drawn from ``p(x | z, c)``;
    ``loss(inputs, context=None, beta=1.0)`` -> ``(loss, stats)`` for training, with
    ``loss = -mean elbo`` and detached means ``stats["reconstruction"]``, ``stats["kl"]``.
    ``encode`` and ``decode`` give the encoder's ``(mean, log_var)`` and the decoder's
    likelihood parameters (the Gaussian decoder's mean: a sample without the noise).

    Raises:
        ValueError: a context given to an unconditional model or missing from a conditional
            one, inputs not ``(B, features)``, context not ``(B, context_features)``.
        TypeError / ValueError: non-integer or non-positive sizes and sample counts.

    Example:
        >>> import torch
        >>> from fastgen.vae import ConditionalVAE
        >>> model = ConditionalVAE(3, context_features=2, latent_features=2, hidden_features=16)
        >>> x, c = torch.randn(8, 3), torch.randn(8, 2)
        >>> loss, stats = model.loss(x, c, beta=1.0)
        >>> loss.backward()
        >>> model.log_prob(x, c, num_samples=50).shape, model.sample(4, c).shape
        (torch.Size([8]), torch.Size([8, 4, 3]))
    """

    def __init__(
        self,
        features: int,
        context_features: int | None = None,
        latent_features: int = 8,
        hidden_features: int = 64,
        num_hidden_layers: int = 2,
        likelihood: nn.Module | None = None,
    ):
        super().__init__()
        self.features = check_number("features", features, minimum=1, integer=True)
        self.context_features = check_number(
            "context_features", context_features, minimum=1, integer=True, allow_none=True
        )
        self.latent_features = check_number(
            "latent_features", latent_features, minimum=1, integer=True
        )
        hidden_features = check_number("hidden_features", hidden_features, minimum=1, integer=True)
        num_hidden_layers = check_number(
            "num_hidden_layers", num_hidden_layers, minimum=0, integer=True
        )
        conditions = context_features or 0
        layers, width = _hidden_layers(features + conditions, hidden_features, num_hidden_layers)
        self.encoder = nn.Sequential(*layers, DiagonalGaussianHead(width, latent_features))
        layers, width = _hidden_layers(
            latent_features + conditions, hidden_features, num_hidden_layers
        )
        self.decoder = nn.Sequential(*layers, nn.Linear(width, features))
        if likelihood is None:
            likelihood = GaussianLikelihood(features, learned=True)
        self.likelihood = likelihood

    def _condition(self, inputs: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """``cat(inputs, context)`` along features, ``context`` broadcast over the leading
        sample dimensions of ``inputs``."""
        if context is None:
            return inputs
        return torch.cat([inputs, context.expand(*inputs.shape[:-1], -1)], dim=-1)

    def _check_inputs(self, inputs: torch.Tensor, context: torch.Tensor | None) -> None:
        check_tensor("inputs", inputs)
        if inputs.dim() != 2 or inputs.shape[1] != self.features:
            raise ValueError(
                f"inputs must have shape (B, {self.features}), got {tuple(inputs.shape)}"
            )
        self._check_context(context, len(inputs))
        if context is not None:
            check_pair(("inputs", "context"), inputs, context, axis=None)

    def _check_context(self, context: torch.Tensor | None, batch: int | None) -> None:
        """A context exactly when ``context_features`` is set, ``(batch, context_features)``
        (any number of rows when ``batch`` is ``None``)."""
        if (context is None) != (self.context_features is None):
            raise ValueError(
                "context must be given exactly when context_features is set "
                f"(context_features={self.context_features})"
            )
        if context is None:
            return
        check_tensor("context", context)
        rows = context.shape[0] if batch is None and context.dim() > 0 else batch
        if context.shape != (rows, self.context_features):
            raise ValueError(
                f"context must have shape ({rows}, {self.context_features}), "
                f"got {tuple(context.shape)}"
            )

    def encode(self, inputs: torch.Tensor, context: torch.Tensor | None = None):
        """``(mean, log_var)`` of ``q(z | inputs, context)``, each ``(B, latent_features)``."""
        self._check_inputs(inputs, context)
        return self.encoder(self._condition(inputs, context))

    def decode(self, latents: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood parameters ``(..., B, features)`` of ``p(x | latents, context)`` for
        latents ``(..., B, latent_features)`` and a context ``(B, C)``."""
        return self.decoder(self._condition(latents, context))

    def _log_joint(self, inputs, context):
        """``z -> log p(inputs | z, context) + log p(z)`` for latents ``(n, B, L)``."""

        def log_joint(latents):
            zero = latents.new_zeros(())
            prior = gaussian_log_prob(latents, zero, zero)
            return self.likelihood.log_prob(inputs, self.decode(latents, context)) + prior

        return log_joint

    def elbo(
        self,
        inputs: torch.Tensor,
        context: torch.Tensor | None = None,
        beta: float = 1.0,
        num_samples: int = 1,
    ) -> ELBO:
        """The per-input :class:`ELBO` terms ``(B,)`` with ``num_samples`` latent draws."""
        mean, log_var = self.encode(inputs, context)
        latents = reparameterize(mean, log_var, num_samples)
        log_likelihood = self.likelihood.log_prob(inputs, self.decode(latents, context))
        return elbo(log_likelihood, mean, log_var, beta=beta)

    def loss(self, inputs: torch.Tensor, context: torch.Tensor | None = None, beta: float = 1.0):
        """``(-mean elbo, {"reconstruction": ..., "kl": ...})`` for one training step."""
        terms = self.elbo(inputs, context, beta)
        stats = {
            "reconstruction": terms.reconstruction.mean().detach(),
            "kl": terms.kl.mean().detach(),
        }
        return -terms.elbo.mean(), stats

    def log_prob(
        self,
        inputs: torch.Tensor,
        context: torch.Tensor | None = None,
        num_samples: int = 1000,
        chunk_size: int = 100,
    ) -> torch.Tensor:
        """The importance-weighted estimate of ``log p(inputs | context)``, ``(B,)``."""
        mean, log_var = self.encode(inputs, context)
        return iwae_bound(
            mean, log_var, self._log_joint(inputs, context), num_samples, chunk_size=chunk_size
        )

    def sample(self, num_samples: int, context: torch.Tensor | None = None) -> torch.Tensor:
        """``(num_samples, features)``, or ``(C_B, num_samples, features)`` with a context."""
        num_samples = check_number("num_samples", num_samples, minimum=1, integer=True)
        self._check_context(context, None)
        parameter = self.decoder[-1].weight
        leading = (num_samples,) if context is None else (len(context), num_samples)
        latents = torch.randn(
            *leading, self.latent_features, dtype=parameter.dtype, device=parameter.device
        )
        if context is not None:
            context = context.unsqueeze(1)
        return self.likelihood.sample(self.decode(latents, context))
