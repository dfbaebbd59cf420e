"""VAEs (question 4b): KL term, ELBO <= IWAE <= log p(x), reparameterised gradients, shapes, bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from genverify.models.functional import kl_vae_torch
from genverify.models.vae import BiasAfterConvTranspose2d, ConvVAE, MLPVAE, VAEBase
from genverify.numerics import kl_vae


def _tiny_mlp_vae(seed=0, n_features=3, latent_dim=1):
    torch.manual_seed(seed)
    return MLPVAE(n_features, hidden_features=(4,), latent_dim=latent_dim).double().eval()


def test_closed_form_kl_equals_registry_kl_vae_summed_over_latents():
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(5, 4, 2, 2, generator=gen, dtype=torch.float64)
    log_var = torch.randn(5, 4, 2, 2, generator=gen, dtype=torch.float64)
    got = VAEBase.kl(mu, log_var).numpy()
    registry = kl_vae(mu.numpy(), np.exp(0.5 * log_var.numpy())).reshape(5, -1).sum(1)
    torch_fn = kl_vae_torch(mu, log_var).reshape(5, -1).sum(1).numpy()
    # Independent hand-written form: log(1/sigma) + (sigma^2 + mu^2)/2 - 1/2 per latent.
    sigma = np.exp(0.5 * log_var.numpy())
    hand = (np.log(1 / sigma) + (sigma ** 2 + mu.numpy() ** 2) / 2 - 0.5).reshape(5, -1).sum(1)
    np.testing.assert_allclose(got, registry, rtol=1e-12)
    np.testing.assert_allclose(got, torch_fn, rtol=1e-12)
    np.testing.assert_allclose(got, hand, rtol=1e-12)


def test_closed_form_kl_agrees_with_monte_carlo_estimate():
    gen = torch.Generator().manual_seed(1)
    mu = torch.tensor([0.3, -1.2, 0.0, 2.0], dtype=torch.float64)
    log_var = torch.tensor([0.0, -1.0, 0.7, -2.5], dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
    p = torch.distributions.Normal(torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64))
    z = mu + torch.exp(0.5 * log_var) * torch.randn(200_000, 4, generator=gen, dtype=torch.float64)
    terms = (q.log_prob(z) - p.log_prob(z)).sum(1)
    est, se = float(terms.mean()), float(terms.std()) / math.sqrt(len(terms))
    exact = float(VAEBase.kl(mu[None], log_var[None])[0])
    # 5 standard errors: two-sided false-alarm rate about 6e-7.
    assert abs(est - exact) <= 5 * se, (est, exact, se)


def _exact_log_marginal(vae: MLPVAE, x: torch.Tensor) -> float:
    """log p(x) = log ∫ p(x|z) N(z; 0, 1) dz for a 1-D latent, by the trapezoid rule on [-12, 12].

    The decoder is a ReLU net, so the integrand has kinks: the error is O(h^2),
    about 1e-6 at h = 1.2e-3, far below the Monte Carlo tolerances used here.
    """
    z = torch.linspace(-12.0, 12.0, 20_001, dtype=torch.float64)
    with torch.no_grad():
        log_px = vae.log_likelihood(x.expand(len(z), -1), vae.decode(z[:, None]))
    dens = torch.exp(log_px) * torch.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi)
    return math.log(float(torch.trapezoid(dens, z)))


def test_elbo_below_iwae_which_tightens_with_k_towards_exact_log_likelihood():
    vae = _tiny_mlp_vae(seed=2)
    with torch.no_grad():
        # A sharper decoder makes the true posterior narrow and far from the
        # encoder's q, so the gaps L_k - L_1 are large enough to resolve.
        for p in vae.decoder.parameters():
            p.mul_(3.0)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=torch.float64)
    exact = torch.tensor([_exact_log_marginal(vae, x) for x in images], dtype=torch.float64)
    assert math.isclose(float(torch.logsumexp(exact, 0)), 0.0, abs_tol=1e-8)  # a distribution over {0,1}^3

    gen = torch.Generator().manual_seed(3)
    reps = 400
    x = images.repeat(reps, 1)
    with torch.no_grad():
        elbo = vae.elbo(x, generator=gen).reshape(reps, -1)
    est = {k: vae.iwae_log_likelihood(x, k, generator=gen, chunk=50).reshape(reps, -1) for k in (1, 10, 200)}

    def mean_se(t):
        return t.mean(0), t.std(0) / math.sqrt(reps)

    # Every comparison allows 5 SE (one-sided false alarm ~3e-7 each, ~1e-5 for all).
    m_elbo, se_elbo = mean_se(elbo)
    m1, se1 = mean_se(est[1])
    assert (abs(m_elbo - m1) <= 5 * torch.hypot(se_elbo, se1)).all()           # L_1 is the ELBO
    assert (m_elbo <= exact + 5 * se_elbo).all()                               # ELBO <= log p(x)
    m200, se200 = mean_se(est[200])
    assert (m200 <= exact + 5 * se200).all()                                   # L_200 still a bound
    # Tightening, summed over the 8 images (the log-likelihood of the whole set):
    gap_1_10, se_a = mean_se((est[10] - est[1]).sum(1))
    gap_10_200, se_b = mean_se((est[200] - est[10]).sum(1))
    assert gap_1_10 - 5 * se_a > 0, (gap_1_10, se_a)                            # L_10 > L_1
    assert gap_10_200 - 5 * se_b > 0, (gap_10_200, se_b)                        # L_200 > L_10
    assert float((exact - m200).sum()) < 0.1 * float((exact - m_elbo).sum())   # and much tighter


def test_reparameterised_gradients_agree_with_finite_differences():
    vae = _tiny_mlp_vae(seed=4, n_features=4, latent_dim=2)
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)

    def objective():
        # The same noise every call makes the single-sample ELBO a deterministic, smooth
        # function of the parameters, whose gradient is the reparameterisation estimator.
        return vae.elbo(x, generator=torch.Generator().manual_seed(5)).sum()

    params = list(vae.parameters())
    grads = torch.autograd.grad(objective(), params)
    h = 1e-6
    with torch.no_grad():
        for p, g in zip(params, grads):
            flat, gflat = p.view(-1), g.reshape(-1)
            for i in range(flat.numel()):
                old = float(flat[i])
                flat[i] = old + h
                up = float(objective())
                flat[i] = old - h
                down = float(objective())
                flat[i] = old
                fd = (up - down) / (2 * h)
                assert math.isclose(float(gflat[i]), fd, rel_tol=1e-5, abs_tol=1e-7), (float(gflat[i]), fd)


def test_decoder_log_likelihood_is_bernoulli_log_pmf():
    vae = _tiny_mlp_vae(seed=6, n_features=5)
    logits = torch.randn(3, 5, dtype=torch.float64)
    x = (torch.rand(3, 5) < 0.5).double()
    want = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(1)
    assert torch.allclose(vae.log_likelihood(x, logits), want, rtol=1e-12)


def test_conv_vae_reference_defaults_pad_28_to_32_and_use_64_latents():
    torch.manual_seed(0)
    vae = ConvVAE()
    assert (vae.pad_lo, vae.pad_hi) == (2, 2)
    assert vae.latent_shape == (16, 2, 2)
    x = (torch.rand(3, 1, 28, 28) < 0.3).float()
    mu, log_var = vae.encode(x)
    assert mu.shape == log_var.shape == (3, 16, 2, 2)
    assert vae.decode(mu).shape == (3, 1, 28, 28)
    assert vae.elbo(x).shape == (3,)
    s = vae.sample(4, generator=torch.Generator().manual_seed(0))
    assert s.shape == (4, 1, 28, 28) and set(s.unique().tolist()) <= {0.0, 1.0}


def test_small_conv_vae_elbo_below_iwae_estimate_on_average():
    torch.manual_seed(1)
    vae = ConvVAE(image_size=6, strides=(2, 4), hidden_channels=4, residual_channels=2, latent_channels=2).double()
    with torch.no_grad():
        # An untrained decoder barely depends on z; sharpen it so the IWAE gap is resolvable.
        for p in vae.decoder.parameters():
            p.mul_(3.0)
    gen = torch.Generator().manual_seed(2)
    x = (torch.rand(256, 1, 6, 6, generator=gen) < 0.4).double()
    with torch.no_grad():
        elbo = vae.elbo(x, generator=gen)
    iwae = vae.iwae_log_likelihood(x, 50, generator=gen)
    diff = iwae - elbo
    # 5 SE, one-sided false alarm ~3e-7.
    assert float(diff.mean()) - 5 * float(diff.std()) / math.sqrt(len(diff)) > 0


@pytest.mark.parametrize("c_in, c_out, size", [(3, 5, 4), (4, 1, 6), (2, 2, 1)])
def test_bias_after_transposed_conv_equals_torch_transposed_conv_in_value_and_gradients(c_in, c_out, size):
    torch.manual_seed(c_in * 10 + c_out)
    ours = BiasAfterConvTranspose2d(c_in, c_out, 4, stride=2, padding=1).double()
    ref = torch.nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1).double()
    ref.load_state_dict(ours.state_dict())  # the same parameters under the same names
    x = torch.randn(3, c_in, size, size, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, c_out, 2 * size, 2 * size, dtype=torch.float64)
    grads = []
    for module in (ours, ref):
        x.grad = None
        module.zero_grad()
        y = module(x)
        y.backward(g)
        grads.append((y.detach(), x.grad.clone(), module.weight.grad.clone(), module.bias.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_bias_after_transposed_conv_keeps_bfloat16_under_autocast():
    module = BiasAfterConvTranspose2d(4, 2, 4, stride=2, padding=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = module(torch.randn(2, 4, 3, 3))
    assert y.dtype == torch.bfloat16 and y.shape == (2, 2, 6, 6)


def test_same_seed_gives_identical_models_and_elbos():
    x = (torch.rand(4, 784, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    out = []
    for _ in range(2):
        torch.manual_seed(7)
        vae = MLPVAE(hidden_features=(32,), latent_dim=4)
        out.append(vae.elbo(x, generator=torch.Generator().manual_seed(8)))
    assert torch.equal(out[0], out[1])


def test_bad_input_raises_value_error_naming_the_argument():
    vae = MLPVAE(hidden_features=(8,), latent_dim=2)
    with pytest.raises(ValueError, match="x must have shape"):
        vae.elbo(torch.rand(2, 1, 28, 27))
    with pytest.raises(ValueError, match=r"x must have values in \[0, 1\]"):
        vae.loss(-torch.rand(2, 784))
    with pytest.raises(ValueError, match="k must be"):
        vae.iwae_log_likelihood(torch.rand(2, 784), k=0)
    with pytest.raises(ValueError, match="x must be a torch.Tensor"):
        vae.elbo(np.zeros((2, 784)))
    with pytest.raises(ValueError, match="strides"):
        ConvVAE(strides=(3,))
    with pytest.raises(ValueError, match="strides"):
        ConvVAE(strides=())
    with pytest.raises(ValueError, match="latent_channels"):
        ConvVAE(latent_channels=0)
