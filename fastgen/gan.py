"""Gradient penalties for GAN critics: WGAN-GP (Gulrajani et al. 2017, arXiv:1704.00028) and
R1 / R2 (Mescheder et al. 2018, arXiv:1801.04406).

WGAN-GP's penalty, as the paper's Algorithm 1 writes it: one ``eps ~ U[0, 1]`` per sample,
``x_hat = fake + eps * (real - fake)``, ``g_i = d critic(x_hat)_i / d x_hat_i`` (one
``autograd.grad`` of the summed critic output, ``create_graph=True`` so that the penalty
trains the critic) and ``weight * mean_i((||g_i||_2 - target)^2)`` with the norm taken over
all of a sample's features. The building blocks :func:`interpolate` and
:func:`penalty_from_gradients` are fused Triton kernels on CUDA tensors and fused PyTorch ops
(``torch.lerp``, ``torch.linalg.vector_norm``) otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from fastgen._checks import check_number, check_pair, check_samples, check_tensor
from fastgen.backend import KERNEL_DTYPES, resolve_backend
from fastgen.reference import gradient_penalty as reference
from fastgen.tracing import annotate

Critic = Callable[..., torch.Tensor]


def _check_batch(name: str, value) -> None:
    """A training batch ``(B, ...)``: a floating tensor (arrays are refused: gradients flow
    back into it) with ``B >= 1`` samples of >= 1 feature; NaN propagates to the loss."""
    check_samples(name, check_tensor(name, value), min_samples=1, flat=False, finite=False)


def _check_real_fake(real: torch.Tensor, fake: torch.Tensor) -> None:
    _check_batch("real", real)
    _check_batch("fake", fake)
    check_pair(("real", "fake"), real, fake, same_shape=True)


@annotate("fastgen.interpolate")
def interpolate(
    real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor, *, backend: str | None = None
) -> torch.Tensor:
    """Per-sample interpolation ``x_hat = fake + eps * (real - fake)``.

    Args:
        real: ``(B, ...)`` real samples, floating (float16 / bfloat16 computed in float32).
        fake: ``(B, ...)`` generated samples, the shape, dtype and device of ``real``.
        eps: ``(B,)`` or ``(B, 1, ..., 1)``, the interpolation weight of each sample, usually
            drawn from ``U[0, 1]``; cast to ``real``'s dtype. It is a constant: it must not
            require grad.
        backend: ``"auto" | "triton" | "torch"`` (default: ``FASTGEN_BACKEND`` or ``auto``).

    Returns:
        ``x_hat`` of shape and dtype of ``real``; differentiable with respect to ``real`` and
        ``fake`` (the gradients are ``eps * grad`` and ``(1 - eps) * grad``).

    Raises:
        TypeError: non-tensor or non-floating inputs, ``real`` and ``fake`` dtypes differ.
        ValueError: shapes or devices differ, no samples or no features, ``eps`` has not
            ``B`` elements in a per-sample shape, or requires grad.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> real, fake = torch.ones(2, 3), torch.zeros(2, 3)
        >>> gan.interpolate(real, fake, torch.tensor([0.25, 1.0]))
        tensor([[0.2500, 0.2500, 0.2500],
                [1.0000, 1.0000, 1.0000]])
    """
    _check_real_fake(real, fake)
    check_tensor("eps", eps)
    batch = len(real)
    per_sample = (batch,) + (1,) * (real.dim() - 1)
    if eps.shape not in ((batch,), per_sample):
        raise ValueError(
            f"eps must have shape ({batch},) or {per_sample} (one value per sample), got "
            f"{tuple(eps.shape)}"
        )
    if eps.requires_grad:
        raise ValueError("eps must not require grad: the interpolation weights are constants")
    eps = eps.reshape(batch).to(real.dtype)
    if resolve_backend(backend, (real, fake, eps), supported_dtypes=KERNEL_DTYPES) == "triton":
        from fastgen.kernels.gradient_penalty import InterpolateTriton

        return InterpolateTriton.apply(real, fake, eps)
    return reference.interpolate(real, fake, eps)


@annotate("fastgen.penalty_from_gradients")
def penalty_from_gradients(
    gradients: torch.Tensor,
    target: float = 1.0,
    one_sided: bool = False,
    *,
    weight: float = 1.0,
    backend: str | None = None,
) -> torch.Tensor:
    """``weight * mean_i((||g_i||_2 - target)^2)`` over the samples of ``gradients``.

    ``one_sided=True`` penalises only norms above ``target``: ``max(0, ||g_i|| - target)^2``
    (Petzka et al. 2018's WGAN-LP form). The norm of each sample is taken over all its
    features, accumulated in float32 for float16 / bfloat16 gradients. The derivative is
    ``weight * 2 (||g_i|| - target) / ||g_i|| * g_i / B``, zero for a zero row (never NaN).

    Args:
        gradients: ``(B, ...)`` floating, typically ``d critic / d x`` from
            ``torch.autograd.grad(..., create_graph=True)``.
        target: the norm the penalty pulls towards (1 for WGAN-GP, 0 for R1 / R2), >= 0.
        one_sided: penalise only norms above ``target``.
        weight: the multiplier, >= 0.
        backend: ``"auto" | "triton" | "torch"``.

    Returns:
        A 0-d tensor in ``gradients``' dtype, differentiable with respect to ``gradients``.

    Raises:
        TypeError: non-tensor or non-floating ``gradients``, non-number ``target``/``weight``.
        ValueError: no samples or no features, ``target`` or ``weight`` negative or not finite.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> gradients = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # norms 5 and 1
        >>> gan.penalty_from_gradients(gradients, weight=10.0)  # 10 * ((5 - 1)^2 + 0) / 2
        tensor(80.)
    """
    _check_batch("gradients", gradients)
    target = check_number("target", target, minimum=0)
    weight = check_number("weight", weight, minimum=0)
    one_sided = bool(one_sided)
    if resolve_backend(backend, (gradients,), supported_dtypes=KERNEL_DTYPES) == "triton":
        from fastgen.kernels.gradient_penalty import GradientPenaltyTriton

        return GradientPenaltyTriton.apply(gradients, target, one_sided, weight)
    return reference.penalty_from_gradients(gradients, target, one_sided, weight)


def _critic_output(critic: Critic, inputs: torch.Tensor, context) -> torch.Tensor:
    """``critic(inputs[, context])`` as ``(B,)``; ``context`` is passed unchanged."""
    output = critic(inputs) if context is None else critic(inputs, context)
    batch = len(inputs)
    if not isinstance(output, torch.Tensor) or output.shape not in ((batch,), (batch, 1)):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"critic output must have shape ({batch},) or ({batch}, 1), got {shape}")
    return output.reshape(batch)


def _critic_gradients(critic: Critic, inputs: torch.Tensor, context) -> torch.Tensor:
    """``d sum(critic(inputs)) / d inputs``, with ``create_graph=True`` whenever gradients
    are enabled so that a penalty on it trains the critic. ``inputs`` that do not require
    grad are detached into a leaf that does; ``context`` is not differentiated."""
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        if not inputs.requires_grad:
            inputs = inputs.detach().requires_grad_()
        output = _critic_output(critic, inputs, context)
        if not output.requires_grad:
            raise ValueError("critic output does not depend on its input: no gradient to penalise")
        (gradients,) = torch.autograd.grad(output.sum(), inputs, create_graph=create_graph)
    return gradients


def gradient_penalty(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    context: torch.Tensor | None = None,
    weight: float = 10.0,
    target: float = 1.0,
    one_sided: bool = False,
    eps: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """WGAN-GP gradient penalty ``weight * mean_i((||d critic(x_hat_i) / d x_hat_i|| - target)^2)``
    with ``x_hat = fake + eps * (real - fake)`` (Gulrajani et al. 2017, arXiv:1704.00028).

    Args:
        critic: ``critic(x)`` or, with ``context``, ``critic(x, context)``, returning ``(B,)``
            or ``(B, 1)``.
        real: ``(B, ...)`` real samples (tabular ``(B, D)`` or images ``(B, C, H, W)``),
            floating.
        fake: ``(B, ...)`` generated samples, the shape, dtype and device of ``real``. Pass
            ``fake.detach()`` in the critic step.
        context: conditions for a conditional critic, passed unchanged; its gradient is not
            penalised.
        weight: the penalty's multiplier (lambda, 10 in the paper), >= 0.
        target: the norm the penalty pulls towards, >= 0.
        one_sided: penalise only norms above ``target`` (see :func:`penalty_from_gradients`).
        eps: ``(B,)`` or ``(B, 1, ..., 1)`` interpolation weights; default one draw from
            ``U[0, 1]`` per sample with ``generator`` (reproducible with a seeded one).
        generator: the ``torch.Generator`` for ``eps``, on ``real``'s device.
        backend: ``"auto" | "triton" | "torch"`` for the interpolation and the penalty.

    Returns:
        A 0-d tensor in ``real``'s dtype. ``backward()`` reaches the critic's parameters
        through the second derivative, and ``real`` / ``fake`` when they require grad.

    Raises:
        TypeError / ValueError: as :func:`interpolate` and :func:`penalty_from_gradients`,
            and for a critic output that is not ``(B,)`` or ``(B, 1)``.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> critic = torch.nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = critic.weight.copy_(torch.tensor([[0.6, 0.8]]))  # |gradient| = 1 everywhere
        >>> real, fake = torch.randn(4, 2), torch.randn(4, 2)
        >>> gan.gradient_penalty(critic, real, fake).item()
        0.0
    """
    _check_real_fake(real, fake)
    check_number("weight", weight, minimum=0)
    if eps is None:
        shape = (len(real),) + (1,) * (real.dim() - 1)
        eps = torch.rand(shape, generator=generator, dtype=real.dtype, device=real.device)
    x_hat = interpolate(real, fake, eps, backend=backend)
    gradients = _critic_gradients(critic, x_hat, context)
    return penalty_from_gradients(gradients, target, one_sided, weight=weight, backend=backend)


def r1_penalty(
    critic: Critic,
    real: torch.Tensor,
    *,
    gamma: float = 10.0,
    context: torch.Tensor | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """R1 penalty ``gamma / 2 * mean_i(||d critic(x_i) / d x_i||^2)`` on real samples
    (Mescheder et al. 2018, arXiv:1801.04406).

    Args:
        critic: as in :func:`gradient_penalty`.
        real: ``(B, ...)`` floating samples; gradients flow back into them only if they
            already require grad.
        gamma: the penalty's multiplier (``gamma / 2`` times the mean squared norm), >= 0.
        context: as in :func:`gradient_penalty`.
        backend: as in :func:`gradient_penalty`.

    Returns:
        A 0-d tensor in ``real``'s dtype.

    Raises:
        TypeError / ValueError: as :func:`gradient_penalty` for ``real``; ``gamma``
            negative or not finite.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> critic = torch.nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = critic.weight.copy_(torch.tensor([[3.0, 4.0]]))  # |gradient| = 5
        >>> gan.r1_penalty(critic, torch.randn(4, 2), gamma=2.0).item()  # 2 / 2 * 5^2
        25.0
    """
    return _squared_gradient_penalty(critic, "real", real, gamma, context, backend)


def r2_penalty(
    critic: Critic,
    fake: torch.Tensor,
    *,
    gamma: float = 10.0,
    context: torch.Tensor | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """R2 penalty: :func:`r1_penalty`'s formula on generated samples,
    ``gamma / 2 * mean_i(||d critic(x_i) / d x_i||^2)`` (Mescheder et al. 2018,
    arXiv:1801.04406).

    Args:
        critic: as in :func:`gradient_penalty`.
        fake: ``(B, ...)`` generated samples; pass ``fake.detach()`` in the critic step.
        gamma: the penalty's multiplier, >= 0.
        context: as in :func:`gradient_penalty`.
        backend: as in :func:`gradient_penalty`.

    Returns:
        A 0-d tensor in ``fake``'s dtype.

    Raises:
        TypeError / ValueError: as :func:`r1_penalty`.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> critic = torch.nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = critic.weight.copy_(torch.tensor([[0.0, 2.0]]))  # |gradient| = 2
        >>> gan.r2_penalty(critic, torch.randn(4, 2)).item()  # 10 / 2 * 2^2
        20.0
    """
    return _squared_gradient_penalty(critic, "fake", fake, gamma, context, backend)


def _squared_gradient_penalty(critic, name, samples, gamma, context, backend):
    _check_batch(name, samples)
    gamma = check_number("gamma", gamma, minimum=0)
    gradients = _critic_gradients(critic, samples, context)
    return penalty_from_gradients(gradients, 0.0, weight=gamma / 2, backend=backend)


def wgan_gp_critic_loss(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    context: torch.Tensor | None = None,
    weight: float = 10.0,
    target: float = 1.0,
    one_sided: bool = False,
    eps: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    backend: str | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The WGAN-GP critic loss ``mean critic(fake) - mean critic(real) + gradient_penalty``.

    ``fake`` is detached (the critic step does not train the generator). Arguments are
    :func:`gradient_penalty`'s; the same ``context`` conditions real, fake and interpolated
    samples.

    Returns:
        ``(loss, stats)``: the 0-d loss, and detached 0-d tensors ``stats["wasserstein"]``
        (``mean critic(real) - mean critic(fake)``, the critic's Wasserstein estimate) and
        ``stats["gradient_penalty"]``.

    Raises:
        TypeError / ValueError: as :func:`gradient_penalty`.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> critic = torch.nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = critic.weight.copy_(torch.tensor([[0.6, 0.8]]))
        >>> real, fake = torch.ones(4, 2), torch.zeros(4, 2)
        >>> loss, stats = gan.wgan_gp_critic_loss(critic, real, fake)
        >>> round(stats["wasserstein"].item(), 4), round(loss.item(), 4)  # 0.6 + 0.8, no penalty
        (1.4, -1.4)
    """
    _check_real_fake(real, fake)
    fake = fake.detach()
    critic_real = _critic_output(critic, real, context)
    critic_fake = _critic_output(critic, fake, context)
    penalty = gradient_penalty(
        critic,
        real,
        fake,
        context=context,
        weight=weight,
        target=target,
        one_sided=one_sided,
        eps=eps,
        generator=generator,
        backend=backend,
    )
    wasserstein = critic_real.mean() - critic_fake.mean()
    stats = {"wasserstein": wasserstein.detach(), "gradient_penalty": penalty.detach()}
    return penalty - wasserstein, stats


# --- GAN objectives -------------------------------------------------------------------------
# Each takes the critic's outputs, as Mimicry, StudioGAN and torchgan do: the caller runs the
# critic once per batch (or once on cat(real, fake)), and any critic (conditional, projection,
# patch-wise outputs) fits. Outputs of any shape are averaged over all their elements.


def _check_scores(names: tuple[str, ...], *scores: torch.Tensor) -> None:
    for name, value in zip(names, scores, strict=True):
        check_tensor(name, value)
        if value.numel() == 0:
            raise ValueError(f"{name} must hold >= 1 critic output, got {tuple(value.shape)}")
    if len(scores) == 2:
        check_pair(names, *scores, axis=None)


def minimax_critic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator loss of the original GAN, ``-mean log D(real) - mean log(1 - D(fake))``
    with ``D = sigmoid(logits)`` (Goodfellow et al. 2014, arXiv:1406.2661): the binary
    cross-entropy of real against label 1 and fake against label 0, computed as
    ``mean softplus(-real_logits) + mean softplus(fake_logits)`` (finite for any finite logits).
    It is also the non-saturating GAN's critic loss (:data:`non_saturating_critic_loss`).

    Args:
        real_logits, fake_logits: ``(B_real, ...)`` and ``(B_fake, ...)`` critic outputs before
            the sigmoid, one floating dtype and device; pass ``fake_logits`` of ``fake.detach()``.

    Returns:
        A 0-d tensor in the logits' dtype (NaN logits give NaN).

    Raises:
        TypeError: non-tensor or non-floating logits, dtypes differ.
        ValueError: empty logits, devices differ.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> gan.minimax_critic_loss(torch.tensor([0.0]), torch.tensor([0.0]))  # 2 log 2
        tensor(1.3863)
    """
    _check_scores(("real_logits", "fake_logits"), real_logits, fake_logits)
    return nn.functional.softplus(-real_logits).mean() + nn.functional.softplus(fake_logits).mean()


def minimax_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The original (saturating) generator loss ``mean log(1 - D(fake)) = -mean
    softplus(fake_logits)`` (Goodfellow et al. 2014, arXiv:1406.2661): its gradient vanishes
    when the discriminator confidently rejects the samples (``fake_logits -> -inf``), which is
    why :func:`non_saturating_generator_loss` is used in practice.

    Args:
        fake_logits: ``(B, ...)`` critic logits of generated samples (not detached).

    Returns:
        A 0-d tensor in the logits' dtype, ``<= 0``.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> gan.minimax_generator_loss(torch.tensor([0.0]))  # -log 2
        tensor(-0.6931)
    """
    _check_scores(("fake_logits",), fake_logits)
    return -nn.functional.softplus(fake_logits).mean()


#: The non-saturating GAN trains its discriminator with the minimax loss.
non_saturating_critic_loss = minimax_critic_loss


def non_saturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss ``-mean log D(fake) = mean softplus(-fake_logits)``
    (Goodfellow et al. 2014, arXiv:1406.2661, section 3): the binary cross-entropy of the
    generated samples against label 1; its gradient is largest where the discriminator
    rejects them. Pair it with :func:`minimax_critic_loss`.

    Args:
        fake_logits: ``(B, ...)`` critic logits of generated samples (not detached).

    Returns:
        A 0-d tensor in the logits' dtype, ``>= 0``.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> gan.non_saturating_generator_loss(torch.tensor([0.0]))  # log 2
        tensor(0.6931)
    """
    _check_scores(("fake_logits",), fake_logits)
    return nn.functional.softplus(-fake_logits).mean()


def hinge_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The hinge critic loss ``mean relu(1 - real_scores) + mean relu(1 + fake_scores)``
    (Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018, arXiv:1802.05957).

    Args:
        real_scores, fake_scores: ``(B_real, ...)`` and ``(B_fake, ...)`` raw critic outputs,
            one floating dtype and device; pass the scores of ``fake.detach()``.

    Returns:
        A 0-d tensor in the scores' dtype, ``>= 0``.

    Raises:
        TypeError / ValueError: as :func:`minimax_critic_loss`.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> gan.hinge_critic_loss(torch.tensor([2.0, 0.5]), torch.tensor([-3.0]))
        tensor(0.2500)
    """
    _check_scores(("real_scores", "fake_scores"), real_scores, fake_scores)
    return torch.relu(1 - real_scores).mean() + torch.relu(1 + fake_scores).mean()


def hinge_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The hinge GAN's generator loss ``-mean fake_scores`` (Lim & Ye 2017, arXiv:1705.02894;
    Miyato et al. 2018, arXiv:1802.05957), the same formula as
    :func:`wasserstein_generator_loss`.

    Args:
        fake_scores: ``(B, ...)`` raw critic outputs of generated samples (not detached).

    Returns:
        A 0-d tensor in the scores' dtype.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> gan.hinge_generator_loss(torch.tensor([1.0, 2.0]))
        tensor(-1.5000)
    """
    return wasserstein_generator_loss(fake_scores)


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The Wasserstein critic loss ``mean fake_scores - mean real_scores`` (Arjovsky et al. 2017,
    arXiv:1701.07875): minus the critic's estimate of the Wasserstein-1 distance, valid when
    the critic is kept 1-Lipschitz, by :func:`clip_weights_` after each critic step as in the
    paper, or by :func:`gradient_penalty` (:func:`wgan_gp_critic_loss` is this loss plus it).

    Args:
        real_scores, fake_scores: ``(B_real, ...)`` and ``(B_fake, ...)`` raw critic outputs,
            one floating dtype and device; pass the scores of ``fake.detach()``.

    Returns:
        A 0-d tensor in the scores' dtype.

    Raises:
        TypeError / ValueError: as :func:`minimax_critic_loss`.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> gan.wasserstein_critic_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.5]))
        tensor(-1.5000)
    """
    _check_scores(("real_scores", "fake_scores"), real_scores, fake_scores)
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The Wasserstein generator loss ``-mean fake_scores`` (Arjovsky et al. 2017,
    arXiv:1701.07875).

    Args:
        fake_scores: ``(B, ...)`` raw critic outputs of generated samples (not detached).

    Returns:
        A 0-d tensor in the scores' dtype.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> gan.wasserstein_generator_loss(torch.tensor([1.0, 2.0]))
        tensor(-1.5000)
    """
    _check_scores(("fake_scores",), fake_scores)
    return -fake_scores.mean()


@torch.no_grad()
def clip_weights_(
    parameters: nn.Module | torch.Tensor | Iterable[torch.Tensor], clip_value: float = 0.01
) -> None:
    """Clamp every parameter into ``[-clip_value, clip_value]`` in place, the WGAN critic's
    Lipschitz constraint (Arjovsky et al. 2017, arXiv:1701.07875, Algorithm 1: ``c = 0.01``,
    applied to all critic parameters after each critic update). NaN entries stay NaN.

    Args:
        parameters: a module (all its ``parameters()``), a tensor or an iterable of tensors,
            as ``torch.nn.utils.clip_grad_value_`` takes.
        clip_value: the bound ``c``, > 0.

    Raises:
        TypeError: a parameter is not a floating tensor, ``clip_value`` not a number.
        ValueError: ``clip_value`` not finite or <= 0.

    Example:
        >>> import torch
        >>> from fastgen import gan
        >>> critic = torch.nn.Linear(2, 1)
        >>> gan.clip_weights_(critic, clip_value=0.01)
        >>> bool(critic.weight.abs().max() <= 0.01)
        True
    """
    clip_value = check_number("clip_value", clip_value, minimum=0, exclusive=True)
    if isinstance(parameters, nn.Module):
        parameters = parameters.parameters()
    elif isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    for index, parameter in enumerate(parameters):
        check_tensor(f"parameters[{index}]", parameter).clamp_(-clip_value, clip_value)
