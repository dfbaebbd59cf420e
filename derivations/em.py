r"""EM for a mixture of multivariate Bernoullis (homework question 2), derived in SymPy.

The model: an image :math:`x^{(i)} \in \{0,1\}^D` (i = 1..N) has a latent one-hot
code :math:`z^{(i)} \in \{e_1, \dots, e_K\}` with :math:`P(z^{(i)} = e_k) = \pi_k`,
and given :math:`z^{(i)} = e_k` its pixels are independent,
:math:`x^{(i)}_d \sim \mathrm{Bernoulli}(p^{(k)}_d)`. Symbols follow the write-up
and the claim parser: ``x[i, d]`` is :math:`x^{(i)}_d`, ``p[k, d]`` is
:math:`p^{(k)}_d`, ``pi[k]`` is :math:`\pi_k`, ``z[i, k]`` is :math:`z^{(i)}_k`,
``eta[i, k]`` is :math:`\eta(z^{(i)}_k)`; sizes N, K, D; indices i, k, d.

Everything below is computed from those definitions with symbolic sizes:

* the pixel pmf :math:`p^{x}(1-p)^{1-x}` by solving for the log-linear form that
  takes the Bernoulli pmf's two values (``sympy.stats.Bernoulli``);
* the one-hot pmfs :math:`\prod_k \pi_k^{z_k}` by solving
  :math:`\log P(z) = \sum_k c_k z_k` at :math:`z = e_j` (Kronecker deltas, summed
  by SymPy);
* the joint at :math:`z = e_j` by substituting Kronecker deltas into the log of
  the complete-data likelihood; the mixture by summing it over j; the
  responsibility by Bayes' rule;
* :math:`Q = \mathbb{E}_{Z\mid X}[\log P(Z, X)]`, linear in z, so
  :math:`z^{(i)}_k \to \mathbb{E}[z^{(i)}_k] = \eta^{(i)}_k`;
* the M-step by ``sp.diff`` of Q with respect to an entry :math:`p^{(m)}_e`
  (indexed differentiation gives Kronecker deltas, which the sums absorb),
  ``sp.solve`` for the stationary point, and a Lagrangian with multiplier
  :math:`\lambda` for :math:`\sum_k \pi_k = 1`.

Reference: C. M. Bishop, *Pattern Recognition and Machine Learning* (2006),
section 9.3.3.

(Somewhat over 500 lines: questions 2a to 2c are one chain, each derivation reusing the
previous one's symbols and expressions (the joint, Q, the Lagrangian); split, the chain
would be spread over modules that import each other.)

>>> derive_em_p_update().result.xreplace({N: 2}).doit()  # a responsibility-weighted mean of pixel d
(eta[1, k]*x[1, d] + eta[2, k]*x[2, d])/(eta[1, k] + eta[2, k])
"""

from __future__ import annotations

import functools

import sympy as sp
from sympy.stats import Bernoulli, E, density

from genverify.core import Derivation, Step
from genverify.derivations.support import require, supporting

# -- sizes and indices (the claim parser binds \sum_{i=1}^N to Symbol("i", integer=True))
N = sp.Symbol("N", integer=True, positive=True)
K = sp.Symbol("K", integer=True, positive=True)
D = sp.Symbol("D", integer=True, positive=True)
i = sp.Symbol("i", integer=True)
k = sp.Symbol("k", integer=True)
d = sp.Symbol("d", integer=True)
#: A second component index (the summation variable of a normaliser).
j = sp.Symbol("j", integer=True)
#: The entry p^{(m)}_e / pi_m that the M-step differentiates by (1 <= m <= K, 1 <= e <= D).
m = sp.Symbol("m", integer=True, positive=True)
e = sp.Symbol("e", integer=True, positive=True)

# -- data, parameters, latents
x = sp.IndexedBase("x", integer=True)  # x[i, d] in {0, 1} (x[d] for one image)
p = sp.IndexedBase("p", real=True)  # p[k, d] in (0, 1) (p[d] for one component)
pi = sp.IndexedBase("pi", positive=True)  # pi[k], sum_k pi[k] = 1
z = sp.IndexedBase("z", integer=True)  # z[i, k] in {0, 1}, one-hot in k
eta = sp.IndexedBase("eta", positive=True)  # eta[i, k] = P(z[i, k] = 1 | x^(i)), sums to 1 in k
c = sp.IndexedBase("c")  # coefficients of a log-linear ansatz
lam = sp.Symbol("lambda")  # Lagrange multiplier for sum_k pi_k = 1

