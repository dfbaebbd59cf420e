"""BernoulliMixture (issue 4, questions 2-3): its E and M steps against the float64 references of
genverify.numerics.em (the M-step it runs is numerics' own m_step_from_statistics), EM's monotonicity,
the M-step as an argmax, normalisation, recovery of planted parameters, scikit-learn's estimator checks
and its compatibility shim, and bad input."""

from __future__ import annotations

import os

import itertools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from sklearn.utils.estimator_checks import parametrize_with_checks

from genverify.models import BernoulliMixture, bernoulli_mixture, em_native
from genverify.models.bernoulli_mixture import e_step
from genverify.models.em_kernels import EMKernel
from genverify.numerics import em as ref

# EM runs capped by max_iter on purpose warn that they did not converge
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

BACKENDS = ["int8", "float32"]
CPU = torch.device("cpu")
needs_native = pytest.mark.skipif(em_native.load() is None,
                                  reason=f"the native EM kernel is unavailable here ({em_native.status()})")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """CI runs two pytest workers on two cores: one torch thread each avoids OpenMP spin-waiting on an
    oversubscribed CPU, which makes these small problems 5-50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _problem(seed: int, n: int, d: int, k: int, p_lo: float = 0.005):
    """Random binary data, weights on the simplex and probabilities inside (p_lo, 1 - p_lo)."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, d)) < rng.uniform(0.05, 0.95, d)).astype(np.uint8)
    weights = rng.dirichlet(np.ones(k))
    means = rng.uniform(p_lo, 1 - p_lo, (k, d))
    return rng, x, weights, means


def _scale(x, means) -> float:
    """Largest sum of |terms| that the one-product E-step x.w_k + c_k adds up for one image: the
    magnitude that float32 rounding (and the int8 kernel's 2^-23 logits) is relative to."""
    log1m = np.log1p(-means)
    return float(1.0 + (x @ np.abs(np.log(means) - log1m).T + np.abs(log1m).sum(axis=1)).max())


def _prior_log_density(means: np.ndarray, alpha: float) -> float:
    """log Beta(1 + alpha, 1 + alpha) density of every p, up to the constant."""
    return float(alpha * (np.log(means) + np.log1p(-means)).sum())


problems = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 12), st.integers(1, 5))


# ------------------------------------------------------------------ E and M steps vs float64 references


@given(problems)
def test_e_step_matches_float64_reference(prob):
    seed, n, d, k = prob
    _, x, weights, means = _problem(seed, n, d, k)
    want_norm = ref.mixture_log_likelihood_samples(x, weights, means)
    want_log_resp = ref.log_responsibilities(x, weights, means)
    # float64 torch: the same formula, so agreement to rounding
    got_norm, got_log_resp = e_step(torch.from_numpy(x).double(), torch.from_numpy(weights), torch.from_numpy(means))
    np.testing.assert_allclose(got_norm.numpy(), want_norm, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_log_resp.numpy(), want_log_resp, rtol=1e-10, atol=1e-10)
    # float32 torch and the estimator's kernels: float32 rounding (2^-24) of terms summing to `scale`
    atol = 1e-6 * _scale(x, means)
    got_norm32, got_log_resp32 = e_step(torch.from_numpy(x).float(), torch.from_numpy(weights),
                                        torch.from_numpy(means))
    np.testing.assert_allclose(got_norm32.numpy(), want_norm, atol=atol, rtol=0)
    for backend in BACKENDS:
        kernel = EMKernel(x, CPU, backend, chunk_rows=int(seed % 7) + 1)
        joint = kernel.joint(weights, means)
        np.testing.assert_allclose(logsumexp(joint, axis=1), want_norm, atol=atol, rtol=0)
        total, _, _ = kernel.statistics(weights, means)
        assert abs(total - want_norm.sum()) <= atol * n


@given(problems, st.sampled_from([1e-6, 0.01, 1.0]))
def test_m_step_matches_float64_reference(prob, alpha):
    seed, n, d, k = prob
    rng, x, _, _ = _problem(seed, n, d, k)
    resp = rng.dirichlet(np.full(k, 0.3), size=n)
    want_w, want_p = ref.m_step(x, resp, prior=(1 + alpha, 1 + alpha))
    # the update from exact float64 statistics, with alpha as pseudo-counts: the reference to rounding
    got_w, got_p = ref.m_step_from_statistics(resp.sum(axis=0), resp.T @ x, n, pseudo_counts=(alpha, alpha))
    np.testing.assert_allclose(got_w, want_w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got_p, want_p, rtol=1e-10, atol=1e-12)
    for backend in BACKENDS:
        kernel = EMKernel(x, CPU, backend, chunk_rows=int(seed % 5) + 1)
        nk, sums = kernel.resp_sums(resp)
        got_w, got_p = BernoulliMixture(k, alpha=alpha)._params_from_sums(nk, sums, n)
        # fixed point / float32 responsibilities: absolute 1.2e-7 per entry, summed over <= 40 rows
        np.testing.assert_allclose(got_w, want_w, atol=1e-6, rtol=0)
        np.testing.assert_allclose(got_p, want_p, atol=1e-6 / (want_w.min() * n + 2 * alpha) + 1e-9, rtol=0)


