"""Registry entries for question 2: EM for a mixture of multivariate Bernoullis.

The results are indexed formulas (sums and products over i = 1..N, k = 1..K,
d = 1..D). Their checks compare expressions at concrete small sizes: the
sizes and free indices are substituted, ``doit()`` expands every sum and
product, and random entries (0/1 pixels, probabilities in (0, 1), mixing
weights and responsibilities on the simplex, one-hot codes) are filled in.

Ten results of one model, about 500 lines: they share the hand forms and the
random problems; every check reaches the numerics through ``result.numeric``.
"""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import scipy  # its submodules load on first use (scipy.stats alone takes ~0.4 s)
import sympy as sp

from genverify.checks import check, least, relative_error, worst
from genverify.checks.indexed import (
    indexed_matches_hand,
    numeric_matches_indexed,
)
from genverify.core import Experiment, Outcome, Param, Result
from genverify.derivations import em
from genverify.numerics import em as nem

#: The results of this topic, registered by genverify.registry in this order.
RESULTS: list[Result] = []

# ----------------------------------------------------------------- symbols

_SIZE = sp.Range(1, 6)
_N = Param("N", em.N, _SIZE, "number of images")
_K = Param("K", em.K, _SIZE, "number of mixture components")
_D = Param("D", em.D, _SIZE, "number of pixels per image")
_i = Param("i", em.i, _SIZE, "image index")
_k = Param("k", em.k, _SIZE, "component index")
_d = Param("d", em.d, _SIZE, "pixel index")
_x = Param("x", em.x, sp.FiniteSet(0, 1), "pixels: x_d^(i) is x[i, d] (x_d is x[d] for one image)")
_p = Param("p", em.p, sp.Interval.open(0, 1), "pixel probabilities: p_d^(k) is p[k, d] (p_d is p[d])")
_pi = Param("pi", em.pi, sp.Interval.open(0, 1), "mixing weights pi_k = pi[k] (pi(k) also reads pi[k])")
_z = Param("z", em.z, sp.FiniteSet(0, 1), "one-hot latent codes: z_k^(i) is z[i, k]")
_eta = Param("eta", em.eta, sp.Interval.open(0, 1), "responsibilities: eta^(i)_k is eta[i, k]")

i, k, d, j, N, K, D = em.i, em.k, em.d, em.j, em.N, em.K, em.D
x, p, pi, z, eta = em.x, em.p, em.pi, em.z, em.eta

#: pi on the simplex, z one-hot, eta's rows on the simplex: the claim checker
#: normalises (or one-hot-draws) sampled entries along k (genverify.claims.numeric._split_constraint).
SIMPLEX_PI = sp.Eq(sp.Sum(pi[k], (k, 1, K)), 1)
ONE_HOT_Z = sp.Eq(sp.Sum(z[i, k], (k, 1, K)), 1)
ROWS_ETA = sp.Eq(sp.Sum(eta[i, k], (k, 1, K)), 1)


# ----------------------------------------------------------------- hand forms (independent of the derivation)


def _pixel(kk, ii, dd=d):
    return p[kk, dd] ** x[ii, dd] * (1 - p[kk, dd]) ** (1 - x[ii, dd])


def _image(kk, ii):
    return sp.Product(_pixel(kk, ii), (d, 1, D))


def _hand_mixture():
    return sp.Sum(pi[k] * _image(k, i), (k, 1, K))


# ----------------------------------------------------------------- 2a-i


@check("sums to 1 over all 2^D images (D = 1..10)", "property")
def _bernoulli_sums_to_one(result, rng):
    largest = 0.0
    for D_ in range(1, 11):
        images = np.array(list(itertools.product((0, 1), repeat=D_)), dtype=float)
        P = rng.uniform(0.01, 0.99, size=(1, D_))
        total = float(np.exp(result.numeric(images, P)).sum())
        largest = worst(largest, abs(total - 1.0))
    return Outcome(largest <= 1e-13, f"max |sum - 1| = {largest:.1e}")