#: The ranges the free indices live in, as facts used to resolve SymPy's
#: "index inside the summation range" Piecewise conditions.
INDEX_RANGES = {k: K, j: K, m: K, d: D, e: D, i: N}


# ----------------------------------------------------------------- helpers


def _range_facts(ranges=INDEX_RANGES) -> dict:
    facts = {}
    for s, hi in ranges.items():
        for rel in (sp.Ge(s, 1), sp.Le(1, s), sp.Gt(s, 0), sp.Lt(0, s), sp.Le(s, hi), sp.Ge(hi, s),
                    sp.Lt(s, hi + 1), sp.Gt(hi + 1, s)):
            if rel not in (sp.true, sp.false):
                facts[rel] = sp.true
    return facts


def in_range(expr: sp.Expr, ranges=INDEX_RANGES) -> sp.Expr:
    """Resolve ``Piecewise((a, 1 <= k <= K), (0, True))`` to ``a`` for an index k known to lie in its range.

    Summing a Kronecker delta over a range gives such a Piecewise; the index
    is a component (pixel, image) index, so the condition holds.
    """
    facts = _range_facts(ranges)

    def pick(*args):
        for val, cond in args:
            cnd = cond.xreplace(facts) if cond not in (sp.true, sp.false) else cond
            if cnd not in (sp.true, sp.false):
                cnd = sp.simplify(cnd)
            if cnd == sp.true:
                return val
            if cnd != sp.false:
                return sp.Piecewise(*args)
        return sp.Piecewise(*args)

    return expr.replace(lambda a: isinstance(a, sp.Piecewise), lambda a: pick(*a.args))


def _expand_summands(expr: sp.Expr) -> sp.Expr:
    return expr.replace(lambda a: isinstance(a, sp.Sum), lambda a: sp.Sum(sp.expand(a.function), *a.limits))


def _collapsible(a: sp.Basic) -> bool:
    # Only sums over a Kronecker delta: ``doit`` on the others tries (slow, futile) closed forms.
    return isinstance(a, sp.Sum) and (a.function.has(sp.KroneckerDelta) or a.function == 0)


def collapse(expr: sp.Expr, ranges=INDEX_RANGES) -> sp.Expr:
    """Evaluate the Kronecker deltas in ``expr``: expand summands, ``doit``, drop in-range conditions."""
    for _ in range(12):
        if not any(_collapsible(a) for a in sp.preorder_traversal(_expand_summands(expr))):
            break
        new = in_range(_expand_summands(expr).replace(_collapsible, lambda a: a.doit(deep=False)), ranges)
        if new == expr:
            break
        expr = new
    return in_range(expr, ranges)


def pull_out_constants(expr: sp.Expr) -> sp.Expr:
    """Split every Sum over its summand's terms and move factors free of the summation index outside."""

    def split(s: sp.Sum) -> sp.Expr:
        variables = [lim[0] for lim in s.limits]
        out = sp.S.Zero
        for term in sp.Add.make_args(sp.expand(s.function)):
            factors = sp.Mul.make_args(term)
            inside = [f for f in factors if f.has(*variables)]
            outside = [f for f in factors if not f.has(*variables)]
            out += sp.Mul(*outside) * sp.Sum(sp.Mul(*inside), *s.limits)
        return out

    return expr.replace(lambda a: isinstance(a, sp.Sum), split)


def combine_sums(expr: sp.Expr) -> sp.Expr:
    """Merge the terms c * Sum(f, limits) of an Add that share their limits; collect each summand by its logs."""

    def merge(add: sp.Add) -> sp.Expr:
        groups: dict[tuple, sp.Expr] = {}
        rest = sp.S.Zero
        for term in add.args:
            sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
            if len(sums) != 1:
                rest += term
                continue
            coeff = sp.Mul(*[f for f in sp.Mul.make_args(term) if f is not sums[0]])
            if coeff.has(*[lim[0] for lim in sums[0].limits]):
                rest += term
                continue
            groups[sums[0].limits] = groups.get(sums[0].limits, sp.S.Zero) + coeff * sums[0].function
        out = rest
        for limits, f in groups.items():
            f = sp.expand(f)
            out += sp.Sum(sp.collect(f, sorted(f.atoms(sp.log), key=str)), *limits)
        return out

    return expr.replace(lambda a: isinstance(a, sp.Add) and a.has(sp.Sum), merge)


