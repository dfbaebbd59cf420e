"""Which Gaussian does each KL pick? Forward vs reverse fitting (1b) and the ELBO's gap (1c).

q(x) = N(x | m, s^2) is fitted to a target p with only m and s free:

* forward KL, :math:`D_{KL}(p \\| q) = \\int p \\log p - \\int p \\log q`: the
  stationary point is **moment matching**, m = E_p[x], s^2 = Var_p[x]
  (:func:`derive_forward_fit`, registry ``kl-forward-fit``);
* reverse KL, :math:`D_{KL}(q \\| p) = \\int q \\log q - \\int q \\log p`: its
  gradient in (m, s) weights log p by q's own shape (:func:`derive_reverse_fit_gradient`,
  ``kl-reverse-fit``), so q only "sees" p where q itself has mass: one local
  optimum per well-separated mode;
* for a conjugate model z ~ N(0, 1), x | z ~ N(a z + b, sigma_x^2) and any
  q(z) = N(mu, sigma^2): log p(x) - ELBO(q) = KL(q || p(z|x))
  (:func:`derive_elbo_gap`, ``elbo-gap``).

Every result is computed from definitions: integrals of Gaussian densities
(their moments, by SymPy's ``integrate``), derivatives, ``solve``. Nothing
starts from the answer.

>>> d = derive_forward_fit_general()
>>> d.result[0] == E1
True
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.pretty.stringpict import prettyForm

from genverify.core import Derivation, Step
from genverify.derivations.support import require, supporting
from genverify.derivations.kl import expect_polynomial, integrate_moments, kl_normals_by_moments, normal_density
from genverify.derivations.kl import x as _x_kl


class Label(sp.Symbol):
    """A symbol that names a quantity (E_p[x], D_KL(p||q), ...): plain text in ``str`` and
    ``pretty``, proper LaTeX (registered by :func:`label`) in ``sp.latex``.

    Every label is made at this module's import (the constants below), so a label read back
    from genverify's disk cache prints its LaTeX in any process: the class says so to the
    cache (``_process_independent``), which otherwise keeps only SymPy's own classes.
    """

    _LATEX: dict[str, str] = {}
    _process_independent = True

    def _latex(self, printer) -> str:  # noqa: ARG002 - SymPy's printer hook
        return self._LATEX.get(self.name, r"\text{%s}" % self.name)

    def _pretty(self, printer):  # noqa: ARG002
        return prettyForm(self.name)


def label(text: str, latex: str, **assumptions) -> Label:
    Label._LATEX[text] = latex
    return Label(text, **assumptions)


x = _x_kl  # the target's variable (same symbol as in genverify.derivations.kl)
z = sp.Symbol("z", real=True)  # the latent variable of the ELBO model
m = sp.Symbol("m", real=True)  # mean of q
s = sp.Symbol("s", positive=True)  # standard deviation of q

#: Moments of a generic target p: E_p[x] and E_p[x^2].
E1 = label("E_p[x]", r"\mathbb{E}_p[x]", real=True)
E2 = label("E_p[x^2]", r"\mathbb{E}_p[x^2]", positive=True)

#: The quantities the derivations name (made here, at import: see :class:`Label`).
KL_FORWARD = label("D_KL(p||q)", r"D_{\mathrm{KL}}(p \,\|\, q)")
KL_REVERSE = label("D_KL(q||p)", r"D_{\mathrm{KL}}(q \,\|\, p)")
ENTROPY = label("H(p)", r"H(p)")
POSTERIOR_MEAN = label("E[z|x]", r"\mathbb{E}[z \mid x]")
POSTERIOR_VAR = label("Var[z|x]", r"\mathrm{Var}[z \mid x]")
EXPECTED_LOGLIK = label("E_q[log p(x|z)]", r"\mathbb{E}_q[\log p(x \mid z)]")
KL_PRIOR = label("D_KL(q||p(z))", r"D_{\mathrm{KL}}(q \,\|\, p(z))")

#: A two-component mixture w N(mu1, sigma1^2) + (1 - w) N(mu2, sigma2^2).
w = sp.Symbol("w", positive=True)
mu1, mu2 = sp.symbols("mu1 mu2", real=True)
sigma1, sigma2 = sp.symbols("sigma1 sigma2", positive=True)

#: The conjugate ELBO model: observation x, decoder x | z ~ N(a z + b, sigma_x^2),
#: encoder q(z) = N(mu, sigma^2) (mu, sigma as in ``kl-vae``).
xo = sp.Symbol("x", real=True)
a, b = sp.symbols("a b", real=True)
sigma_x = sp.Symbol("sigma_x", positive=True)
mu = sp.Symbol("mu", real=True)
sigma = sp.Symbol("sigma", positive=True)

#: The target density as an undefined function (any p).
p = sp.Function("p")


def _forward_stationary_point(steps: list[Step]) -> tuple[sp.Expr, sp.Expr]:
    """Steps common to both forward derivations; returns (m*, s*^2) in terms of E1, E2."""
    q = normal_density(m, s)
    kl = KL_FORWARD
    qf = sp.Function("q")
    steps.append(Step("Definition of the forward KL of q from the target p",
                      sp.Eq(kl, sp.Integral(p(x) * sp.log(p(x) / qf(x)), (x, -sp.oo, sp.oo)))))
    steps.append(Step("q = N(m, s^2), only its mean m and standard deviation s free", sp.Eq(qf(x), q)))
    neg_log_q = sp.expand(sp.expand_log(-sp.log(q), force=True))
    steps.append(Step("-log q(x) is a quadratic in x (the entropy of p does not depend on m, s)",
                      sp.Eq(-sp.log(qf(x)), neg_log_q)))
    integrals = expect_polynomial(neg_log_q, x, {k: sp.Integral(x**k * p(x), (x, -sp.oo, sp.oo)) for k in range(3)})
    cross_entropy = sp.expand(expect_polynomial(neg_log_q, x, {0: sp.Integer(1), 1: E1, 2: E2}))  # ∫ p = 1
    H = ENTROPY
    steps.append(Step("By linearity the KL needs only ∫ p = 1, E_p[x] and E_p[x^2]",
                      sp.Eq(kl, -H + integrals)))
    objective = -H + cross_entropy
    steps.append(Step("Forward KL as a function of (m, s)", sp.Eq(kl, objective)))
    grad = [sp.simplify(sp.diff(objective, v)) for v in (m, s)]
    steps.append(Step("Stationary equations: the gradient in (m, s) vanishes",
                      sp.Eq(sp.Matrix(grad), sp.zeros(2, 1))))
    sols = sp.solve(grad, [m, s], dict=True)
    # s > 0 is an assumption of the symbol, so solve keeps only the positive root;
    # the root needs E_p[x^2] > E_p[x]^2, true for any non-degenerate p.
    if len(sols) != 1:
        raise RuntimeError(f"expected one stationary point, got {sols}")
    m_star, s_star = sols[0][m], sols[0][s]
    var_star = sp.expand(s_star**2)
    steps.append(Step("Solve: the unique stationary point (moment matching)",
                      sp.Eq(sp.Matrix([m, s**2]), sp.Matrix([m_star, var_star]))))
    with supporting("second-order condition: the Hessian at the stationary point is positive definite"):
        # At the stationary point E_p[x^2] = E_p[x]^2 + s^2: write the Hessian in s.
        hess = sp.simplify(sp.hessian(objective, (m, s)).subs(m, m_star).subs(E2, E1**2 + s**2))
        require(lambda: hess.is_positive_definite, "the Hessian is positive definite")
        steps.append(Step("The Hessian in (m, s) there is positive definite (SymPy: is_positive_definite), so the "
                          "stationary point is the minimum", hess))
    return m_star, var_star


def derive_forward_fit_general() -> Derivation:
    """Forward KL over q = N(m, s^2) is minimised by m = E_p[x], s^2 = E_p[x^2] - E_p[x]^2 (any p)."""
    steps: list[Step] = []
    m_star, var_star = _forward_stationary_point(steps)
    result = sp.ImmutableMatrix([m_star, var_star])
    return Derivation(result, tuple(steps))


def _tidy_variance(var: sp.Expr) -> sp.Expr:
    """Group a mixture variance as (terms in sigma_k^2) + (a factored spread-of-means term)."""
    expanded = sp.expand(var)
    parts = sp.collect(expanded, [sigma1**2, sigma2**2], evaluate=False)
    total = sp.Integer(0)
    for key, coef in parts.items():
        total += sp.factor(coef) * key if key != 1 else sp.factor(coef)
    return total


def derive_forward_fit() -> Derivation:
    """1b, ``kl-forward-fit``: the forward-KL Gaussian of a two-component Gaussian mixture.

    p(x) = w N(x | mu1, sigma1^2) + (1 - w) N(x | mu2, sigma2^2). The general
    stationary point (moment matching) is derived first; then E_p[x] and
    E_p[x^2] are computed from the components' moments, each obtained by
    integrating a normal density.
    """
    steps: list[Step] = []
    m_star, var_star = _forward_stationary_point(steps)
    c_mu, c_sigma = sp.Symbol("mu_c", real=True), sp.Symbol("sigma_c", positive=True)
    comp = integrate_moments(normal_density(c_mu, c_sigma), x, 2)
    for k in range(3):
        steps.append(Step(f"Moment {k} of a component N(mu_c, sigma_c^2), by integration",
                          sp.Eq(sp.Integral(x**k * normal_density(c_mu, c_sigma), (x, -sp.oo, sp.oo)), comp[k])))
    mixture = w * normal_density(mu1, sigma1) + (1 - w) * normal_density(mu2, sigma2)
    steps.append(Step("Target: a two-component Gaussian mixture", sp.Eq(p(x), mixture)))
    weights = ((w, mu1, sigma1), (1 - w, mu2, sigma2))
    moment = {k: sum(wk * comp[k].subs({c_mu: mk, c_sigma: sk}) for wk, mk, sk in weights) for k in range(3)}
    steps.append(Step("Linearity: ∫ p = Σ w_k ∫ N_k = 1, so p is normalised",
                      sp.Eq(sp.Integral(p(x), (x, -sp.oo, sp.oo)), sp.simplify(moment[0]))))
    steps.append(Step("E_p[x] = Σ w_k E_k[x]", sp.Eq(E1, moment[1])))
    steps.append(Step("E_p[x^2] = Σ w_k E_k[x^2]", sp.Eq(E2, moment[2])))
    mean = m_star.subs({E1: moment[1], E2: moment[2]})
    var = _tidy_variance(var_star.subs({E1: moment[1], E2: moment[2]}))
    result = sp.ImmutableMatrix([mean, var])
    steps.append(Step("Substitute into m = E_p[x], s^2 = E_p[x^2] - E_p[x]^2",
                      sp.Eq(sp.Matrix([m, s**2]), sp.Matrix(result))))
    return Derivation(result, tuple(steps))


def derive_reverse_fit_gradient() -> Derivation:
    """1b, ``kl-reverse-fit``: the stationary equations of reverse KL over q = N(m, s^2).

    .. math:: R(m, s) = \\int q \\log q - \\int q \\log p = -\\tfrac12\\log(2\\pi e s^2) - E_q[\\log p]

    Differentiating under the integral, the gradient weights log p by
    ∂q/∂m = q (x - m)/s^2 and ∂q/∂s = q ((x - m)^2/s^3 - 1/s): only where q has
    mass does p matter. For a mode of p that is far from the others,
    log p ≈ log w_k + log N(x | mu_k, sigma_k^2) under q; the equations then
    solve to m = mu_k, s = sigma_k with R = -log w_k (the last steps): one local
    optimum per mode, the heaviest mode the best.
    """
    q = normal_density(m, s)
    R = KL_REVERSE
    qf = sp.Function("q")
    steps = [Step("Definition of the reverse KL of q from the target p",
                  sp.Eq(R, sp.Integral(qf(x) * sp.log(qf(x) / p(x)), (x, -sp.oo, sp.oo)))),
             Step("q = N(m, s^2), only m and s free", sp.Eq(qf(x), q))]
    log_q = sp.expand(sp.expand_log(sp.log(q), force=True))
    qm = integrate_moments(q, x, 2)
    neg_entropy = sp.simplify(expect_polynomial(log_q, x, qm))
    steps.append(Step("∫ q log q: log q is a quadratic in x, integrate against q's moments",
                      sp.Eq(sp.Integral(qf(x) * sp.log(qf(x)), (x, -sp.oo, sp.oo)), neg_entropy)))
    cross = sp.Integral(q * sp.log(p(x)), (x, -sp.oo, sp.oo))
    objective = neg_entropy - cross
    steps.append(Step("Reverse KL as a function of (m, s)", sp.Eq(R, objective)))
    log_p = sp.log(p(x))

    def shape(integral: sp.Integral) -> sp.Integral:
        # Show the integrand as q times its log-derivative in m or s: what weights log p.
        factor = sp.factor(sp.simplify(integral.function / (q * log_p)))
        return sp.Integral(factor * q * log_p, *integral.limits)

    grad = []
    for v in (m, s):
        g = sp.diff(objective, v)  # SymPy differentiates under the integral sign
        g = g.replace(lambda e: isinstance(e, sp.Integral), shape)
        grad.append(g)
        steps.append(Step(f"∂/∂{v}: differentiate under the integral sign",
                          sp.Eq(sp.Derivative(R, v), g)))
    result = sp.ImmutableMatrix(grad)
    steps.append(Step("Stationary equations of the reverse fit (solved numerically for a mixture)",
                      sp.Eq(sp.Matrix(grad), sp.zeros(2, 1))))
    with supporting("the separated-mode limit: q on a component, reverse KL -> -log w_k"):
        steps += _mode_locking_steps(neg_entropy, qm, R)
    return Derivation(result, tuple(steps))


#: The separated-mode analysis: p = w_k N(mu_k, sigma_k^2) + w_j N(mu_k + Delta, sigma_j^2), Delta -> oo.
W_K = sp.Symbol("w_k", positive=True)
MU_K = sp.Symbol("mu_k", real=True)
SIGMA_K, SIGMA_J = sp.Symbol("sigma_k", positive=True), sp.Symbol("sigma_j", positive=True)
SEPARATION = sp.Symbol("Delta", positive=True)


def gaussian_overlap() -> sp.Expr:
    """∫ sqrt(N(x | mu_k, sigma_k^2) N(x | mu_k + Delta, sigma_j^2)) dx, by a Gaussian integral (SymPy)."""
    half_log = sp.expand(sp.expand_log(
        sp.log(normal_density(MU_K, SIGMA_K) * normal_density(MU_K + SEPARATION, SIGMA_J)) / 2, force=True))
    poly = sp.Poly(half_log, x)
    c2, c1, c0 = (poly.coeff_monomial(x**k) for k in (2, 1, 0))
    A, B = sp.Symbol("A", positive=True), sp.Symbol("B", real=True)
    gauss = sp.integrate(sp.exp(-A * x**2 + B * x), (x, -sp.oo, sp.oo))
    value = sp.simplify(gauss.subs({A: -c2, B: c1}) * sp.exp(c0))
    # Tidy the exponent (a rational function of the parameters) for the reader.
    return value.replace(lambda e: isinstance(e, sp.exp), lambda e: sp.exp(sp.factor(sp.cancel(e.args[0]))))


def _mode_locking_steps(neg_entropy: sp.Expr, qm: dict, R: sp.Symbol) -> list[Step]:
    """Steps (and requires) of the separated-mode limit of reverse KL; run inside a supporting block.

    p = w_k N_k (1 + r) with r = w_j N_j / (w_k N_k), so
    KL(q || p) = KL(q || w_k N_k) - E_q[log(1 + r)]. The first term is minimised
    at q = N_k with value -log w_k; 0 <= log(1 + r) <= sqrt(r) bounds the second
    by sqrt(w_j/w_k) times the overlap ∫ sqrt(N_k N_j), whose limit as the modes
    separate is 0.
    """
    steps = []
    log_p_local = sp.expand(sp.expand_log(sp.log(W_K * normal_density(MU_K, SIGMA_K)), force=True))
    local = neg_entropy - expect_polynomial(log_p_local, x, qm)
    steps.append(Step("Separated modes: for p = w_k N_k + w_j N_j write p = w_k N_k (1 + r), r = w_j N_j/(w_k N_k); "
                      "then KL(q || p) = KL(q || w_k N_k) - E_q[log(1 + r)], and the first term is",
                      sp.Eq(sp.Symbol("KL(q || w_k N_k)"), sp.simplify(local))))
    local_grad = [sp.simplify(sp.diff(local, v)) for v in (m, s)]
    sol = sp.solve(local_grad, [m, s], dict=True)
    require(lambda: len(sol) == 1, "one stationary point of KL(q || w_k N_k)")
    at = sol[0]
    value = sp.simplify(local.subs(at))
    hess = sp.simplify(sp.hessian(local, (m, s)).subs(at))
    require(lambda: hess.is_positive_definite, "its Hessian is positive definite there")
    steps.append(Step("Its gradient vanishes only at q = N_k (the Hessian there is positive definite): "
                      "the minimum, with value",
                      sp.Eq(sp.Matrix([m, s, sp.Symbol("KL(q || w_k N_k)")]), sp.Matrix([at[m], at[s], value]))))
    u = sp.Symbol("u", nonnegative=True)  # u = sqrt(r)
    lemma = u - sp.log(1 + u**2)
    slope = sp.factor(sp.diff(lemma, u))
    require(lambda: lemma.subs(u, 0) == 0 and slope.is_nonnegative, "sqrt(r) - log(1 + r) >= 0 for r >= 0")
    steps.append(Step("0 <= log(1 + r) <= sqrt(r) for r >= 0: with u = sqrt(r), u - log(1 + u^2) is 0 at u = 0 and "
                      "its derivative is non-negative",
                      sp.Eq(sp.Derivative(lemma, u), slope)))
    overlap = gaussian_overlap()
    bound = sp.sqrt((1 - W_K) / W_K) * overlap
    steps.append(Step("So at q = N_k, 0 <= E_q[log(1 + r)] <= E_q[sqrt(r)] = sqrt(w_j/w_k) ∫ sqrt(N_k N_j) dx, "
                      "with N_j centred Delta from N_k",
                      sp.Eq(sp.Symbol("E_q[sqrt(r)]"), bound)))
    limit = sp.limit(bound, SEPARATION, sp.oo)
    require(lambda: limit == 0, "the bound vanishes as the modes separate")
    steps.append(Step("As the modes separate the bound vanishes, so KL(N_k || p) -> -log w_k: one local optimum per "
                      "mode, the heaviest the best. That the optimum itself converges to N_k needs the convergence "
                      "to be uniform near the mode, which SymPy cannot establish: the check 'one local optimum per "
                      "mode' covers it numerically",
                      sp.Eq(sp.Limit(sp.Symbol("E_q[sqrt(r)]"), SEPARATION, sp.oo), limit)))
    return steps


def _kl_by_integration(var: sp.Symbol, m1: sp.Expr, s1: sp.Expr, m2: sp.Expr, s2: sp.Expr,
                       moments: dict[int, sp.Expr]) -> sp.Expr:
    """KL(N(m1, s1^2) || N(m2, s2^2)) = ∫ q log(q/r) d var from the ``moments`` of q = N(m1, s1^2).

    Integrates over ``var`` itself (not x) so that the parameters may contain x.
    """
    return sp.simplify(kl_normals_by_moments(m1, s1, m2, s2, var, moments)[2])


def _tidy(expr: sp.Expr, var: sp.Symbol) -> sp.Expr:
    """Rewrite a log-quadratic expression readably: its log terms, then the square completed in ``var``.

    Only regroups: the output equals the input (the ``elbo-gap`` checks
    compare the derived result with an independent hand form anyway).
    """
    e = sp.expand(sp.expand_log(expr, force=True))
    logs = sorted(e.atoms(sp.log), key=str)
    parts = sp.collect(e, logs, evaluate=False)
    out = sum((sp.simplify(parts[lg]) * lg for lg in logs if lg in parts), sp.Integer(0))
    rest = sp.expand(parts.get(sp.S.One, sp.Integer(0)))
    poly = sp.Poly(rest, var)
    if poly.degree() == 2:
        c2, c1, c0 = (poly.coeff_monomial(var**k) for k in (2, 1, 0))
        out += sp.factor(c2) * (var + sp.factor(c1 / (2 * c2))) ** 2 + sp.factor(sp.simplify(c0 - c1**2 / (4 * c2)))
    else:
        out += sp.factor(rest)
    return out


def _log_gaussian_integral(expr_log: sp.Expr, var: sp.Symbol, steps: list[Step], what: str) -> sp.Expr:
    """log ∫ exp(expr_log) d var for expr_log a concave quadratic in ``var``.

    The integral of exp(-A var^2 + B var) is computed by SymPy once, with A > 0
    and B symbols, and the coefficients of expr_log are substituted.
    """
    poly = sp.Poly(sp.expand(expr_log), var)
    c2, c1, c0 = (poly.coeff_monomial(var**k) for k in (2, 1, 0))
    A, B = sp.Symbol("A", positive=True), sp.Symbol("B", real=True)
    gauss = sp.simplify(sp.integrate(sp.exp(-A * var**2 + B * var), (var, -sp.oo, sp.oo)))
    steps.append(Step(f"{what}: the exponent is -A {var}^2 + B {var} + C, and the Gaussian integral is",
                      sp.Eq(sp.Integral(sp.exp(-A * var**2 + B * var), (var, -sp.oo, sp.oo)), gauss)))
    steps.append(Step("with", sp.Eq(sp.Matrix([A, B]), sp.Matrix([sp.factor(-c2), sp.factor(c1)]))))
    return sp.log(gauss.subs({A: sp.factor(-c2), B: sp.factor(c1)})) + c0


LOG_EVIDENCE = label("log p(x)", r"\log p(x)")
ELBO = label("ELBO(q)", r"\mathrm{ELBO}(q)")
KL_POST = label("D_KL(q||p(z|x))", r"D_{\mathrm{KL}}(q \,\|\, p(z \mid x))")


def derive_elbo_gap() -> Derivation:
    """1c, ``elbo-gap``: log p(x) - ELBO(q) = KL(q(z) || p(z|x)) for a conjugate Gaussian model.

    z ~ N(0, 1), x | z ~ N(a z + b, sigma_x^2), q(z) = N(mu, sigma^2). Computed:
    the evidence p(x) = ∫ p(x|z) p(z) dz; the posterior (log p(x, z) - log p(x)
    is a quadratic in z, read off its coefficients); the ELBO
    E_q[log p(x|z)] - KL(q || p(z)) with both terms integrated against q (the KL
    term is ``kl-vae``); the gap log p(x) - ELBO; and KL(q || p(z|x)) by
    integration. The gap equals that KL: the ELBO is tight exactly at q = p(z|x).
    """
    prior = normal_density(0, 1, z)
    lik = normal_density(a * z + b, sigma_x, xo)
    steps = [Step("Model: prior p(z) = N(0, 1) times decoder p(x|z) = N(a z + b, sigma_x^2)",
                  sp.Eq(sp.Function("p")(xo, z), prior * lik))]
    log_joint = sp.expand(sp.expand_log(sp.log(prior * lik), force=True))
    log_evidence = _tidy(_log_gaussian_integral(log_joint, z, steps, "Evidence p(x) = ∫ p(x|z) p(z) dz"), xo)
    steps.append(Step("log p(x)", sp.Eq(LOG_EVIDENCE, log_evidence)))
    post_poly = sp.Poly(sp.expand(log_joint - log_evidence), z)
    post_var = sp.simplify(-1 / (2 * post_poly.coeff_monomial(z**2)))
    post_mean = sp.simplify(post_poly.coeff_monomial(z) * post_var)
    steps.append(Step("Posterior p(z|x) = p(x, z)/p(x): its log is quadratic in z, so it is Gaussian with",
                      sp.Eq(sp.Matrix([POSTERIOR_MEAN, POSTERIOR_VAR]),
                            sp.Matrix([post_mean, post_var]))))
    qm = integrate_moments(normal_density(mu, sigma, z), z, 2)  # q(z)'s moments: used three times
    log_lik = sp.expand(sp.expand_log(sp.log(lik), force=True))
    exp_loglik = _tidy(expect_polynomial(log_lik, z, qm), xo)
    steps.append(Step("Reconstruction term: log p(x|z) is quadratic in z; integrate against q's moments",
                      sp.Eq(EXPECTED_LOGLIK, exp_loglik)))
    kl_prior = _kl_by_integration(z, mu, sigma, sp.Integer(0), sp.Integer(1), qm)
    steps.append(Step("KL term KL(q || N(0, 1)) by integration (the kl-vae result, one latent dimension)",
                      sp.Eq(KL_PRIOR, kl_prior)))
    elbo = exp_loglik - kl_prior
    steps.append(Step("ELBO(q) = E_q[log p(x|z)] - KL(q || p(z))", sp.Eq(ELBO, elbo)))
    gap = _tidy(log_evidence - elbo, mu)
    steps.append(Step("Gap log p(x) - ELBO(q), square completed in mu", sp.Eq(LOG_EVIDENCE - ELBO, gap)))
    with supporting("the gap equals KL(q || p(z|x)), integrated independently"):
        kl_post = _kl_by_integration(z, mu, sigma, post_mean, sp.sqrt(post_var), qm)
        steps.append(Step("KL(q || p(z|x)) by integration against q",
                          sp.Eq(KL_POST, _tidy(kl_post, mu))))
        diff = sp.simplify(sp.expand(sp.expand_log(gap - kl_post, force=True)))
        require(diff == 0, "log p(x) - ELBO(q) - KL(q || p(z|x)) = 0")
        steps.append(Step("Their difference simplifies to 0: log p(x) = ELBO(q) + KL(q || p(z|x)) for every q",
                          sp.Eq(LOG_EVIDENCE - ELBO - KL_POST, diff)))
    return Derivation(gap, tuple(steps))