@check("scipy.stats.bernoulli.logpmf summed over pixels", "cross-library")
def _bernoulli_scipy(result, rng):
    X = rng.integers(0, 2, size=(50, 784)).astype(float)
    P = rng.uniform(0.001, 0.999, size=(7, 784))
    want = scipy.stats.bernoulli.logpmf(X[:, None, :], P[None, :, :]).sum(axis=2)
    err = worst(relative_error(result.numeric(X, P), want))
    return Outcome(bool(err <= 1e-13), f"max rel err {err:.1e} (D = 784)")


RESULTS.append(Result(
    id="bernoulli-likelihood",
    statement="P(x | p) = prod_d p_d^{x_d} (1 - p_d)^{1 - x_d} for x in {0,1}^D, independent Bernoulli pixels",
    question="2a-i",
    params=(_D, _p, _x),
    derive=em.derive_bernoulli_likelihood,
    numeric=nem.bernoulli_log_likelihood,
    kind="pmf",
    hand=lambda: sp.Product(p[d] ** x[d] * (1 - p[d]) ** (1 - x[d]), (d, 1, D)),
    notes="The numeric twin returns log P(x^(i) | p^(k)) for every image and component, an (N, K) matrix.",
    references=("Bishop (2006), eq. (9.44)",),
    checks=(indexed_matches_hand(),
            numeric_matches_indexed(lambda f, prob, ix: np.exp(f(prob.X[:1], prob.P[:1]))[0, 0]),
            _bernoulli_sums_to_one, _bernoulli_scipy),
))

# ----------------------------------------------------------------- 2a-ii


@check("mixture pmf sums to 1 over all 2^D images (D = 1..10)", "property")
def _mixture_sums_to_one(result, rng):
    largest = 0.0
    for D_ in range(1, 11):
        K_ = int(rng.integers(1, 6))
        images = np.array(list(itertools.product((0, 1), repeat=D_)), dtype=float)
        P = rng.uniform(0.01, 0.99, size=(K_, D_))
        w = rng.dirichlet(np.ones(K_))
        total = float(np.exp(result.numeric(images, w, P)).sum())
        largest = worst(largest, abs(total - 1.0))
    return Outcome(largest <= 1e-13, f"max |sum - 1| = {largest:.1e}")


RESULTS.append(Result(
    id="mixture-likelihood",
    statement="P(x^(i) | pi, p) = sum_k pi_k prod_d (p_d^(k))^{x_d^(i)} (1 - p_d^(k))^{1 - x_d^(i)}",
    question="2a-ii",
    params=(_K, _D, _i, _pi, _p, _x),
    constraint=SIMPLEX_PI,
    derive=em.derive_mixture_likelihood,
    numeric=nem.mixture_log_likelihood_samples,
    kind="pmf",
    hand=_hand_mixture,
    notes="Marginalises the one-hot code of P(x^(i), z^(i)); the numeric twin is log-space (log-sum-exp).",
    references=("Bishop (2006), eq. (9.47)",),
    checks=(indexed_matches_hand(),
            numeric_matches_indexed(lambda f, prob, ix: np.exp(f(prob.X, prob.w, prob.P))[ix["i"] - 1]),
            _mixture_sums_to_one),
))

# ----------------------------------------------------------------- 2a-iii


@check("scipy.stats.bernoulli + scipy.special.logsumexp (N = 200, D = 784, K = 10)", "cross-library")
def _loglik_scipy(result, rng):
    X = rng.integers(0, 2, size=(200, 784)).astype(float)
    P = rng.uniform(0.001, 0.999, size=(10, 784))
    w = rng.dirichlet(np.ones(10))
    per_component = scipy.stats.bernoulli.logpmf(X[:, None, :], P[None, :, :]).sum(axis=2)
    want = float(scipy.special.logsumexp(per_component + np.log(w), axis=1).sum())
    got = float(result.numeric(X, w, P))
    err = float(relative_error(got, want))
    return Outcome(bool(err <= 1e-13), f"rel err {err:.1e} (log-likelihood {got:.6g})")


