"""NICE (question 4a): exact invertibility, log-determinant, normalisation, logistic prior."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from genverify.models.nice import NICE, LogisticPrior, logistic_log_prob


@functools.lru_cache(maxsize=None)
def _small_flow(n_features: int, seed: int = 0) -> NICE:
    """A float64 NICE with a non-trivial scaling layer (s = 0 would hide a wrong log-det)."""
    torch.manual_seed(seed)
    flow = NICE(n_features, n_coupling_blocks=3, n_hidden_layers=2, hidden_features=16).double()
    with torch.no_grad():
        flow.log_scale.copy_(torch.linspace(-0.7, 0.5, n_features, dtype=torch.float64))
    return flow.eval()


@settings(max_examples=40)
@given(n_features=st.integers(2, 9), batch=st.integers(1, 4), data=st.data())
def test_inverse_of_forward_is_identity_to_float64_precision(n_features, batch, data):
    flow = _small_flow(n_features)
    values = data.draw(st.lists(st.floats(-20.0, 20.0, allow_nan=False), min_size=n_features * batch,
                                max_size=n_features * batch))
    x = torch.tensor(values, dtype=torch.float64).reshape(batch, n_features)
    with torch.no_grad():
        z, _ = flow(x)
        back = flow.inverse(z)
    # Additive couplings subtract exactly what they added: only rounding of
    # intermediate magnitudes (|shift| up to ~100) separates back from x.
    scale = 1.0 + float(z.abs().max())
    assert torch.allclose(back, x, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("n_features", [2, 3, 6])
def test_log_det_equals_log_abs_det_of_autograd_jacobian(n_features):
    flow = _small_flow(n_features)
    x = torch.randn(n_features, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    jac = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], x)
    sign, logabsdet = torch.linalg.slogdet(jac)
    with torch.no_grad():
        _, log_det = flow(x[None])
    assert abs(float(sign)) == 1.0
    assert math.isclose(float(log_det[0]), float(logabsdet), abs_tol=1e-10)


@pytest.mark.parametrize("n_features", [2, 3, 5])
def test_each_layer_log_abs_det_jacobian_equals_the_autograd_slogdet(n_features):
    flow = _small_flow(n_features)
    x = torch.randn(n_features, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for layer in flow.transforms():
        jac = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0], x)
        with torch.no_grad():
            y = layer(x[None])
            got = layer.log_abs_det_jacobian(x[None], y)
        assert got.shape == (1,)
        assert math.isclose(float(got[0]), float(torch.linalg.slogdet(jac)[1]), abs_tol=1e-10)
        x = y[0]


def test_model_log_det_is_the_sum_of_its_layers_terms():
    # As torch.distributions.ComposeTransform: log|det J_f| = sum over layers of log|det J_layer|.
    flow = _small_flow(6)
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        h, terms = x[:, flow.perm], []
        for layer in flow.transforms():
            y = layer(h)
            terms.append(layer.log_abs_det_jacobian(h, y))
            h = y
        z, log_det = flow(x)
    assert len(terms) == len(flow.couplings) + 1
    assert torch.equal(log_det, sum(terms))
    assert torch.equal(z, h[:, flow.inv_perm])
    assert torch.allclose(log_det, flow.log_scale.sum().expand(4), rtol=0, atol=0)


def test_a_checkpoint_with_the_old_log_scale_key_still_loads():
    flow = _small_flow(4)
    state = {("log_scale" if k == "scaling.log_scale" else k): v for k, v in flow.state_dict().items()}
    torch.manual_seed(9)
    other = NICE(4, n_coupling_blocks=3, n_hidden_layers=2, hidden_features=16).double()
    other.load_state_dict(state)
    assert torch.equal(other.log_scale, flow.log_scale)


def test_log_prob_is_change_of_variables_with_autograd_jacobian():
    flow = _small_flow(4)
    x = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z = flow(x[None])[0][0].detach()
    jac = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], x)
    # Hand-written logistic density: p(z) = e^{-z} / (1 + e^{-z})^2.
    prior = sum(-float(v) - 2 * math.log1p(math.exp(-float(v))) for v in z)
    want = prior + float(torch.linalg.slogdet(jac)[1])
    assert math.isclose(float(flow.log_prob(x[None]).detach()[0]), want, rel_tol=1e-12, abs_tol=1e-12)


def test_two_dimensional_nice_density_integrates_to_one():
    flow = _small_flow(2, seed=3)
    # Logistic tails decay like e^{-|z|}; with |s| <= 0.7 the mass outside
    # [-25, 25]^2 is about 1e-5 (1e-8 outside [-40, 40]^2), far below the 1e-3 asked. The
    # integrand has ReLU kinks, so the trapezoid rule's error is O(h^2), about 1e-4 at h = 0.05.
    grid = torch.linspace(-25.0, 25.0, 1001, dtype=torch.float64)
    xs, ys = torch.meshgrid(grid, grid, indexing="ij")
    pts = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
    with torch.no_grad():
        dens = torch.cat([flow.log_prob(c).exp() for c in pts.split(2_000_000)]).reshape(xs.shape)
    mass = float(torch.trapezoid(torch.trapezoid(dens, grid, dim=1), grid))
    assert math.isclose(mass, 1.0, abs_tol=1e-3), mass
    # A flow that forgot the scaling layer's log-det would integrate to e^{-sum s}.
    assert abs(math.exp(-float(flow.log_scale.detach().sum())) - 1.0) > 0.1


@given(z=st.floats(-700.0, 700.0, allow_nan=False))
@example(z=21.0)  # past F.softplus's linear threshold (20), where a softplus form loses e^{-z}
def test_logistic_log_density_matches_scipy(z):
    got = float(logistic_log_prob(torch.tensor(z, dtype=torch.float64)))
    assert math.isclose(got, float(stats.logistic.logpdf(z)), rel_tol=1e-12, abs_tol=1e-12)


def test_logistic_log_density_matches_torch_distributions():
    from torch.distributions import TransformedDistribution, Uniform
    from torch.distributions.transforms import SigmoidTransform

    # logistic = logit(U(0, 1)); torch's version loses precision in the far
    # tails (sigmoid saturates), so compare on |z| <= 30.
    zero, one = torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64)
    dist = TransformedDistribution(Uniform(zero, one), [SigmoidTransform().inv])
    z = torch.linspace(-30, 30, 601, dtype=torch.float64)
    assert torch.allclose(logistic_log_prob(z), dist.log_prob(z), rtol=1e-9, atol=1e-9)
    prior = LogisticPrior(3)
    zz = z[:600].reshape(200, 3)
    assert torch.allclose(prior.log_prob(zz), dist.log_prob(zz).sum(-1), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_prior_samples_follow_the_scaled_logistic_distribution(temperature):
    gen = torch.Generator().manual_seed(4)
    z = LogisticPrior(5).sample(4000, temperature=temperature, generator=gen, dtype=torch.float64)
    # KS test on 20,000 draws; rejecting at p < 1e-6 is a 1-in-a-million false alarm.
    p = stats.kstest(z.reshape(-1).numpy() / temperature, stats.logistic.cdf).pvalue
    assert p > 1e-6, p
    # The reference sampled N(0, 1) instead; that must be detectably different.
    assert stats.kstest(np.random.default_rng(0).standard_normal(20000), stats.logistic.cdf).pvalue < 1e-6


def test_sample_is_reproducible_with_a_generator_and_has_image_shape():
    torch.manual_seed(0)
    flow = NICE(784, n_coupling_blocks=2, n_hidden_layers=1, hidden_features=8)
    a = flow.sample(3, generator=torch.Generator().manual_seed(5))
    b = flow.sample(3, generator=torch.Generator().manual_seed(5))
    assert a.shape == (3, 1, 28, 28)
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()


def test_log_prob_accepts_flat_and_image_shaped_batches_equally():
    torch.manual_seed(0)
    flow = NICE(784, n_coupling_blocks=2, n_hidden_layers=1, hidden_features=8)
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(flow.log_prob(x), flow.log_prob(x.reshape(2, 784)))


def test_bad_input_raises_value_error_naming_the_argument():
    flow = NICE(784, n_coupling_blocks=1, n_hidden_layers=1, hidden_features=4)
    with pytest.raises(ValueError, match="x must have shape"):
        flow.log_prob(torch.rand(2, 1, 27, 28))
    with pytest.raises(ValueError, match=r"x must have values in \[0, 1\]"):
        flow.loss(torch.rand(2, 784) + 1.0)
    with pytest.raises(ValueError, match="x contains NaN"):
        flow.loss(torch.full((2, 784), float("nan")))
    with pytest.raises(ValueError, match="temperature"):
        flow.sample(2, temperature=0.0)
    with pytest.raises(ValueError, match="n must be"):
        flow.sample(0)
    with pytest.raises(ValueError, match="n_features"):
        NICE(1)
    with pytest.raises(ValueError, match="hidden_features"):
        NICE(4, hidden_features=0)
    with pytest.raises(ValueError, match="image_shape"):
        NICE(10, image_shape=(1, 3, 3))