@given(problems, st.sampled_from(BACKENDS))
def test_fused_em_iteration_equals_reference_e_step_then_m_step(prob, backend):
    seed, n, d, k = prob
    _, x, weights, means = _problem(seed, n, d, k)
    alpha = 0.01
    want_w, want_p = ref.m_step(x, ref.responsibilities(x, weights, means), prior=(1 + alpha, 1 + alpha))
    total, nk, sums = EMKernel(x, CPU, backend, chunk_rows=int(seed % 9) + 1).statistics(weights, means)
    got_w, got_p = BernoulliMixture(k, alpha=alpha)._params_from_sums(nk, sums, n)
    assert abs(total - ref.mixture_log_likelihood(x, weights, means)) <= 1e-6 * _scale(x, means) * n
    # responsibilities carry the E-step's float32-level error (1e-6 * scale) into the sums
    tol = 2e-6 * _scale(x, means)
    np.testing.assert_allclose(got_w, want_w, atol=tol, rtol=0)
    np.testing.assert_allclose(got_p, want_p, atol=tol * n / (want_w.min() * n + 2 * alpha), rtol=0)


def test_the_estimator_runs_the_numerics_m_step(monkeypatch):
    calls = []
    real = bernoulli_mixture.m_step_from_statistics

    def spy(*args, **kwargs):
        calls.append(kwargs["pseudo_counts"])
        return real(*args, **kwargs)

    monkeypatch.setattr(bernoulli_mixture, "m_step_from_statistics", spy)
    bm = BernoulliMixture(2, alpha=0.25, max_iter=3, tol=0.0, random_state=0).fit(_planted(1, 60, 6, 2)[0])
    assert calls == [(0.25, 0.25)] * (bm.n_iter_ + 1)  # the initial M-step, then one per iteration


# ------------------------------------------------------------------ EM properties


def _planted(seed: int, n: int, d: int, k: int):
    rng = np.random.default_rng(seed)
    means = np.where(rng.random((k, d)) < 0.5, 0.15, 0.85) + rng.uniform(-0.05, 0.05, (k, d))
    weights = rng.dirichlet(np.full(k, 5.0))
    z = rng.choice(k, size=n, p=weights)
    return (rng.random((n, d)) < means[z]).astype(np.uint8), z, weights, means


@given(st.integers(0, 2**32 - 1), st.integers(10, 150), st.integers(1, 16), st.integers(1, 5),
       st.sampled_from([1e-6, 0.01, 1.0]), st.sampled_from(BACKENDS),
       st.sampled_from(["k-means++", "random", "random_from_data"]))
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=30)
def test_em_log_likelihood_never_decreases(seed, n, d, k, alpha, backend, init):
    """EM's guarantee (Bishop 9.4), for the MAP objective log P(X | pi, p) + log Beta prior: it never
    decreases. Each iteration is replayed from the estimator's own steps and the objective evaluated
    in float64 by the reference; the slack covers the float32-level rounding of the parameters."""
    assume(k <= n)
    x = _planted(seed, n, d, k)[0]
    bm = BernoulliMixture(k, alpha=alpha, backend=backend, init_params=init, random_state=seed % 1000)
    kernel = EMKernel(x, CPU, backend)
    rng = np.random.RandomState(seed % 1000)
    weights, means = bm._params_from_sums(*kernel.resp_sums(bm._initial_resp(kernel, x, rng)), n)
    objective = []
    for _ in range(25):
        objective.append(ref.mixture_log_likelihood(x, weights, means) + _prior_log_density(means, alpha))
        _, nk, sums = kernel.statistics(weights, means)
        weights, means = bm._params_from_sums(nk, sums, n)
    slack = 1e-6 * np.abs(objective).max() + 1e-9
    assert np.all(np.diff(objective) >= -slack), np.diff(objective).min()
    # The estimator's recorded curve, the plain mean log-likelihood, evaluated by its own kernel: with
    # a negligible prior it too only rises, up to the kernel's float32-level error (1e-6 * scale).
    fit = BernoulliMixture(k, alpha=1e-9, backend=backend, init_params=init, random_state=0, tol=0.0,
                           max_iter=25).fit(x)
    assert np.all(np.diff(fit.lower_bounds_) >= -2e-6 * _scale(x, fit.means_))