RESULTS.append(Result(
    id="mixture-log-likelihood",
    statement="log P(X | pi, p) = sum_i log sum_k pi_k prod_d (p_d^(k))^{x_d^(i)} (1 - p_d^(k))^{1 - x_d^(i)}",
    question="2a-iii",
    params=(_N, _K, _D, _pi, _p, _x),
    constraint=SIMPLEX_PI,
    derive=em.derive_mixture_log_likelihood,
    numeric=nem.mixture_log_likelihood,
    hand=lambda: sp.Sum(sp.log(_hand_mixture()), (i, 1, N)),
    notes="The write-up writes n for the number of images here and N in 2b-2c.",
    references=("Bishop (2006), eq. (9.51)",),
    checks=(indexed_matches_hand(),
            numeric_matches_indexed(lambda f, prob, ix: f(prob.X, prob.w, prob.P)),
            _loglik_scipy),
))

# ----------------------------------------------------------------- 2b-i


@check("P(z = e_k | pi) = pi_k and sums to 1 over the K codes", "property")
def _prior_codes(result, rng):
    largest = 0.0
    for K_ in range(1, 9):
        w = rng.dirichlet(np.ones(K_))
        codes = np.eye(K_)
        probs = np.exp(result.numeric(codes, w))
        largest = worst(largest, np.abs(probs - w), abs(float(probs.sum()) - 1.0))
    return Outcome(largest <= 1e-15, f"max abs err {largest:.1e} (K = 1..8)")


RESULTS.append(Result(
    id="latent-prior",
    statement="P(z^(i) | pi) = prod_k pi_k^{z_k^(i)} for a one-hot code z^(i)",
    question="2b-i",
    params=(_K, _i, _pi, _z),
    constraint=sp.And(SIMPLEX_PI, ONE_HOT_Z),
    derive=em.derive_latent_prior,
    numeric=nem.latent_log_prior,
    kind="pmf",
    hand=lambda: sp.Product(pi[k] ** z[i, k], (k, 1, K)),
    references=("Bishop (2006), eq. (9.10)",),
    checks=(indexed_matches_hand(),
            numeric_matches_indexed(lambda f, prob, ix: np.exp(f(prob.Z, prob.w))[ix["i"] - 1]),
            _prior_codes),
))


@check("P(x | z = e_k, p) = P(x | p^(k)) (2a-i) and sums to 1 over all 2^D images", "property")
def _conditional_codes(result, rng):
    largest = 0.0
    for D_ in range(1, 9):
        K_ = int(rng.integers(1, 5))
        images = np.array(list(itertools.product((0, 1), repeat=D_)), dtype=float)
        P = rng.uniform(0.01, 0.99, size=(K_, D_))
        per_component = nem.bernoulli_log_likelihood(images, P)
        for k_ in range(K_):
            Z = np.zeros((len(images), K_))
            Z[:, k_] = 1.0
            got = result.numeric(images, Z, P)
            largest = worst(largest, np.abs(got - per_component[:, k_]), abs(float(np.exp(got).sum()) - 1.0))
    return Outcome(largest <= 1e-13, f"max abs err {largest:.1e} (D = 1..8)")


RESULTS.append(Result(
    id="conditional-likelihood",
    statement="P(x^(i) | z^(i), p) = prod_k P(x^(i) | p^(k))^{z_k^(i)} for a one-hot code z^(i)",
    question="2b-i",
    params=(_K, _D, _i, _p, _x, _z),
    constraint=ONE_HOT_Z,
    derive=em.derive_conditional_likelihood,
    numeric=nem.conditional_log_likelihood,
    kind="pmf",
    hand=lambda: sp.Product(_image(k, i) ** z[i, k], (k, 1, K)),
    references=("Bishop (2006), eq. (9.11)",),
    checks=(indexed_matches_hand(),
            numeric_matches_indexed(lambda f, prob, ix: np.exp(f(prob.X, prob.Z, prob.P))[ix["i"] - 1]),
            _conditional_codes),
))

