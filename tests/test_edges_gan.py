"""Gradient penalties with a critic whose output does not depend on its input: refused with
an error naming ``critic`` (never autograd's internal "not used in the graph" message), on
both backends; a critic that depends on only part of the batch is still penalised."""

import pytest
import torch

import fastgen.gan as gan
from fastgen.backend import TRITON_AVAILABLE

BACKENDS = ["torch"] + (["triton"] if TRITON_AVAILABLE else [])
WEIGHT = torch.ones(1, requires_grad=True)
# Critics with no path from their input to their output.
CRITICS = {
    "constant": lambda x: torch.zeros(x.shape[0], dtype=x.dtype),
    "detached": lambda x: x.detach().sum(-1),
    "parameter-only": lambda x: (WEIGHT * torch.ones(x.shape[0])).to(x.dtype),
}


def _call(name, critic, real, fake, backend):
    if name in ("gradient_penalty", "wgan_gp_critic_loss"):
        return getattr(gan, name)(critic, real, fake, backend=backend)
    return getattr(gan, name)(critic, real, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("critic", list(CRITICS))
@pytest.mark.parametrize(
    "name", ["gradient_penalty", "r1_penalty", "r2_penalty", "wgan_gp_critic_loss"]
)
def test_input_independent_critic_is_refused(name, critic, backend, device):
    real, fake = torch.randn(3, 2, device=device), torch.randn(3, 2, device=device)
    with pytest.raises(ValueError, match="critic output does not depend on its input"):
        _call(name, CRITICS[critic], real, fake, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_partly_dependent_critic_is_penalised(backend, device):
    """Rows 0, 1 have gradient (1, 1) (norm sqrt 2), rows 2, 3 none: R1 with gamma = 2 is
    mean(2, 2, 0, 0) = 1 exactly."""
    real = torch.randn(4, 2, device=device)

    def critic(x):
        return torch.cat([x[:2].sum(-1), x[2:].detach().sum(-1)])

    value = gan.r1_penalty(critic, real, gamma=2.0, backend=backend)
    torch.testing.assert_close(value.cpu(), torch.tensor(1.0))