def log_of_products(expr: sp.Expr) -> sp.Expr:
    """log prod_i f_i = sum_i log f_i, and log(a b^c) = log a + c log b (every factor is positive)."""
    for _ in range(8):
        new = sp.expand_log(expr, force=True)
        new = new.replace(lambda a: isinstance(a, sp.log) and isinstance(a.args[0], sp.Product),
                          lambda a: sp.Sum(sp.log(a.args[0].function), *a.args[0].limits))
        if new == expr:
            break
        expr = new
    return expr


def exp_of_sums(expr: sp.Expr) -> sp.Expr:
    """exp(sum_k a_k) = prod_k exp(a_k), exp(a + b) = exp(a) exp(b) and exp(c log b) = b^c."""

    def rewrite(arg: sp.Expr) -> sp.Expr:
        if isinstance(arg, sp.Sum):
            return sp.Product(rewrite(arg.function), *arg.limits)
        if isinstance(arg, sp.Add):
            return sp.Mul(*[rewrite(t) for t in arg.args])
        logs = [f for f in sp.Mul.make_args(arg) if isinstance(f, sp.log)]
        if len(logs) == 1:
            return sp.Pow(logs[0].args[0], sp.Mul(*[f for f in sp.Mul.make_args(arg) if f is not logs[0]]))
        return sp.exp(arg)

    return expr.replace(lambda a: isinstance(a, sp.exp), lambda a: rewrite(a.args[0]))


def one_hot(index: sp.Symbol, at: sp.Symbol) -> sp.Expr:
    """Entry ``index`` of the one-hot code e_at."""
    return sp.KroneckerDelta(index, at)


# ----------------------------------------------------------------- 2a-i


@functools.lru_cache(maxsize=None)
def _pixel_pmf() -> tuple[sp.Expr, sp.Symbol, sp.Symbol, tuple[Step, ...]]:
    """The pmf of one Bernoulli pixel as p^x (1-p)^(1-x), solved from its two values."""
    pd = sp.Symbol("p_d", positive=True)
    xd = sp.Symbol("x_d", integer=True)
    values = density(Bernoulli("X_d", pd)).dict  # {1: p_d, 0: 1 - p_d}
    definition = sp.Piecewise((values[1], sp.Eq(xd, 1)), (values[0], sp.Eq(xd, 0)))
    a, b = sp.symbols("a b")
    # log P(x_d) is a function on {0, 1}: the line a + b x_d through its two values.
    sol = sp.solve([sp.Eq(a + b * 0, sp.log(values[0])), sp.Eq(a + b * 1, sp.log(values[1]))], [a, b], dict=True)[0]
    log_pmf = sp.collect(sp.expand(sol[a] + sol[b] * xd), [sp.log(pd), sp.log(1 - pd)])
    pmf = exp_of_sums(sp.exp(log_pmf))
    steps = (
        Step("Definition: a pixel is Bernoulli(p_d) (sympy.stats)", sp.Eq(sp.Symbol("P(x[d] | p[d])"), definition)),
        Step("log P(x_d) on {0, 1} is the line a + b x_d through its two values; solve for a, b",
             sp.Eq(sp.Symbol("log P(x[d] | p[d])"), log_pmf)),
        Step("Exponentiate: one formula for both values of x_d", sp.Eq(sp.Symbol("P(x[d] | p[d])"), pmf)),
    )
    return pmf, pd, xd, steps


def bernoulli(p_entry, x_entry) -> sp.Expr:
    """The derived pixel pmf with p_d, x_d replaced by the given entries."""
    pmf, pd, xd, _ = _pixel_pmf()
    return pmf.xreplace({pd: p_entry, xd: x_entry})


def image_likelihood(component, image) -> sp.Expr:
    """P(x^(image) | p^(component)) = prod_d (pixel pmf); ``None`` means the 1-index forms p[d], x[d]."""
    p_d = p[d] if component is None else p[component, d]
    x_d = x[d] if image is None else x[image, d]
    return sp.Product(bernoulli(p_d, x_d), (d, 1, D))