# ----------------------------------------------------------------- 2b-ii


@check("summing P(Z, X) over all K^N codes gives P(X) (2a-iii)", "property")
def _complete_marginalises(result, rng):
    largest = 0.0
    for _ in range(20):
        N_, K_, D_ = (int(v) for v in rng.integers(1, 5, size=3))
        X = rng.integers(0, 2, size=(N_, D_)).astype(float)
        P = rng.uniform(0.05, 0.95, size=(K_, D_))
        w = rng.dirichlet(np.ones(K_))
        total = 0.0
        for codes in itertools.product(range(K_), repeat=N_):
            total += np.exp(result.numeric(X, np.eye(K_)[list(codes)], w, P))
        want = np.exp(nem.mixture_log_likelihood(X, w, P))
        largest = worst(largest, relative_error(total, want))
    return Outcome(largest <= 1e-12, f"max rel err {largest:.1e} (20 random N, K, D <= 4)")


RESULTS.append(Result(
    id="complete-data-likelihood",
    statement="P(Z, X | pi, p) = prod_i prod_k [pi_k P(x^(i) | p^(k))]^{z_k^(i)}",
    question="2b-ii",
    params=(_N, _K, _D, _pi, _p, _x, _z),
    constraint=sp.And(SIMPLEX_PI, ONE_HOT_Z),
    derive=em.derive_complete_data_likelihood,
    numeric=nem.complete_data_log_likelihood,
    kind="pmf",
    hand=lambda: sp.Product(sp.Product(pi[k] ** z[i, k] * _image(k, i) ** z[i, k], (k, 1, K)), (i, 1, N)),
    references=("Bishop (2006), eq. (9.52)",),
    checks=(indexed_matches_hand(problems=6),
            numeric_matches_indexed(lambda f, prob, ix: np.exp(f(prob.X, prob.Z, prob.w, prob.P)), problems=8),
            _complete_marginalises),
))

# ----------------------------------------------------------------- 2b-iii


def underflow_demo(rng: np.random.Generator, n: int = 4, K_: int = 3, D_: int = 784, digits: int = 50,
                   responsibilities=nem.responsibilities):
    """Responsibilities at MNIST size: product form, log form (``responsibilities``) and a ``digits``-digit
    mpmath reference.

    The images are random and p ~ U(0, 1) (a random initialisation): a log-likelihood
    near -784 per component, far below the float64 limit of about -745.
    Returns ``(product_form, log_form, reference)`` as float arrays.
    """
    X = rng.integers(0, 2, size=(n, D_)).astype(float)
    P = rng.uniform(0.0, 1.0, size=(K_, D_))
    w = rng.dirichlet(np.ones(K_))
    product = nem.responsibilities_product_form(X, w, P)
    log_form = responsibilities(X, w, P)
    with mpmath.workdps(digits):
        # The float64 inputs exactly, then every operation in `digits` digits.
        log_p = [[mpmath.log(mpmath.mpf(v)) for v in row] for row in P]
        log_q = [[mpmath.log(1 - mpmath.mpf(v)) for v in row] for row in P]
        reference = np.empty((n, K_))
        for a in range(n):
            joint = [mpmath.log(mpmath.mpf(w[b])) + mpmath.fsum(log_p[b][c] if X[a, c] else log_q[b][c]
                                                               for c in range(D_)) for b in range(K_)]
            top = max(joint)
            den = mpmath.fsum(mpmath.exp(v - top) for v in joint)
            for b in range(K_):
                reference[a, b] = float(mpmath.exp(joint[b] - top) / den)
    return product, log_form, reference


#: Tolerance of the log form against the 50-digit reference. The float64 sums of
#: 784 log-probabilities (|log-likelihood| ~ 10^3) carry rounding of about
#: sqrt(784) * 1.1e-16 * 10^3 ~ 3e-12 in absolute terms, which a responsibility
#: inherits as relative error; 1e-9 leaves a wide margin and still fails by
#: hundreds of orders of magnitude for any wrong (or nan) answer.
UNDERFLOW_RTOL = 1e-9