@given(problems, st.sampled_from([1e-3, 0.5]))
@settings(max_examples=40)
def test_m_step_is_the_argmax_of_the_expected_complete_log_likelihood(prob, alpha):
    r"""Q(pi, p) + log prior at the M-step's output: gradient in p zero, gradient in pi equal to the
    Lagrange multiplier N in every coordinate (d/dpi_k Q = N_k/pi_k), and any perturbation lowers it."""
    seed, n, d, k = prob
    rng, x, _, _ = _problem(seed, n, d, k)
    resp = rng.dirichlet(np.full(k, 0.5), size=n)
    w, p = ref.m_step_from_statistics(resp.sum(axis=0), resp.T @ x, n, pseudo_counts=(alpha, alpha))
    nk = resp.sum(axis=0)
    assume(nk.min() > 1e-6)

    def objective(w_, p_):
        return ref.expected_complete_log_likelihood(x, resp, w_, p_) + _prior_log_density(p_, alpha)

    s = resp.T @ x
    grad_p = s / p - (nk[:, None] - s) / (1 - p) + alpha / p - alpha / (1 - p)
    scale = (s / p + (nk[:, None] - s) / (1 - p) + alpha / p + alpha / (1 - p)).max()
    assert np.abs(grad_p).max() <= 1e-10 * scale
    np.testing.assert_allclose(nk / w, n, rtol=1e-10)
    best = objective(w, p)
    for _ in range(5):  # perturb in logit / log space, staying inside (0, 1) and on the simplex
        p2 = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + 1e-2 * rng.standard_normal(p.shape))))
        assert objective(w, p2) < best
        if k > 1:
            w2 = w * np.exp(1e-2 * rng.standard_normal(k))
            w2 /= w2.sum()
            assert objective(w2, p) < best and objective(w2, p2) < best


@pytest.mark.parametrize("backend", BACKENDS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 10), st.integers(1, 4))
@settings(max_examples=15)
def test_mixture_pmf_sums_to_one_over_all_binary_images(backend, seed, d, k):
    _, x, _, _ = _problem(seed, max(k, 20), d, k)
    bm = BernoulliMixture(k, backend=backend, random_state=0, max_iter=5, tol=0.0).fit(x)
    images = np.array(list(itertools.product([0, 1], repeat=d)), dtype=np.uint8)
    # int8: logits rounded to 2^-23 of their largest, float32: rounding of sums of <= 10 terms
    assert abs(logsumexp(bm.score_samples(images))) <= 1e-5
    # and the float64 torch E-step is exact
    log_norm, _ = e_step(torch.from_numpy(images).double(), torch.from_numpy(bm.weights_),
                         torch.from_numpy(bm.means_))
    assert abs(logsumexp(log_norm.numpy())) <= 1e-12


@given(st.integers(0, 2**32 - 1), st.sampled_from(BACKENDS))
@settings(max_examples=8, deadline=None)
def test_planted_parameters_are_recovered_up_to_permutation(seed, backend):
    """N = 4000 from K = 3 well-separated components on D = 24 pixels. Each recovered p is within 5
    standard errors sqrt(p(1-p)/(N pi_k)) of the planted one, each weight within 5 sqrt(pi(1-pi)/N):
    two-sided false-alarm rate 5.7e-7 per comparison, 4.3e-5 for the 75 comparisons of one example."""
    n, d, k = 4000, 24, 3
    x, _, weights, means = _planted(seed, n, d, k)
    hard = np.round(means)
    assume(min(np.abs(hard[i] - hard[j]).sum() for i in range(k) for j in range(i)) >= 6)
    assume(weights.min() > 0.1)
    bm = BernoulliMixture(k, n_init=5, random_state=0, backend=backend, alpha=1e-6).fit(x)  # EM has local optima
    rows, cols = linear_sum_assignment(np.abs(means[:, None, :] - bm.means_[None, :, :]).sum(axis=2))
    got_p, got_w = bm.means_[cols], bm.weights_[cols]
    se_p = np.sqrt(means * (1 - means) / (n * weights[:, None]))
    se_w = np.sqrt(weights * (1 - weights) / n)
    assert np.all(np.abs(got_p - means) <= 5 * se_p), np.max(np.abs(got_p - means) / se_p)
    assert np.all(np.abs(got_w - weights) <= 5 * se_w), np.max(np.abs(got_w - weights) / se_w)


# ------------------------------------------------------------------ estimator interface