def derive_bernoulli_likelihood() -> Derivation:
    """2a-i: P(x | p) for one image and one component: independent pixels multiply."""
    _, _, _, steps = _pixel_pmf()
    result = image_likelihood(None, None)
    steps = steps + (Step("Pixels are independent given p: multiply over d = 1..D",
                          sp.Eq(sp.Symbol("P(x | p)"), result)),)
    return Derivation(result, steps)


# ----------------------------------------------------------------- 2b-i: one-hot pmfs


def _one_hot_log_linear(value_at_j: sp.Expr, what: str, name: str = "P(z[i])") -> tuple[sp.Expr, list[Step]]:
    """Find prod_k f_k^{z_k} from P(z = e_j) = f_j: solve log P(z) = sum_k c_k z_k at z = e_j.

    ``value_at_j`` is f_j (an expression in the index j). A constant term is
    not needed: on one-hot codes sum_k z_k = 1 absorbs it into the c_k.
    Returns the product form for image i (exponents z[i, k]) and the steps.
    """
    ansatz = sp.Sum(c[k] * z[i, k], (k, 1, K))
    at_e_j = collapse(ansatz.xreplace({z[i, k]: one_hot(k, j)}))
    sol = sp.solve(sp.Eq(at_e_j, sp.log(value_at_j)), c[j], dict=True)[0][c[j]]
    coefficient = sol.xreplace({j: k})
    pmf = exp_of_sums(sp.exp(ansatz.xreplace({c[k]: coefficient})))
    steps = [
        Step(f"Definition: z^(i) is one-hot, P(z^(i) = e_j) = {what}",
             sp.Eq(sp.Symbol("P(z[i] = e[j])"), value_at_j)),
        Step(f"Ansatz: log {name} linear in the code z^(i)", sp.Eq(sp.Symbol(f"log {name}"), ansatz)),
        Step("At z^(i) = e_j (z_k^(i) = delta_kj) the sum over k gives",
             sp.Eq(at_e_j, sp.log(value_at_j))),
        Step("Solve for the coefficient", sp.Eq(c[k], coefficient)),
        Step("Exponentiate the ansatz", pmf),
    ]
    return pmf, steps


@functools.lru_cache(maxsize=None)
def derive_latent_prior() -> Derivation:
    """2b-i: P(z^(i) | pi) = prod_k pi_k^{z_k^(i)}."""
    pmf, steps = _one_hot_log_linear(pi[j], "pi_j")
    steps[-1] = Step("Exponentiate: P(z^(i) | pi)", sp.Eq(sp.Symbol("P(z[i] | pi)"), pmf))
    return Derivation(pmf, tuple(steps))


@functools.lru_cache(maxsize=None)
def derive_conditional_likelihood() -> Derivation:
    """2b-i: P(x^(i) | z^(i), p) = prod_k P(x^(i) | p^(k))^{z_k^(i)}."""
    given_j = image_likelihood(j, i)
    pmf, steps = _one_hot_log_linear(given_j, "P(x^(i) | p^(j)) (2a-i with p = p^(j))", "P(x[i] | z[i], p)")
    steps[0] = Step("Definition: given z^(i) = e_j the image is drawn from component j (2a-i)",
                    sp.Eq(sp.Symbol("P(x[i] | z[i] = e[j], p)"), given_j))
    # The solved coefficient is a log of a product: show it as the sum of pixel terms.
    steps[-1] = Step("Exponentiate: P(x^(i) | z^(i), p)", sp.Eq(sp.Symbol("P(x[i] | z[i], p)"), pmf))
    return Derivation(pmf, tuple(steps))


# ----------------------------------------------------------------- 2b-ii


@functools.lru_cache(maxsize=None)
def derive_complete_data_likelihood() -> Derivation:
    """2b-ii: P(Z, X | pi, p) = prod_i P(z^(i) | pi) P(x^(i) | z^(i), p)."""
    prior = derive_latent_prior().result
    cond = derive_conditional_likelihood().result
    joint_i = prior * cond
    result = sp.Product(joint_i, (i, 1, N))
    steps = (
        Step("Chain rule for one image: P(z^(i), x^(i)) = P(z^(i) | pi) P(x^(i) | z^(i), p)",
             sp.Eq(sp.Symbol("P(z[i], x[i] | pi, p)"), joint_i)),
        Step("Images (with their codes) are i.i.d.: multiply over i = 1..N",
             sp.Eq(sp.Symbol("P(Z, X | pi, p)"), result)),
    )
    return Derivation(result, steps)