@check("D = 784: product form gives 0/0 = nan, log form matches a 50-digit reference", "property")
def _underflow(result, rng):
    product, log_form, reference = underflow_demo(rng, responsibilities=result.numeric)
    all_nan = bool(np.isnan(product).all())
    err = worst(np.abs(log_form - reference) / np.maximum(reference, 1e-300))
    finite = bool(np.isfinite(log_form).all() and np.allclose(log_form.sum(axis=1), 1.0, rtol=0, atol=1e-15))
    ok = all_nan and finite and err <= UNDERFLOW_RTOL
    return Outcome(ok, f"product form nan: {int(np.isnan(product).sum())}/{product.size}; log form max rel err "
                   f"{err:.1e} vs 50 digits", "" if ok else f"product {product}, log {log_form}, ref {reference}")


@check("log form = product form where nothing underflows (D <= 40)", "numeric")
def _log_vs_product(result, rng):
    largest = 0.0
    for _ in range(50):
        N_, K_, D_ = int(rng.integers(1, 20)), int(rng.integers(1, 8)), int(rng.integers(1, 41))
        X = rng.integers(0, 2, size=(N_, D_)).astype(float)
        P = rng.uniform(0.02, 0.98, size=(K_, D_))
        w = rng.dirichlet(np.ones(K_))
        a, b = result.numeric(X, w, P), nem.responsibilities_product_form(X, w, P)
        largest = worst(largest, np.abs(a - b))
    return Outcome(largest <= 1e-13, f"max abs diff {largest:.1e}")


RESULTS.append(Result(
    id="em-responsibility",
    statement="eta(z_k^(i)) = pi_k P(x^(i) | p^(k)) / sum_j pi_j P(x^(i) | p^(j)), by Bayes' rule",
    question="2b-iii",
    params=(_K, _D, _i, _k, _pi, _p, _x),
    constraint=sp.And(SIMPLEX_PI, sp.Le(k, K)),
    derive=em.derive_em_responsibility,
    numeric=nem.responsibilities,
    hand=lambda: pi[k] * _image(k, i) / sp.Sum(pi[j] * _image(j, i), (j, 1, K)),
    notes="Computed in log space: at D = 784 the literal quotient underflows to 0/0 (responsibilities_product_form).",
    references=("Bishop (2006), eq. (9.56)",),
    checks=(indexed_matches_hand(problems=6),
            numeric_matches_indexed(lambda f, prob, ix: f(prob.X, prob.w, prob.P)[ix["i"] - 1, ix["k"] - 1],
                                    problems=8),
            _log_vs_product, _underflow),
))

# ----------------------------------------------------------------- Q


@check("log P(X) = Q(eta) + H(eta) at eta = posterior (the EM bound is tight)", "property")
def _q_plus_entropy(result, rng):
    largest = 0.0
    for _ in range(30):
        N_, K_, D_ = int(rng.integers(1, 50)), int(rng.integers(1, 8)), int(rng.integers(1, 100))
        X = rng.integers(0, 2, size=(N_, D_)).astype(float)
        P = rng.uniform(0.02, 0.98, size=(K_, D_))
        w = rng.dirichlet(np.ones(K_))
        R = nem.responsibilities(X, w, P)
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -float(np.sum(np.where(R > 0, R * nem.log_responsibilities(X, w, P), 0.0)))
        want = nem.mixture_log_likelihood(X, w, P)
        largest = worst(largest, abs(float(result.numeric(X, R, w, P)) + entropy - want) / abs(want))
    return Outcome(largest <= 1e-12, f"max rel err {largest:.1e}")