@parametrize_with_checks([BernoulliMixture(binarize=0.5),
                          BernoulliMixture(n_components=2, binarize=0.5, backend="float32", init_params="kmeans")])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_uint8_float32_and_float64_input_fit_identically():
    x = _planted(3, 300, 12, 3)[0]
    fits = [BernoulliMixture(3, random_state=0).fit(x.astype(dt)) for dt in (np.uint8, np.float32, np.float64, bool)]
    for f in fits[1:]:
        np.testing.assert_array_equal(f.means_, fits[0].means_)
        np.testing.assert_array_equal(f.weights_, fits[0].weights_)


def test_binarize_thresholds_like_bernoulli_nb():
    rng = np.random.default_rng(0)
    grey = rng.random((200, 10))
    a = BernoulliMixture(2, binarize=0.3, random_state=0).fit(grey)
    b = BernoulliMixture(2, random_state=0).fit((grey > 0.3).astype(np.uint8))
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.predict(grey), b.predict((grey > 0.3).astype(np.uint8)))


def test_fitted_attributes_and_methods_are_consistent():
    x, z, _, _ = _planted(5, 600, 16, 3)
    bm = BernoulliMixture(3, random_state=0).fit(x)
    assert bm.weights_.shape == (3,) and bm.means_.shape == (3, 16) and bm.n_features_in_ == 16
    assert abs(bm.weights_.sum() - 1) < 1e-12 and np.all((bm.means_ > 0) & (bm.means_ < 1))
    assert bm.converged_ and 1 <= bm.n_iter_ <= bm.max_iter and len(bm.lower_bounds_) == bm.n_iter_ + 1
    assert bm.lower_bound_ == bm.lower_bounds_[-1]
    assert bm.lower_bound_ == pytest.approx(bm.score(x), abs=1e-6)  # float32 exp in the fused pass
    assert bm.score(x) == pytest.approx(ref.mixture_log_likelihood(x, bm.weights_, bm.means_) / len(x), rel=1e-6)
    proba = bm.predict_proba(x)
    np.testing.assert_allclose(proba, ref.responsibilities(x, bm.weights_, bm.means_), atol=1e-5)
    np.testing.assert_array_equal(bm.predict(x), proba.argmax(axis=1))
    np.testing.assert_array_equal(bm.fit_predict(x), bm.predict(x))
    # BIC and AIC penalise K D + K - 1 free parameters
    n_params = 3 * 16 + 2
    assert bm.n_parameters() == n_params
    assert bm.bic(x) - bm.aic(x) == pytest.approx(n_params * (np.log(len(x)) - 2))
    one = BernoulliMixture(1, alpha=0.5).fit(x)  # K = 1: closed form p = (sum x + alpha) / (N + 2 alpha)
    p = (x.sum(axis=0) + 0.5) / (len(x) + 1.0)
    loglik = ref.bernoulli_log_likelihood(x, p[None, :]).sum()
    assert one.bic(x) == pytest.approx(-2 * loglik + 16 * np.log(len(x)), rel=1e-7)


def test_sample_draws_from_the_fitted_mixture():
    """Pixel frequencies of 20,000 samples within 5 standard errors of sum_k pi_k p_k (false-alarm
    rate 5.7e-7 per pixel, 9e-6 for the 16); component counts within 5 SE of N pi_k."""
    x = _planted(11, 800, 16, 3)[0]
    bm = BernoulliMixture(3, random_state=0).fit(x)
    n = 20000
    samples, labels = bm.sample(n)
    assert samples.shape == (n, 16) and samples.dtype == np.uint8 and set(np.unique(samples)) <= {0, 1}
    assert np.all(np.diff(labels) >= 0)
    marginal = bm.weights_ @ bm.means_
    assert np.all(np.abs(samples.mean(axis=0) - marginal) <= 5 * np.sqrt(marginal * (1 - marginal) / n))
    counts = np.bincount(labels, minlength=3)
    assert np.all(np.abs(counts - n * bm.weights_) <= 5 * np.sqrt(n * bm.weights_ * (1 - bm.weights_)))
    np.testing.assert_array_equal(bm.sample(5)[0], bm.sample(5)[0])  # seeded by random_state