# ----------------------------------------------------------------- 2a-ii, 2a-iii: marginalise z


@functools.lru_cache(maxsize=None)
def _joint_at_j() -> tuple[sp.Expr, tuple[Step, ...]]:
    """P(x^(i), z^(i) = e_j): substitute the one-hot code e_j into log P(z^(i), x^(i))."""
    prior = derive_latent_prior().result
    cond = derive_conditional_likelihood().result
    log_joint = log_of_products(sp.log(prior * cond))
    # j, not k: k is the summation variable of the products over components.
    at = combine_sums(collapse(log_joint.xreplace({z[i, k]: one_hot(k, j)})))
    joint = exp_of_sums(sp.exp(at))
    steps = (
        Step("log of the joint of one image, P(z^(i) | pi) P(x^(i) | z^(i), p)",
             sp.Eq(sp.Symbol("log P(z[i], x[i])"), log_joint)),
        Step("At z^(i) = e_j (z_k^(i) = delta_kj) the sums over k collapse",
             sp.Eq(sp.Symbol("log P(x[i], z[i, j] = 1)"), at)),
        Step("Exponentiate", sp.Eq(sp.Symbol("P(x[i], z[i, j] = 1)"), joint)),
    )
    return joint, steps


def _joint_at(component: sp.Symbol) -> tuple[sp.Expr, tuple[Step, ...]]:
    """P(x^(i), z^(i) = e_component); the collapsed joint has no sum over k left, so renaming j is safe."""
    joint, steps = _joint_at_j()
    if component == j:
        return joint, steps
    joint = joint.xreplace({j: component})
    return joint, steps + (Step(f"The same for component {component}",
                                sp.Eq(sp.Symbol(f"P(x[i], z[i, {component}] = 1)"), joint)),)


@functools.lru_cache(maxsize=None)
def derive_mixture_likelihood() -> Derivation:
    """2a-ii: P(x^(i) | pi, p) = sum_k pi_k P(x^(i) | p^(k)), by summing the joint over the K codes."""
    joint, steps = _joint_at(j)
    result = sp.Sum(joint.xreplace({j: k}), (k, 1, K))
    steps = steps + (Step("Marginalise the latent code: sum over its K values e_k",
                          sp.Eq(sp.Symbol("P(x[i] | pi, p)"), result)),)
    return Derivation(result, steps)


def derive_mixture_log_likelihood() -> Derivation:
    """2a-iii: log P(X | pi, p) = sum_i log sum_k pi_k P(x^(i) | p^(k))."""
    per_image = derive_mixture_likelihood().result
    likelihood = sp.Product(per_image, (i, 1, N))
    result = log_of_products(sp.log(likelihood))
    # expand_log also splits log(pi_k prod ...) inside the sum over k; keep the sum whole.
    steps = (
        Step("Images are i.i.d.: P(X | pi, p) is the product of the mixture likelihoods (2a-ii)",
             sp.Eq(sp.Symbol("P(X | pi, p)"), likelihood)),
        Step("The log of a product is the sum of the logs", sp.Eq(sp.Symbol("log P(X | pi, p)"), result)),
    )
    return Derivation(result, steps)


# ----------------------------------------------------------------- 2b-iii: Bayes' rule


def derive_em_responsibility() -> Derivation:
    """2b-iii: eta(z_k^(i)) = P(z_k^(i) = 1 | x^(i)) = P(x^(i), z_k^(i) = 1) / sum_j P(x^(i), z_j^(i) = 1)."""
    numerator, steps_k = _joint_at(k)
    denominator = sp.Sum(_joint_at(j)[0], (j, 1, K))
    result = numerator / denominator
    steps = steps_k + (
        Step("The evidence: sum the joint over the K codes (2a-ii)", sp.Eq(sp.Symbol("P(x[i] | pi, p)"), denominator)),
        Step("Bayes' rule: posterior = joint / evidence", sp.Eq(sp.Symbol("eta[i, k]"), result)),
    )
    return Derivation(result, steps)