RESULTS.append(Result(
    id="em-expected-complete-log-likelihood",
    statement="Q(pi, p) = sum_i sum_k eta_k^(i) [log pi_k + sum_d x_d^(i) log p_d^(k) + (1 - x_d^(i)) log(1 - p_d^(k))]",
    question="2c",
    params=(_N, _K, _D, _pi, _p, _x, _eta),
    constraint=sp.And(SIMPLEX_PI, ROWS_ETA),
    derive=em.derive_em_expected_complete_log_likelihood,
    numeric=nem.expected_complete_log_likelihood,
    hand=lambda: sp.Sum(eta[i, k] * (sp.log(pi[k]) + sp.Sum(x[i, d] * sp.log(p[k, d]) + (1 - x[i, d]) * sp.log(1 - p[k, d]),
                                                            (d, 1, D))), (k, 1, K), (i, 1, N)),
    references=("Bishop (2006), eq. (9.40)",),
    checks=(indexed_matches_hand(problems=6),
            numeric_matches_indexed(lambda f, prob, ix: f(prob.X, prob.R, prob.w, prob.P),
                                    problems=8),
            _q_plus_entropy),
))

# ----------------------------------------------------------------- 2c-i


def _random_fit(rng, N_=40, K_=4, D_=12):
    X = rng.integers(0, 2, size=(N_, D_)).astype(float)
    w = rng.dirichlet(np.ones(K_))
    R = rng.dirichlet(np.ones(K_), size=N_)
    return X, w, R


@check("gradient of Q in p is 0 at the update; 500 random perturbations all lower Q", "property")
def _p_update_maximises(result, rng):
    X, w, R = _random_fit(rng)
    _, P = result.numeric(X, R)
    Q = lambda P_: nem.expected_complete_log_likelihood(X, R, w, P_)  # noqa: E731
    q0 = Q(P)
    h = 1e-6
    worst_grad, scale = 0.0, 0.0
    for _ in range(20):
        V = rng.normal(size=P.shape)
        worst_grad = worst(worst_grad, abs(Q(P + h * V) - Q(P - h * V)) / (2 * h))
        # The same directional derivative at a non-optimal point, for scale.
        P_off = np.clip(P + 0.1 * rng.normal(size=P.shape), 0.05, 0.95)
        scale = worst(scale, abs(Q(P_off + h * V) - Q(P_off - h * V)) / (2 * h))
    lowered = 0
    for _ in range(500):
        step = rng.normal(size=P.shape) * 10.0 ** rng.uniform(-4, -1)
        lowered += Q(np.clip(P + step, 1e-6, 1 - 1e-6)) < q0
    ok = worst_grad <= 1e-6 * scale and lowered == 500
    return Outcome(ok, f"|dQ| at update {worst_grad:.1e} (elsewhere {scale:.1e}); {lowered}/500 perturbations lower Q")


RESULTS.append(Result(
    id="em-p-update",
    statement="M-step: p_d^(k) = sum_i eta_k^(i) x_d^(i) / sum_i eta_k^(i), the stationary point of Q",
    question="2c-i",
    params=(_N, _K, _k, _d, _x, _eta),
    constraint=sp.And(ROWS_ETA, sp.Le(k, K)),
    derive=em.derive_em_p_update,
    numeric=nem.m_step,
    hand=lambda: sp.Sum(x[i, d] * eta[i, k], (i, 1, N)) / sp.Sum(eta[i, k], (i, 1, N)),
    notes="m_step(X, resp, prior=(a, b)) gives the MAP update under a Beta(a, b) prior instead.",
    references=("Bishop (2006), eq. (9.59)",),
    checks=(indexed_matches_hand(problems=8),
            numeric_matches_indexed(lambda f, prob, ix: f(prob.X, prob.R)[1][ix["k"] - 1, ix["d"] - 1]),
            _p_update_maximises),
))

# ----------------------------------------------------------------- 2c-ii


@check("on the simplex: Q is stationary along every e_k - e_l (central differences of Q); 500 perturbations "
       "lower Q", "property")