def test_kernels_are_chunk_invariant_and_int8_matches_float32():
    _, x, weights, means = _problem(7, 500, 50, 6)
    results = {}
    for backend in BACKENDS:
        runs = [EMKernel(x, CPU, backend, chunk_rows=c).statistics(weights, means) for c in (1, 37, 500)]
        if backend == "int8":  # exact integer sums: identical whatever the chunking
            for r in runs[1:]:
                assert np.array_equal(r[1], runs[0][1]) and np.array_equal(r[2], runs[0][2])
        results[backend] = runs[-1]
    np.testing.assert_allclose(results["int8"][2], results["float32"][2], rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_n_by_k_by_d_intermediate_is_allocated(backend):
    """The largest single allocation of a whole fit stays far below one N x K x D float array."""
    from torch.profiler import ProfilerActivity, profile

    n, d, k = 3000, 200, 30
    x = (np.random.default_rng(0).random((n, d)) < 0.3).astype(np.uint8)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        BernoulliMixture(k, backend=backend, init_params="random", max_iter=3, random_state=0).fit(x)
    largest = max(e.cpu_memory_usage for e in prof.events())
    assert 0 < largest <= 4 * n * (d + 1)  # the data's one float32 / int8 copy on the device at most
    assert largest < n * k * d / 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu_fit():
    x = _planted(2, 2000, 64, 4)[0]
    cpu = BernoulliMixture(4, random_state=0, backend="float32").fit(x)
    gpu = BernoulliMixture(4, random_state=0, device="cuda").fit(x)
    np.testing.assert_allclose(gpu.means_, cpu.means_, atol=1e-4)
    assert gpu.score(x) == pytest.approx(cpu.score(x), abs=1e-4)


# ------------------------------------------------------------------ the native int8 kernel and its fallback


def _torch_int8(x):
    return EMKernel(x, CPU, "int8", native=False)


@needs_native
@given(problems)
def test_native_and_torch_int8_kernels_compute_the_same_integers(prob):
    """The same fixed point, so bit-identical logits and (for given responsibilities) identical exact sums;
    the fused pass differs only by its float32 exp (a unit of 2^-24 in a responsibility now and then)."""
    seed, n, d, k = prob
    rng, x, weights, means = _problem(seed, n, d, k)
    native, fallback = EMKernel(x, CPU, "int8", native=True), _torch_int8(x)
    assert native.native is not None and fallback.native is None
    np.testing.assert_array_equal(native.joint(weights, means), fallback.joint(weights, means))
    resp = rng.dirichlet(np.full(k, 0.3), size=n)
    for got, want in zip(native.resp_sums(resp), fallback.resp_sums(resp)):
        np.testing.assert_array_equal(got, want)
    rows = x[rng.integers(0, n, 3)]
    np.testing.assert_array_equal(native.dot(rows), fallback.dot(rows))
    got, want = native.statistics(weights, means), fallback.statistics(weights, means)
    assert got[0] == pytest.approx(want[0], rel=1e-12, abs=k * 2.0**-22 * n)  # log(norm): a few float32 ulps
    np.testing.assert_allclose(got[1], want[1], atol=4 * n / em_native.R_SCALE, rtol=0)
    np.testing.assert_allclose(got[2], want[2], atol=4 * n / em_native.R_SCALE, rtol=0)


@needs_native
@pytest.mark.parametrize("k", [1, 3, 16, 17, 40, 64])
def test_native_sums_are_exact_on_every_path(k):
    """N_k and r^T X as exact integers for fixed-point responsibilities whose rows have one, two, four or
    many nonzero entries (the scalar and the vector bucket paths), over enough rows that the int32
    buckets are flushed into int64 many times (2^24 per row: every 128 rows)."""
    rng = np.random.default_rng(k)
    n, d = 3000, 37
    x = (rng.random((n, d)) < rng.uniform(0.05, 0.95, d)).astype(np.uint8)
    r = rng.integers(0, em_native.R_SCALE + 1, (n, k))
    nonzero = rng.choice([1, 2, 4, k], size=n, p=[0.4, 0.2, 0.2, 0.2])
    keep = rng.random((n, k)).argsort(axis=1) < nonzero[:, None]
    r = np.where(keep, r, 0)
    r[: n // 2, 0] = np.where(nonzero[: n // 2] == 1, em_native.R_SCALE, r[: n // 2, 0])  # long one-hot runs
    nk, sums = em_native.NativeEM(em_native.load(), x).resp_sums_fixed(r)
    np.testing.assert_array_equal(nk, r.sum(axis=0))
    np.testing.assert_array_equal(sums, r.T @ x.astype(np.int64))


@needs_native
def test_native_results_do_not_depend_on_the_number_of_threads(monkeypatch):
    monkeypatch.setattr(em_native, "_ROWS_PER_THREAD", 7)  # split even this small problem across threads
    _, x, weights, means = _problem(11, 500, 45, 20)
    means = np.clip(means, 0.3, 0.7)  # soft responsibilities: both bucket paths
    runs = [em_native.NativeEM(em_native.load(), x, threads=t).statistics(weights, means) for t in (1, 2, 5)]
    for total, nk, sums in runs[1:]:
        assert total == pytest.approx(runs[0][0], rel=1e-13)
        np.testing.assert_array_equal(nk, runs[0][1])
        np.testing.assert_array_equal(sums, runs[0][2])


def _statistics_in_a_child(args):
    x, weights, means = args
    return em_native.NativeEM(em_native.load(), x, threads=2).statistics(weights, means)[0]


@needs_native
@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="needs fork")
def test_a_forked_child_gets_its_own_kernel_threads(monkeypatch):
    """The report runs experiments in a process pool: a child forked after the parent used the kernel's
    thread pool must not wait on the parent's threads (which it does not have)."""
    import multiprocessing

    monkeypatch.setattr(em_native, "_ROWS_PER_THREAD", 7)
    _, x, weights, means = _problem(5, 300, 30, 3)
    want = em_native.NativeEM(em_native.load(), x, threads=2).statistics(weights, means)[0]
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.map_async(_statistics_in_a_child, [(x, weights, means)]).get(timeout=60)
    assert got == [pytest.approx(want, rel=1e-13)]


@needs_native
def test_estimator_fits_alike_with_either_int8_implementation(monkeypatch):
    """The same EM path: the two differ only by their float32 exp (see the test above)."""
    x = _planted(6, 400, 20, 3)[0]
    native = BernoulliMixture(3, backend="int8", random_state=0, init_params="k-means++").fit(x)
    monkeypatch.setattr(em_native, "load", lambda: None)
    fallback = BernoulliMixture(3, backend="int8", random_state=0, init_params="k-means++").fit(x)
    assert native.n_iter_ == fallback.n_iter_
    np.testing.assert_allclose(native.means_, fallback.means_, atol=1e-6)
    np.testing.assert_allclose(native.lower_bounds_, fallback.lower_bounds_, rtol=1e-7)


@needs_native
def test_more_than_64_components_take_the_torch_int8_kernel(monkeypatch):
    x = _planted(9, 300, 10, 3)[0]
    kernel = EMKernel(x, CPU, "int8")
    weights, means = np.full(70, 1 / 70), np.random.default_rng(0).uniform(0.1, 0.9, (70, 10))
    assert kernel.native is not None and not kernel._uses_native(70)
    np.testing.assert_array_equal(kernel.joint(weights, means), _torch_int8(x).joint(weights, means))
    total, nk, sums = kernel.statistics(weights, means)  # the torch products, on data built when first needed
    want = _torch_int8(x).statistics(weights, means)
    assert total == want[0] and np.array_equal(nk, want[1]) and np.array_equal(sums, want[2])


def _reload_native(monkeypatch, tmp_path, **env):
    """em_native.load() under the given environment (a fresh cache folder), then the real one again."""
    try:
        with monkeypatch.context() as patch:
            patch.setenv("GENVERIFY_NATIVE_CACHE", str(tmp_path))
            for name, value in env.items():
                patch.setenv(name, value)
            em_native.load.cache_clear()
            return em_native.load(), em_native.status()
    finally:
        em_native.load.cache_clear()
        em_native.load()


def test_without_a_c_compiler_the_torch_kernel_runs(monkeypatch, tmp_path):
    lib, why = _reload_native(monkeypatch, tmp_path, CC=str(tmp_path / "no-such-cc"))
    assert lib is None and "no C compiler" in why
    monkeypatch.setattr(em_native, "load", lambda: None)
    x = _planted(1, 200, 12, 2)[0]
    kernel = EMKernel(x, CPU, "int8")
    assert kernel.native is None
    bm = BernoulliMixture(2, backend="int8", random_state=0).fit(x)
    assert bm.converged_ and np.isfinite(bm.lower_bound_)
    with pytest.raises(RuntimeError, match="native EM kernel is unavailable"):
        EMKernel(x, CPU, "int8", native=True)


def test_a_failing_compiler_warns_and_falls_back(monkeypatch, tmp_path):
    failing = tmp_path / "cc"
    failing.write_text("#!/bin/sh\necho 'cc: error: nothing compiles here' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.warns(RuntimeWarning, match="native EM kernel is unavailable"):
        lib, why = _reload_native(monkeypatch, tmp_path / "cache", CC=str(failing))
    assert lib is None and "build failed" in why and "nothing compiles here" in why
    assert not list((tmp_path / "cache").glob("*.so"))  # no half-written library left behind


@needs_native
def test_a_compiler_without_march_native_builds_the_portable_kernel(monkeypatch, tmp_path):
    picky = tmp_path / "cc"
    picky.write_text(f"#!/bin/sh\ncase \"$*\" in *-march=native*) echo 'unknown option' >&2; exit 1;; esac\n"
                     f"exec {shutil.which('cc') or shutil.which('gcc')} \"$@\"\n")
    picky.chmod(0o755)
    lib, why = _reload_native(monkeypatch, tmp_path / "cache", CC=str(picky))
    assert lib is not None and why.startswith("loaded ")  # checked against NumPy integers when loaded
    x = _planted(2, 300, 30, 3)[0]
    assert np.array_equal(em_native.NativeEM(lib, x).logits(np.arange(90).reshape(3, 30) - 40),
                          x.astype(np.int64) @ (np.arange(90).reshape(3, 30) - 40).T)


def test_the_native_kernel_loads_and_passes_its_self_test_where_a_c_compiler_exists():
    # Without this, a kernel (or a self-test) that breaks would make load() return None: the tests
    # marked needs_native would skip and BernoulliMixture would fall back to torch unnoticed.
    # Without a compiler (or with GENVERIFY_NATIVE=0) the torch fallback is the designed behaviour.
    if em_native._compiler() is None or os.environ.get("GENVERIFY_NATIVE", "1").lower() in ("0", "false", "no", "off"):
        pytest.skip(f"no native kernel here by design: {em_native.status()}")
    assert em_native.load() is not None, em_native.status()
    assert em_native.status().startswith("loaded ")
    assert em_native._self_test(em_native.load()) is None


@needs_native
# The fused pass is compared at a tolerance (its sums are exp of rounded logits): spoiled by 1e-3 in
# probability units; the integer products are compared exactly: spoiled by one unit.
@pytest.mark.parametrize(("broken", "by"), [("logits", 1), ("resp_sums_fixed", 1),
                                            ("statistics", em_native.R_SCALE // 1000)])
def test_the_self_test_rejects_a_kernel_that_is_off_by_one(monkeypatch, broken, by):
    real = getattr(em_native.NativeEM, broken)

    def off_by_one(self, *args):
        out = real(self, *args)
        if isinstance(out, tuple):  # (nk, sums) or (total, nk, sums): spoil the last array
            last = out[-1].copy()
            last.flat[0] += by
            return (*out[:-1], last)
        out = out.copy()
        out.flat[0] += by
        return out

    monkeypatch.setattr(em_native.NativeEM, broken, off_by_one)
    assert em_native._self_test(em_native.load()) is not None


def test_genverify_native_0_disables_the_native_kernel(monkeypatch, tmp_path):
    lib, why = _reload_native(monkeypatch, tmp_path, GENVERIFY_NATIVE="0")
    assert lib is None and "disabled" in why


def test_an_unwritable_cache_folder_falls_back_to_a_private_temporary_one(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.delenv("GENVERIFY_NATIVE_CACHE", raising=False)
    monkeypatch.setenv("GENVERIFY_DATA", str(blocker))  # ~/.cache/genverify stand-in that cannot hold a folder
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = em_native._cache_dir()
    assert folder.parent == tmp_path and folder.is_dir() and folder.stat().st_mode & 0o077 == 0


@needs_native
def test_the_compiled_kernel_is_cached_and_reused():
    path = Path(em_native.status().removeprefix("loaded "))
    assert path.is_file() and path.parent == em_native._cache_dir()
    stamp = path.stat().st_mtime_ns
    em_native.load.cache_clear()
    assert em_native.load() is not None and em_native.status() == f"loaded {path}"
    assert path.stat().st_mtime_ns == stamp  # loaded, not rebuilt


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_runs_the_float32_kernel_and_refuses_int8():
    x = _planted(8, 500, 30, 3)[0]
    bm = BernoulliMixture(3, device="cuda", random_state=0).fit(x)
    assert bm._resolve_backend(torch.device("cuda")) == "float32" and bm.converged_
    with pytest.raises(ValueError, match="backend='int8' needs the CPU"):
        BernoulliMixture(3, device="cuda", backend="int8").fit(x)


# ------------------------------------------------------------------ bad input


def test_non_binary_input_without_binarize_is_rejected():
    with pytest.raises(ValueError, match="only 0 and 1.*binarize"):
        BernoulliMixture(2).fit(np.array([[0.0, 0.3], [1.0, 0.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        BernoulliMixture(1).fit(np.array([[0, 2], [1, 0]], dtype=np.uint8))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("binarize", [None, 0.5])
def test_nan_and_inf_are_rejected(bad, binarize):
    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    fitted = BernoulliMixture(1, binarize=binarize).fit(x)
    x[1, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        BernoulliMixture(1, binarize=binarize).fit(x)
    with pytest.raises(ValueError, match="NaN|infinity"):
        fitted.score(x)


@pytest.mark.parametrize("k", [0, -1])
def test_n_components_below_one_is_rejected(k):
    with pytest.raises(ValueError, match="n_components"):
        BernoulliMixture(k).fit(np.eye(3))


def test_more_components_than_samples_is_rejected():
    with pytest.raises(ValueError, match="n_components=4 must be <= n_samples=3"):
        BernoulliMixture(4).fit(np.eye(3))


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score", "score_samples", "bic", "aic"])
def test_wrong_feature_count_is_rejected(method):
    bm = BernoulliMixture(2, random_state=0).fit(_planted(0, 50, 4, 2)[0])
    with pytest.raises(ValueError, match="X has 3 features, but BernoulliMixture is expecting 4"):
        getattr(bm, method)(np.zeros((5, 3)))


@pytest.mark.parametrize("kwargs", [dict(alpha=0.0), dict(alpha=-1.0), dict(init_params="nope"), dict(tol=-1.0),
                                    dict(n_init=0), dict(device="tpu"), dict(backend="fp8")])
def test_bad_parameters_are_rejected_naming_them(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        BernoulliMixture(1, **kwargs).fit(np.eye(3))


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_clear_error_or_works(device):
    x = np.eye(4)
    if torch.cuda.is_available():
        assert BernoulliMixture(2, device=device, random_state=0).fit(x).converged_
    else:
        with pytest.raises(ValueError, match="CUDA is not available"):
            BernoulliMixture(2, device=device).fit(x)


def test_a_cuda_index_beyond_the_devices_or_a_malformed_device_is_a_clear_error():
    x = np.eye(4)
    beyond = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(ValueError, match="CUDA device|CUDA is not available"):
        BernoulliMixture(2, device=beyond).fit(x)
    for bad in ("cuda:", "cuda:x", "CPU", "gpu", 3):
        with pytest.raises(ValueError, match="device"):
            BernoulliMixture(2, device=bad).fit(x)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("init", ["k-means++", "random", "random_from_data", "kmeans"])
def test_constant_pixels_give_no_nan_or_minus_inf(backend, init):
    """A pixel that is 0 in every image and one that is 1 in every image: every p stays inside (0, 1)
    and every log-likelihood is finite, also for images where those pixels flip."""
    x = _planted(4, 200, 10, 3)[0]
    x[:, 0], x[:, 1] = 0, 1
    bm = BernoulliMixture(3, backend=backend, init_params=init, random_state=0).fit(x)
    assert np.all((bm.means_ > 0) & (bm.means_ < 1)) and np.all(np.isfinite(bm.lower_bounds_))
    flipped = x.copy()
    flipped[:, 0], flipped[:, 1] = 1, 0
    for data in (x, flipped):
        assert np.all(np.isfinite(bm.score_samples(data))) and np.all(np.isfinite(bm.predict_proba(data)))
    # also when every image is identical (all pixels constant)
    same = np.tile(x[:1], (20, 1))
    one = BernoulliMixture(2, backend=backend, init_params=init, random_state=0).fit(same)
    assert np.all(np.isfinite(one.score_samples(flipped))) and np.all(np.isfinite(one.weights_))


def test_validate_data_falls_back_to_the_estimator_method_before_sklearn_1_6():
    from genverify.models import _sklearn_compat as compat

    calls = []

    class OldEstimator:  # scikit-learn 1.4 / 1.5: validation is a method of BaseEstimator
        def _validate_data(self, X, y, reset, **check_params):
            calls.append((X, y, reset, check_params))
            return "checked"

    assert compat._validate_data_by_method(OldEstimator(), "X", reset=False, dtype="numeric") == "checked"
    assert calls == [("X", "no_validation", False, {"dtype": "numeric"})]


def test_n_parameters_needs_a_fitted_mixture():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        BernoulliMixture(2).n_parameters()


def test_sample_rejects_a_bad_count():
    bm = BernoulliMixture(1).fit(np.eye(3))
    with pytest.raises(ValueError, match="n_samples"):
        bm.sample(0)


def test_a_run_cut_short_by_max_iter_warns_and_a_converged_run_does_not():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    x = _planted(3, 300, 12, 3)[0]
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=2"):
        short = BernoulliMixture(3, max_iter=2, tol=0.0, random_state=0).fit(x)
    assert not short.converged_ and short.n_iter_ == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        done = BernoulliMixture(3, max_iter=500, random_state=0).fit(x)
    assert done.converged_


def test_the_size_limits_are_inclusive_one_image_and_as_many_components_as_images():
    x = _planted(1, 5, 8, 2)[0]
    one = BernoulliMixture(1, random_state=0).fit(x[:1])
    assert one.means_.shape == (1, 8) and np.isfinite(one.lower_bound_)
    as_many = BernoulliMixture(5, init_params="random_from_data", random_state=0).fit(x)
    assert as_many.means_.shape == (5, 8)
    with pytest.raises(ValueError, match="n_components=6 must be <= n_samples=5"):
        BernoulliMixture(6).fit(x)