# ----------------------------------------------------------------- Q


@functools.lru_cache(maxsize=None)
def derive_em_expected_complete_log_likelihood() -> Derivation:
    """Q(pi, p) = E_{Z|X}[log P(Z, X | pi, p)] = sum_i sum_k eta_k^(i) [log pi_k + log P(x^(i) | p^(k))]."""
    complete = derive_complete_data_likelihood().result
    log_complete = log_of_products(sp.log(complete))
    steps = [Step("log of the complete-data likelihood (2b-ii)", sp.Eq(sp.Symbol("log P(Z, X | pi, p)"), log_complete))]
    with supporting("log P(Z, X) is linear in every z entry"):
        # Linear in every z entry: the second derivative vanishes, so E[.] moves onto each z.
        a, b = sp.symbols("a b", integer=True, positive=True)
        curvature = collapse(sp.diff(log_complete, z[a, b], 2), {**INDEX_RANGES, a: N, b: K})
        require(curvature == 0, "the second derivative of log P(Z, X) in z[a, b] is 0")
        steps.append(Step("It is linear in each z_b^(a): the second derivative is",
                          sp.Eq(sp.Symbol("second derivative in z[a, b]"), curvature)))
    z_ik = Bernoulli("z_ik", eta[i, k])  # given x^(i), z_k^(i) is 0/1 with P(1) = eta_k^(i)
    mean = E(z_ik)
    result = log_complete.xreplace({z[i, k]: mean})
    steps += [
        Step("so the posterior expectation replaces z_k^(i) by E[z_k^(i) | x^(i)] (a 0/1 variable)",
             sp.Eq(sp.Symbol("E[z[i, k] | x[i]]"), mean)),
        Step("Expected complete-data log-likelihood", sp.Eq(sp.Symbol("Q(pi, p)"), result)),
    ]
    return Derivation(result, tuple(steps))


# ----------------------------------------------------------------- 2c: the M-step


def derive_em_p_update() -> Derivation:
    """2c-i: solve dQ/dp_e^(m) = 0."""
    Q = derive_em_expected_complete_log_likelihood().result
    gradient = collapse(sp.diff(Q, p[m, e]))
    sol = sp.solve(sp.Eq(pull_out_constants(gradient), 0), p[m, e], dict=True)
    if len(sol) != 1:  # pragma: no cover
        raise AssertionError(f"expected one stationary point, got {sol}")
    stationary = sp.simplify(sol[0][p[m, e]])

    def tidy(s: sp.Sum) -> sp.Sum:  # partial fractions in p_e^(m), for display
        return sp.Sum(sp.factor_terms(sp.apart(s.function, p[m, e])), *s.limits)

    grad = gradient.replace(lambda a: isinstance(a, sp.Sum), tidy)
    result = stationary.xreplace({m: k, e: d})
    steps = [
        Step("Expected complete-data log-likelihood", sp.Eq(sp.Symbol("Q"), Q)),
        Step("Differentiate by one entry p_e^(m) (Kronecker deltas absorbed by the sums over k and d)",
             sp.Eq(sp.Symbol("dQ/dp[m, e]"), grad)),
        Step("Solve dQ/dp_e^(m) = 0", sp.Eq(p[m, e], stationary)),
    ]
    with supporting("second-order condition: Q is concave in p"):
        curvature = collapse(sp.diff(Q, p[m, e], 2))
        cross = [collapse(sp.diff(Q, p[m, e], p[_l, e]), _ranges_l()).subs(_l, m + _t),
                 collapse(sp.diff(Q, p[m, e], p[m, _l]), _ranges_l(D)).subs(_l, e + _t)]
        require(lambda: all(c.doit() == 0 for c in cross), "the mixed second derivatives vanish")
        # Each term at x = 0 and x = 1, with p in (0, 1) written t/(1 + t), t > 0.
        tpos = sp.Symbol("t", positive=True)
        require(lambda: isinstance(curvature, sp.Sum) and all(
            sp.simplify(curvature.function.subs(x[i, e], v).subs(p[m, e], tpos / (1 + tpos))).is_negative
            for v in (0, 1)),
            "every term of the second derivative is negative")
        steps.append(Step("Second derivatives: the mixed ones vanish and each diagonal one is a sum of negative terms "
                          "(x = 0 or 1, 0 < p < 1): the Hessian is negative definite, Q is concave in p and the "
                          "stationary point is the maximum",
                          sp.Eq(sp.Symbol("second derivative of Q in p[m, e]"),
                                curvature.replace(lambda a: isinstance(a, sp.Sum), tidy))))
    steps.append(Step("The update, for every component k and pixel d", sp.Eq(p[k, d], result)))
    return Derivation(result, tuple(steps))


