"""genverify.testing's flow and VAE checks (issue 17, questions 4 and 6): invertibility and log|det J|
against autograd for Transforms and modules; ELBO <= importance-weighted bound, tightening with k."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from torch import nn
from torch.distributions import transforms as T

from genverify.core import ParameterError
from genverify.models import MLPVAE, NICE, LeakyReLUTransform
from genverify.models.nice import AdditiveCoupling
from genverify.testing import assert_elbo_bound, assert_flow


class LeakyFlow(nn.Module):
    """forward returns (x, log|det|); ``sign`` = -1 reports the inverse's log-determinant (a bug)."""

    def __init__(self, alpha=0.1, sign=1.0, inverse_scale=None):
        super().__init__()
        self.alpha, self.sign = alpha, sign
        self.inverse_scale = alpha if inverse_scale is None else inverse_scale

    def forward(self, z):
        return torch.where(z > 0, z, self.alpha * z), self.sign * (z <= 0).sum(-1) * math.log(self.alpha)

    def inverse(self, x):
        return torch.where(x > 0, x, x / self.inverse_scale)


def message_of(fn, *args, **kw) -> str:
    with pytest.raises(AssertionError) as exc:
        fn(*args, **kw)
    return str(exc.value)


# ----------------------------------------------------------------- flows


@pytest.mark.parametrize("flow", [LeakyReLUTransform(0.1), T.IndependentTransform(LeakyReLUTransform(0.2), 1),
                                  T.ExpTransform(), T.SigmoidTransform(),
                                  T.ComposeTransform([T.AffineTransform(1.0, 3.0), T.TanhTransform()])],
                         ids=lambda t: type(t).__name__)
def test_torch_transforms_pass(flow):
    assert_flow(flow)


def test_modules_with_either_log_det_convention_pass():
    torch.manual_seed(0)
    assert_flow(LeakyFlow())  # forward returns (y, log_det)
    assert_flow(AdditiveCoupling(6, 8, 2, flip=True), dim=6)  # log_abs_det_jacobian(x, y)
    assert_flow(NICE(n_features=6, n_coupling_blocks=2, n_hidden_layers=1, hidden_features=8), dim=6)


def test_the_inverses_log_det_in_forward_fails_and_is_named():
    message = message_of(assert_flow, LeakyFlow(sign=-1.0))
    assert message.startswith("LeakyFlow is not a valid flow layer on R^3: at x = ")
    assert "log|det J| is wrong" in message and "the autograd Jacobian gives -2.302585093" in message
    assert "the log-determinant of the inverse" in message


def test_a_wrong_inverse_fails_with_the_point():
    message = message_of(assert_flow, LeakyFlow(inverse_scale=10.0))
    assert "not invertible: inverse(forward(x)) != x" in message and "inverse(forward(x)) = " in message


def test_a_module_without_log_det_or_inverse_is_named():
    class NoLogDet(nn.Module):
        def forward(self, z):
            return 2 * z

        def inverse(self, x):
            return x / 2

    assert "reports no log|det J|" in message_of(assert_flow, NoLogDet())
    with pytest.raises(ParameterError, match="no inverse"):
        assert_flow(nn.Linear(3, 3))


def test_the_users_module_is_not_modified():
    flow = LeakyFlow()
    layer = nn.Linear(2, 2)
    flow.layer = layer
    assert_flow(flow)
    assert layer.weight.dtype == torch.float32 and flow.training


# ----------------------------------------------------------------- VAE bounds


@pytest.fixture(scope="module")
def vae_and_x():
    torch.manual_seed(0)
    return MLPVAE(n_features=784, hidden_features=(32,), latent_dim=4), (torch.rand(8, 784) < 0.3).float()


def test_the_projects_vae_satisfies_the_bounds(vae_and_x):
    vae, x = vae_and_x
    assert_elbo_bound(vae, x)


class ShiftedVAE:
    """The project's VAE with its encoder's means moved to 2 (a sizeable KL), optionally with bugs."""

    def __init__(self, vae, kl_sign=-1.0, average_log_weights=False):
        self.vae, self.kl_sign, self.average = vae, kl_sign, average_log_weights

    def log_weights(self, x, k, generator=None):
        mu, log_var = self.vae.encode(x)
        mu = mu + 2.0
        eps = torch.randn((k, *mu.shape), generator=generator)
        z = mu + torch.exp(0.5 * log_var) * eps
        log_q = (-0.5 * (eps**2 + math.log(2 * math.pi)) - 0.5 * log_var).sum(-1)
        log_prior = (-0.5 * (z**2 + math.log(2 * math.pi))).sum(-1)
        logits = self.vae.decode(z.reshape(-1, mu.shape[-1])).reshape(k, x.shape[0], -1)
        log_px = self.vae.log_likelihood(x.expand(k, *x.shape).reshape(k * x.shape[0], -1),
                                         logits.reshape(k * x.shape[0], -1)).reshape(k, -1)
        return log_px + log_prior - log_q

    def elbo(self, x, generator=None):
        mu, log_var = self.vae.encode(x)
        mu = mu + 2.0
        z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=generator)
        return self.vae.log_likelihood(x, self.vae.decode(z).flatten(1)) + self.kl_sign * self.vae.kl(mu, log_var)

    def iwae(self, x, k, generator=None):
        w = self.log_weights(x, k, generator)
        return w.mean(0) if self.average else torch.logsumexp(w, 0) - math.log(k)


def test_a_kl_added_instead_of_subtracted_breaks_elbo_below_the_bound(vae_and_x):
    vae, x = vae_and_x
    assert_elbo_bound(ShiftedVAE(vae), x)
    message = message_of(assert_elbo_bound, ShiftedVAE(vae, kl_sign=+1.0), x)
    assert "ELBO > L_1" in message and "KL term added instead of subtracted" in message


def test_an_averaged_log_weight_bound_does_not_tighten(vae_and_x):
    vae, x = vae_and_x
    message = message_of(assert_elbo_bound, ShiftedVAE(vae, average_log_weights=True), x)
    assert "does not tighten with k" in message and "logsumexp(log_w) - log k" in message


def test_log_weights_alone_are_a_model_and_a_missing_protocol_is_named(vae_and_x):
    vae, x = vae_and_x

    class OnlyWeights:
        def __init__(self):
            self.inner = ShiftedVAE(vae)

        def log_weights(self, x, k, generator=None):
            return self.inner.log_weights(x, k, generator)

    assert_elbo_bound(OnlyWeights(), x)
    with pytest.raises(ParameterError, match=r"must have elbo\(x\) and iwae_log_likelihood"):
        assert_elbo_bound(object(), x)