def _pi_update_maximises(result, rng):
    X, w, R = _random_fit(rng)
    w_new, P = result.numeric(X, R)
    Q = lambda w_: nem.expected_complete_log_likelihood(X, R, w_, P)  # noqa: E731
    q0 = Q(w_new)
    # The Lagrange condition, read off Q itself: dQ/dpi_k equal for all k, i.e. the derivative along
    # every direction e_k - e_l (which stays on the simplex) vanishes. Central differences with step
    # h = 1e-6 min(pi): truncation ~h^2 N / pi^3, rounding ~1e-16 |Q| / h; compared with the same
    # derivative's scale N / pi (1e-6 leaves a wide margin).
    eye = np.eye(w_new.size)
    h = 1e-6 * float(np.min(w_new))
    spread = 0.0
    for k_, l_ in itertools.combinations(range(w_new.size), 2):
        v = eye[k_] - eye[l_]
        slope = (Q(w_new + h * v) - Q(w_new - h * v)) / (2 * h)
        spread = worst(spread, abs(slope) / (X.shape[0] / float(np.min(w_new))))
    lowered = 0
    for _ in range(500):
        v = rng.normal(size=w_new.shape)
        v -= v.mean()  # stay on the plane sum = 1
        t = 10.0 ** rng.uniform(-4, 0) * float(np.min(w_new)) / max(float(np.max(np.abs(v))), 1e-300)
        lowered += Q(w_new + 0.99 * t * v) < q0
    ok = spread <= 1e-6 and lowered == 500
    return Outcome(ok, f"max |dQ/d(e_k - e_l)| / (N / min pi) = {spread:.1e}; {lowered}/500 perturbations lower Q")


@check("one EM step never lowers the log-likelihood (ML and MAP, 200 random starts)", "property")
def _em_monotone(result, rng):
    # A MAP step under Beta(a, b) never lowers log-likelihood + sum log Beta(p_d^(k); a, b).
    a = b = 1.5
    log_prior = lambda P_: float(np.sum((a - 1) * np.log(P_) + (b - 1) * np.log1p(-P_)))  # noqa: E731
    lowest = np.inf
    for _ in range(200):
        N_, K_, D_ = int(rng.integers(1, 30)), int(rng.integers(1, 6)), int(rng.integers(1, 30))
        X = rng.integers(0, 2, size=(N_, D_)).astype(float)
        P = rng.uniform(0.05, 0.95, size=(K_, D_))
        w = rng.dirichlet(np.ones(K_))
        before = nem.mixture_log_likelihood(X, w, P)
        R = nem.responsibilities(X, w, P)
        w_ml, P_ml = result.numeric(X, R)
        w_map, P_map = result.numeric(X, R, prior=(a, b))
        gain_ml = nem.mixture_log_likelihood(X, w_ml, P_ml) - before
        gain_map = nem.mixture_log_likelihood(X, w_map, P_map) + log_prior(P_map) - before - log_prior(P)
        lowest = least(lowest, np.array([gain_ml, gain_map]) / max(abs(before), 1.0))
    return Outcome(lowest >= -1e-12, f"smallest relative gain {lowest:.1e}")


RESULTS.append(Result(
    id="em-pi-update",
    statement="M-step: pi_k = N_k / N with N_k = sum_i eta_k^(i) (Lagrange multiplier for sum_k pi_k = 1)",
    question="2c-ii",
    params=(_N, _K, _k, _eta),
    constraint=sp.And(ROWS_ETA, sp.Le(k, K)),
    derive=em.derive_em_pi_update,
    numeric=nem.m_step,
    hand=lambda: sp.Sum(eta[i, k], (i, 1, N)) / N,
    references=("Bishop (2006), eq. (9.60)",),
    checks=(indexed_matches_hand(problems=8),
            numeric_matches_indexed(lambda f, prob, ix: f(prob.X, prob.R)[0][ix["k"] - 1]),
            _pi_update_maximises, _em_monotone),
))


#: The experiment of questions 3c-3e: EM on N = 1000 binarised digits for K = 5, 10, 20.
EXPERIMENTS = [Experiment(
    id="em",
    title="EM for a mixture of Bernoullis on MNIST",
    question="3",
    run="genverify.experiments.em_mnist:run",
)]