#: A second component (or pixel) index, and an offset t >= 1 that makes it differ from the first.
_l = sp.Symbol("l", integer=True, positive=True)
_t = sp.Symbol("t", integer=True, positive=True)


def _ranges_l(hi: sp.Symbol = K) -> dict:
    return {**INDEX_RANGES, _l: hi}


def derive_em_pi_update() -> Derivation:
    """2c-ii: maximise Q over pi subject to sum_k pi_k = 1, with a Lagrange multiplier."""
    Q = derive_em_expected_complete_log_likelihood().result
    lagrangian = Q + lam * (sp.Sum(pi[k], (k, 1, K)) - 1)
    grad = pull_out_constants(collapse(sp.diff(lagrangian, pi[m])))
    pi_m = sp.solve(sp.Eq(grad, 0), pi[m], dict=True)[0][pi[m]]
    # Put pi_k(lambda) into the constraint and solve for lambda.
    constraint = pull_out_constants(sp.Sum(pi_m.xreplace({m: k}), (k, 1, K)))
    lam_value = sp.solve(sp.Eq(constraint, 1), lam, dict=True)[0][lam]
    general = pi_m.xreplace({lam: lam_value, m: k})
    # Each image's responsibilities sum to one, so sum_k sum_i eta = sum_i sum_k eta = sum_i 1 = N.
    row_sum = sp.Sum(eta[i, k], (k, 1, K))

    def count(s: sp.Sum) -> sp.Expr:
        flat = sp.Sum(s.function.function, *s.function.limits, *s.limits) if isinstance(s.function, sp.Sum) else s
        if flat.function != eta[i, k] or set(flat.limits) != {(i, 1, N), (k, 1, K)}:
            return s
        # Finite sums commute: sum over k first, where each image's row sums to one.
        return sp.Sum(sp.Sum(eta[i, k], (k, 1, K)).subs(row_sum, 1), (i, 1, N)).doit()

    lam_counted = lam_value.replace(lambda a: isinstance(a, sp.Sum), count)
    normalised = sp.simplify(pi_m.xreplace({lam: lam_counted, m: k}))
    with supporting("second-order condition: the Lagrangian is concave in pi"):
        curvature = collapse(sp.diff(lagrangian, pi[m], 2))
        cross = collapse(sp.diff(lagrangian, pi[m], pi[_l]), _ranges_l()).subs(_l, m + _t)
        require(lambda: cross.doit() == 0, "the mixed second derivatives vanish")
        require(lambda: isinstance(-curvature, sp.Sum) and (-curvature).function.is_positive,
                "the second derivative is minus a sum of positive terms")
    steps = (
        Step("Lagrangian for the constraint sum_k pi_k = 1", sp.Eq(sp.Symbol("L"), lagrangian)),
        Step("Differentiate by pi_m", sp.Eq(sp.Symbol("dL/dpi[m]"), grad)),
        Step("Solve dL/dpi_m = 0 for pi_m", sp.Eq(pi[m], pi_m)),
        Step("Impose sum_k pi_k = 1 and solve for lambda", sp.Eq(lam, lam_value)),
        Step("Hence pi_k = N_k / sum_j N_j", sp.Eq(pi[k], general)),
        Step("Each image's responsibilities sum to one: sum_k sum_i eta_k^(i) = sum_i 1, so",
             sp.Eq(lam, lam_counted)),
        Step("Second derivatives of L: the mixed ones vanish, each diagonal one is negative (eta, pi > 0): L is "
             "concave in pi, so the stationary point is the maximum on the simplex",
             sp.Eq(sp.Symbol("second derivative of L in pi[m]"), curvature)),
        Step("The update", sp.Eq(pi[k], normalised)),
    )
    return Derivation(normalised, steps)
