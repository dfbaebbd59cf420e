"""Check a claimed formula against the registry: ``genverify.check(id, expr)`` (issue 5).

Given a result id and a formula a student wrote, decide whether the formula
equals the verified result on the result's domain (or on the part of it named
by ``where``), and if not, show a point where it fails:

1. Parse the claim safely (:mod:`genverify.claims.parse`; nothing reaches ``eval``).
   Symbols with a default (the Leaky-ReLU slope alpha = 1/10) that the claim
   does not mention are fixed to the default in the verified result.
2. Symbolic: ``simplify(claim - result) == 0`` (after selecting the branches of
   any ``Piecewise`` that cover the ``where`` region) proves equivalence.
3. Otherwise numeric: both sides are evaluated with :data:`DIGITS` significant
   digits at random points of the domain that satisfy the symbols'
   assumptions, the result's joint constraint and ``where``. Indexed results
   (sums and products over i = 1..n, d = 1..D) are compared at random small
   concrete sizes with random entries. Agreement to 10^-25 relative at every
   point is EQUIVALENT; the first disagreement is the counterexample, rounded
   to a readable point that still disagrees.
4. For a density, the claim's integral over the variable's domain at reference
   parameter values (the defaults, else 0 or 1 where allowed), e.g. the 5b
   answer ∫ 1/(σ√(2πz)) e^{-(ln z-μ)²/(2σ²)} dz = e^{μ/2+σ²/8} = 1.1331 at μ=0, σ=1.

The whole check runs in a forked child process that is killed after
``timeout`` seconds, so no input can hang the caller (SymPy's big-integer
arithmetic cannot be interrupted by a signal, but a process can be killed).

>>> v = check("cauchy-reciprocal-pdf", r"\\frac{1}{\\pi y^2 (y^{-2} + 1)}")
>>> v.equivalent, v.method
(True, 'symbolic')
"""

from __future__ import annotations

import math
import os
import pickle
import select
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from genverify.claims import parse as cp
from genverify.claims.verdict import ErrataRow, Verdict
from genverify import registry

__all__ = ["CheckOutcome", "Counterexample", "CheckTimeout", "check", "DIGITS", "DEFAULT_TIMEOUT", "DEFAULT_POINTS"]

#: Working precision (significant digits) of the numeric comparison.
DIGITS = 40
#: Two values agree when they differ by at most this, relative to the larger (or absolutely, near 0).
RTOL = 1e-25
ATOL = 1e-30
#: Seconds a whole check may take before it is stopped (exit 2).
DEFAULT_TIMEOUT = 30.0
#: Random points compared (fewer for indexed results, which are expanded at each point).
DEFAULT_POINTS = 100
INDEXED_POINTS = 25
#: Largest concrete size (n, K, D) used to expand sums and products.
MAX_SIZE = 4


class CheckTimeout(cp.ClaimError):
    """The check did not finish within its time limit."""


@dataclass
class Counterexample:
    """A point where the claim and the verified result differ."""

    point: dict[str, str]
    claimed: str
    verified: str

    def describe(self) -> str:
        where = ", ".join(f"{k} = {v}" for k, v in self.point.items()) or "(no free symbols)"
        return f"at {where}: claimed {self.claimed}, verified {self.verified}"


@dataclass
class CheckOutcome:
    """The outcome of :func:`check`. ``bool(verdict)`` is ``verdict.equivalent``."""

    result_id: str
    claim: str
    equivalent: bool
    message: str
    method: str = ""  # "symbolic", "numeric", "infinite"
    counterexample: Counterexample | None = None
    where: str | None = None
    points: int = 0
    integral: float | None = None
    integral_note: str = ""
    defaults: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.equivalent

    @property
    def verdict(self) -> Verdict:
        """:attr:`Verdict.CORRECT` when equivalent, else :attr:`Verdict.INCORRECT`."""
        return Verdict.CORRECT if self.equivalent else Verdict.INCORRECT

    @property
    def label(self) -> str:
        return "EQUIVALENT" if self.equivalent else "NOT EQUIVALENT"

    def report(self) -> str:
        lines = [self.label, f"  claim:    {self.claim}"]
        if self.where:
            lines.append(f"  where:    {self.where}")
        if self.defaults:
            lines.append("  defaults: " + ", ".join(f"{k} = {v}" for k, v in self.defaults.items()))
        lines.append(f"  {self.message}")
        if self.counterexample is not None:
            ce = self.counterexample
            lines.append("  counterexample: " + (", ".join(f"{k} = {v}" for k, v in ce.point.items()) or "-"))
            lines.append(f"    claimed:  {ce.claimed}")
            lines.append(f"    verified: {ce.verified}")
        if self.integral_note:
            lines.append(f"  {self.integral_note}")
        return "\n".join(lines)


# ----------------------------------------------------------------- public entry point


def check(id: str, expr: str, where: str | None = None, latex: bool | None = None, *,
          timeout: float = DEFAULT_TIMEOUT, points: int = DEFAULT_POINTS, seed: int = 0,
          isolate: bool = True) -> CheckOutcome:
    """Is ``expr`` (SymPy-style or LaTeX) equal to the registered result ``id`` (on ``where``)?

    Returns a :class:`CheckOutcome`. Raises a ``ValueError`` naming the problem when
    the claim cannot be checked: unknown id (:class:`~genverify.registry.UnknownResultError`),
    syntax error, unknown symbol or refused input (:class:`~genverify.claims.parse.ClaimError`),
    or the time limit (:class:`CheckTimeout`). ``isolate=False`` runs in this
    process (no hard time limit; for debugging).
    """
    if not isinstance(expr, str):
        raise cp.ClaimSyntaxError(f"EXPR must be a string, got {type(expr).__name__}")
    if where is not None and not isinstance(where, str):
        raise cp.ClaimSyntaxError(f"--where must be a string, got {type(where).__name__}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if not (isinstance(points, int) and 1 <= points <= 100_000):
        raise ValueError(f"points must be an integer in [1, 100000], got {points!r}")
    result = registry.get(id)
    # The derivation is trusted code: compute (and cache) it here, outside the time limit.
    result.expr  # noqa: B018
    args = (result, expr, where, latex, points, seed, timeout)
    if not isolate or not hasattr(os, "fork"):
        return _check_impl(*args)
    return _run_isolated(_check_impl, args, timeout)


# ----------------------------------------------------------------- isolation


def _run_isolated(fn, args: tuple, timeout: float) -> CheckOutcome:
    """Run ``fn(*args)`` in a forked child; kill it after ``timeout`` seconds."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_fd)
            try:
                payload = ("ok", fn(*args))
            except cp.ClaimError as exc:
                payload = ("claim", type(exc).__name__, str(exc))
            except registry.UnknownResultError as exc:
                payload = ("claim", "ClaimError", str(exc))
            except MemoryError:
                payload = ("claim", "ClaimRefused", "the check ran out of memory")
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, never a traceback
                payload = ("error", f"{type(exc).__name__}: {exc}")
            data = pickle.dumps(payload)
            with os.fdopen(write_fd, "wb") as out:
                out.write(data)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        if timed_out:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
    if timed_out:
        raise CheckTimeout(f"the check did not finish within the time limit of {timeout:g} s")
    if not chunks:
        raise cp.ClaimRefused("the check process ended without an answer (out of memory?)")
    payload = pickle.loads(b"".join(chunks))
    if payload[0] == "ok":
        return payload[1]
    if payload[0] == "claim":
        cls = {c.__name__: c for c in (cp.ClaimError, cp.ClaimSyntaxError, cp.UnknownSymbolError,
                                       cp.ClaimRefused, CheckTimeout)}.get(payload[1], cp.ClaimError)
        raise cls(payload[2])
    raise cp.ClaimError(f"the claim could not be checked ({payload[1]})")


class _Budget(Exception):
    pass


def _with_alarm(seconds: float, fn, *args):
    """Run ``fn`` for at most ``seconds`` (SIGALRM; pure-Python SymPy work is interruptible)."""
    def handler(signum, frame):
        raise _Budget()

    try:
        old = signal.signal(signal.SIGALRM, handler)
    except ValueError:  # not the main thread: no budget, the outer time limit still holds
        return fn(*args)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ----------------------------------------------------------------- the check


def _symbol_table(result: registry.Result) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for p in result.params:
        table[p.name] = p.symbol
        table.setdefault(str(p.symbol), p.symbol)
    return table


def _check_impl(result: registry.Result, expr: str, where: str | None, latex: bool | None,
                points: int, seed: int, timeout: float) -> CheckOutcome:
    start = time.monotonic()
    if isinstance(result.expr, sp.MatrixBase):
        # kl-forward-fit's (m, s^2): claims are scalar formulas, so there is nothing to compare with.
        raise cp.ClaimError(f"result {result.id!r} is vector-valued ({result.expr.shape[0]} components); "
                            "`check` compares scalar formulas only (see `genverify derive "
                            f"{result.id}` for its components)")
    table = _symbol_table(result)
    claim = cp.parse_claim(expr, table, latex)
    cond = cp.parse_condition(where, table) if where else sp.true
    verified = result.expr

    mentioned = _mentioned(claim) | _mentioned(cond)
    defaults: dict[str, str] = {}
    subs = {}
    for p in result.params:
        if p.default is not None and p.symbol not in mentioned:
            subs[p.symbol] = p.default
            defaults[p.name] = str(p.default)
    if subs:
        verified = verified.xreplace(subs)
        claim = claim.xreplace(subs)
    active = [p for p in result.params if p.symbol not in subs]
    base = dict(result_id=result.id, claim=str(claim), where=where, defaults=defaults)

    # An infinite result (KL(U[-2,2] || U[0,1]) = oo) is checked as such.
    if verified in (sp.oo, -sp.oo, sp.zoo):
        same = sp.simplify(claim) == verified
        msg = (f"the result is {verified}, and so is the claim" if same
               else f"the result is {verified}; the claim is {sp.N(claim, 12) if claim.is_number else claim}")
        return CheckOutcome(**base, equivalent=bool(same), message=msg, method="infinite",
                       counterexample=None if same else Counterexample({}, _show(sp.N(claim, 15)), str(verified)))

    claim_r, verified_r = _restrict(claim, cond), _restrict(verified, cond)

    budget = max(0.2, min(0.4 * timeout, 15.0) - (time.monotonic() - start))
    proved = False
    try:
        diff = _with_alarm(budget, _symbolic_difference, claim_r, verified_r)
        proved = diff == 0
    except (_Budget, Exception):  # noqa: BLE001 - SymPy may fail to simplify; numbers decide then
        proved = False

    verdict: CheckOutcome
    if proved:
        verdict = CheckOutcome(**base, equivalent=True, method="symbolic",
                          message="proved symbolically: simplify(claim - result) = 0"
                                  + (" on the --where region" if where else ""))
    else:
        verdict = _numeric_comparison(result, active, claim, verified, cond, points, seed, base)
    if result.kind == "density" and result.variable and not where and not claim.has(sp.Indexed):
        verdict.integral, verdict.integral_note = _density_integral(result, active, claim)
    return verdict


def _mentioned(e: Any) -> set:
    out = set(getattr(e, "free_symbols", set()))
    for ind in getattr(e, "atoms", lambda *a: set())(sp.Indexed):
        out.add(ind.base)
        out.add(ind.base.label)
    return out


def _symbolic_difference(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    if a == b:
        return sp.Integer(0)
    diff = a - b
    if diff.has(sp.Piecewise):
        diff = sp.piecewise_fold(diff)
    return sp.simplify(diff)


def _restrict(expr: sp.Expr, cond: Any) -> sp.Expr:
    """Replace each univariate Piecewise by the single branch that covers the ``cond`` region, if one does."""
    if cond is sp.true or not expr.has(sp.Piecewise):
        return expr

    def pick(pw: sp.Piecewise) -> sp.Expr:
        syms = pw.free_symbols & cond.free_symbols
        if len(syms) != 1:
            return pw
        (s,) = syms
        try:
            region = _univariate_set(cond, s)
            if region is None:
                return pw
            remaining = region
            for e, c in pw.args:
                cs = sp.S.Reals if c is sp.true else c.as_set()
                if remaining.intersect(cs) is sp.S.EmptySet:
                    continue
                if remaining.is_subset(cs):
                    return e
                return pw
        except Exception:  # noqa: BLE001 - leave it to the numbers
            return pw
        return pw

    try:
        return expr.replace(lambda e: isinstance(e, sp.Piecewise), pick)
    except Exception:  # noqa: BLE001
        return expr


def _univariate_set(cond: Any, s: sp.Symbol) -> sp.Set | None:
    parts = cond.args if isinstance(cond, sp.And) else (cond,)
    mine = [c for c in parts if c.free_symbols == {s}]
    if not mine:
        return None
    try:
        return sp.And(*mine).as_set()
    except Exception:  # noqa: BLE001
        return None


# ----------------------------------------------------------------- numbers


def _numeric_comparison(result, active, claim, verified, cond, points, seed, base) -> CheckOutcome:
    rng = np.random.default_rng(seed)
    indexed = [p for p in active if isinstance(p.symbol, sp.IndexedBase)]
    scalars = [p for p in active if not isinstance(p.symbol, sp.IndexedBase)]
    has_indexed = bool(indexed) or claim.has(sp.Sum, sp.Product) or verified.has(sp.Sum, sp.Product)
    n = min(points, INDEXED_POINTS) if has_indexed else points
    constraint, simplex = _split_constraint(result.constraint)
    sample = _sample_points(scalars, sp.And(cond, constraint), rng, n, small_integers=has_indexed)
    if sample is not None and has_indexed:
        # Small sizes first: the first failure is then the smallest counterexample.
        sample.sort(key=lambda row: sum(v for v in row if isinstance(v, int)))
    if sample is None:
        raise cp.ClaimError("no point of the domain satisfies --where and the result's constraints"
                            if cond is not sp.true else "could not sample points of the domain")
    checked = 0
    skipped = 0
    for values in sample:
        point = {p.symbol: v for p, v in zip(scalars, values)}
        c_val, v_val, entries = _evaluate_pair(claim, verified, point, indexed, rng, simplex)
        if v_val[0] in ("nan", "undefined"):
            skipped += 1
            continue
        checked += 1
        if not _agree(c_val, v_val):
            shown = {p.name: _show(v) for p, v in zip(scalars, values)}
            shown.update(entries)
            nicer = _nicer_counterexample(scalars, values, claim, verified, cond, constraint, indexed) \
                if not has_indexed else None
            if nicer is not None:
                shown, c_val, v_val = nicer
            ce = Counterexample(shown, _show_val(c_val), _show_val(v_val))
            return CheckOutcome(**base, equivalent=False, method="numeric", counterexample=ce, points=checked,
                           message="the claim differs from the verified result"
                                   + (" on the --where region" if cond is not sp.true else ""))
    if checked == 0:
        raise cp.ClaimError("the verified result is undefined at every sampled point; nothing to compare")
    where_txt = " of the --where region" if cond is not sp.true else " of the domain"
    sizes = " (sums and products expanded at random sizes up to %d)" % MAX_SIZE if has_indexed else ""
    msg = (f"agrees at {checked} random points{where_txt} to {DIGITS - 15}+ significant digits{sizes}; "
           "SymPy could not prove it symbolically") if scalars or indexed else \
        f"equal to {DIGITS - 15}+ significant digits"
    return CheckOutcome(**base, equivalent=True, method="numeric", message=msg, points=checked)


def _sample_points(params, cond, rng, n, small_integers=False) -> list[tuple] | None:
    if not params:
        return [()]
    cols = []
    for p in params:
        a, b = _sampling_interval(p, cond)
        if p.integer or isinstance(p.domain, sp.Range):
            lo, hi = int(math.ceil(a)), int(math.floor(b))
            if small_integers:
                hi = min(hi, max(lo, 1) + MAX_SIZE - 1)
            if hi < lo:
                return None
            cols.append(rng.integers(lo, hi + 1, size=40 * n).astype(float))
        elif p.scale == "log" and a > 0:
            cols.append(np.exp(rng.uniform(math.log(a), math.log(b), size=40 * n)))
        else:
            cols.append(rng.uniform(a, b, size=40 * n))
    draws = np.stack(cols, axis=1)
    if cond is not sp.true:
        try:
            f = sp.lambdify([p.symbol for p in params], cond, "numpy")
            with np.errstate(all="ignore"):
                ok = np.broadcast_to(np.asarray(f(*draws.T), dtype=bool), (draws.shape[0],))
        except Exception:  # noqa: BLE001 - fall back to SymPy truth values
            ok = np.array([bool(cond.xreplace({p.symbol: sp.Float(v) for p, v in zip(params, row)}))
                           for row in draws])
        draws = draws[ok]
    if len(draws) == 0:
        return None
    out = []
    for row in draws[:n]:
        out.append(tuple(int(v) if (p.integer or isinstance(p.domain, sp.Range)) else float(v)
                         for p, v in zip(params, row)))
    return out


def _sampling_interval(p: registry.Param, cond: Any) -> tuple[float, float]:
    dom = p.domain
    region = _univariate_set(cond, p.symbol) if cond is not sp.true else None
    S = dom if region is None else dom.intersect(region)
    if S is sp.S.EmptySet or (S.is_FiniteSet and len(S) == 0):
        raise cp.ClaimError(f"--where leaves no value of {p.name} in its domain {dom}")
    lo, hi = p.sampling_bounds()
    R = S.intersect(sp.Interval(lo, hi))
    try:
        a, b = float(R.inf), float(R.sup)
        if R is not sp.S.EmptySet and b > a:
            return _inside(a, b)
    except (TypeError, ValueError):
        pass
    # The region lies outside the usual sampling range: sample its own (finite part of the) extent.
    a, b = S.inf, S.sup
    if a is sp.S.NegativeInfinity and b is sp.S.Infinity:
        return (-10.0, 10.0)
    if a is sp.S.NegativeInfinity:
        return (float(b) - 10.0, float(b))
    if b is sp.S.Infinity:
        return _inside(float(a), float(a) + max(10.0, abs(float(a))))
    return _inside(float(a), float(b))


def _inside(a: float, b: float) -> tuple[float, float]:
    # Open ends: stay a hair inside, where Piecewise boundaries and singular endpoints cannot be hit.
    return (np.nextafter(a, b), np.nextafter(b, a)) if b > a else (a, b)


def _as_number(v: Any, integer: bool) -> sp.Expr:
    return sp.Integer(int(v)) if integer else sp.Float(float(v), DIGITS)


def _split_constraint(constraint: Any) -> tuple[Any, list[tuple[sp.Expr, int, sp.Expr]]]:
    """Split a result's constraint into a scalar part and simplex rules.

    A conjunct ``Eq(Sum(b[..., j, ...], (j, 1, S)), 1)`` (mixture weights
    pi_k, responsibilities eta_ik summing to one) becomes a rule
    ``(b.label, position of j, S)``: sampled entries of ``b`` are normalised
    along that index, or, when ``b`` takes only the values 0 and 1 (a latent
    code z_ik), drawn as a one-hot vector along it. Other conjuncts with
    indexed symbols are ignored.
    """
    if constraint is True or constraint is sp.true:
        return sp.true, []
    parts = constraint.args if isinstance(constraint, sp.And) else (constraint,)
    scalar, rules = [], []
    for c in parts:
        if not c.has(sp.Indexed, sp.Sum, sp.Product, sp.IndexedBase):
            scalar.append(c)
            continue
        if isinstance(c, sp.Eq):
            lhs, rhs = (c.lhs, c.rhs) if c.rhs == 1 else (c.rhs, c.lhs)
            if rhs == 1 and isinstance(lhs, sp.Sum) and len(lhs.limits) == 1 and isinstance(lhs.function, sp.Indexed):
                j, lo, hi = lhs.limits[0]
                idx = list(lhs.function.indices)
                if j in idx and lo == 1:
                    rules.append((lhs.function.base.label, idx.index(j), hi))
    return (sp.And(*scalar) if scalar else sp.true), rules


def _evaluate_pair(claim, verified, point, indexed, rng, simplex=()):
    subs = {s: _as_number(v, isinstance(v, int)) for s, v in point.items()}
    entries: dict[str, str] = {}
    try:
        # Substitution evaluates eagerly (exp of a Float is computed at once): it can overflow.
        c, v = claim.xreplace(subs), verified.xreplace(subs)
        if c.has(sp.Sum, sp.Product, sp.Indexed) or v.has(sp.Sum, sp.Product, sp.Indexed):
            c, v = c.doit(), v.doit()
    except Exception:  # noqa: BLE001
        return _value_of(lambda: claim.xreplace(subs)), _value_of(lambda: verified.xreplace(subs)), entries
    if c.has(sp.Indexed) or v.has(sp.Indexed):
        atoms = sorted(c.atoms(sp.Indexed) | v.atoms(sp.Indexed), key=str)
        values = {}

        def draw(a):
            if a not in values:
                prm = next((p for p in indexed if p.symbol == a.base or p.symbol.label == a.base.label), None)
                values[a] = _random_entry(prm, rng)

        for a in atoms:
            draw(a)
        for label, pos, size in simplex:
            size = int(size.xreplace(subs)) if isinstance(size, sp.Basic) else int(size)
            groups: dict[tuple, list] = {}
            for a in [a for a in list(values) if a.base.label == label and len(a.indices) > pos]:
                key = tuple(a.indices[:pos]) + tuple(a.indices[pos + 1:])
                groups.setdefault(key, [])
            prm = next((p for p in indexed if p.symbol.label == label), None)
            binary = prm is not None and prm.domain.is_subset(sp.FiniteSet(0, 1)) is True
            for key in groups:
                members = [_entry_at(label, key, pos, j, atoms) for j in range(1, size + 1)]
                if binary:
                    # 0/1 entries summing to one: a one-hot code (the latent z of a mixture).
                    hot = int(rng.integers(0, size))
                    for n, m in enumerate(members):
                        values[m] = sp.Integer(int(n == hot))
                    continue
                for m in members:
                    draw(m)
                total = sum(values[m] for m in members)
                for m in members:
                    values[m] = values[m] / total
        for a in atoms:
            entries[str(a)] = _show(values[a])
        return _value_of(lambda: c.xreplace(values)), _value_of(lambda: v.xreplace(values)), entries
    return _value(c), _value(v), entries


def _entry_at(label, key: tuple, pos: int, j: int, atoms) -> sp.Indexed:
    """The entry b[key with j inserted at pos], reusing the IndexedBase object found in ``atoms``."""
    base = next(a.base for a in atoms if a.base.label == label)
    idx = list(key)
    idx.insert(pos, sp.Integer(j))
    return base[tuple(idx)] if len(idx) > 1 else base[idx[0]]


def _random_entry(prm, rng) -> sp.Expr:
    if prm is None:
        return sp.Float(rng.uniform(0.1, 0.9), DIGITS)
    dom = prm.domain
    if isinstance(dom, (sp.FiniteSet, sp.Range)):
        items = list(dom)[:50]
        return items[int(rng.integers(0, len(items)))]
    lo, hi = prm.sampling_bounds()
    return sp.Float(rng.uniform(lo, hi), DIGITS)


def _value_of(build) -> tuple:
    try:
        return _value(build())
    except Exception:  # noqa: BLE001 - an overflow while substituting: not a number we can compare
        return ("undefined", None)


def _value(e: sp.Expr) -> tuple:
    try:
        v = sp.N(e, DIGITS)
    except Exception:  # noqa: BLE001 - evaluation failure is "undefined"
        return ("undefined", None)
    if v is sp.nan:
        return ("nan", None)
    if v is sp.zoo:
        return ("zoo", None)
    if v in (sp.oo, -sp.oo):
        return ("inf", 1 if v is sp.oo else -1)
    if v.is_Number:
        return ("real", v)
    if v.free_symbols:
        return ("undefined", None)
    re_, im_ = v.as_real_imag()
    re_, im_ = sp.N(re_, DIGITS), sp.N(im_, DIGITS)
    if re_.is_Number and im_.is_Number:
        if abs(im_) <= ATOL + RTOL * abs(re_):
            return ("real", re_)
        return ("complex", re_ + sp.I * im_)
    return ("undefined", None)


def _agree(a: tuple, b: tuple) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "real":
        x, y = a[1], b[1]
        d = abs(x - y)
        return bool(d <= ATOL or d <= RTOL * max(abs(x), abs(y)))
    if a[0] == "inf":
        return a[1] == b[1]
    return a[0] == b[0] and a[0] == "zoo"


def _nicer_counterexample(params, values, claim, verified, cond, constraint, indexed):  # noqa: ARG001
    """Round the failing point to few significant digits while it still fails (for a readable report)."""
    if not params:
        return None
    full = sp.And(cond, constraint)
    for digits in (1, 2, 3, 4, 6):
        cand = []
        for p, v in zip(params, values):
            if isinstance(v, int):
                cand.append(v)
            else:
                r = float(f"{v:.{digits}g}")
                cand.append(r)
        try:
            if not all(p.domain.contains(sp.Rational(str(v)) if not isinstance(v, int) else v) == sp.true
                       for p, v in zip(params, cand)):
                continue
            subs = {p.symbol: (sp.Integer(v) if isinstance(v, int) else sp.Rational(str(v)))
                    for p, v in zip(params, cand)}
            if full is not sp.true and full.xreplace(subs) != sp.true:
                continue
            c_val = _value(claim.xreplace(subs))
            v_val = _value(verified.xreplace(subs))
        except Exception:  # noqa: BLE001
            continue
        if v_val[0] not in ("nan", "undefined", "zoo") and not _agree(c_val, v_val):
            return {p.name: _show_plain(v) for p, v in zip(params, cand)}, c_val, v_val
    return None


def _show_plain(v: Any) -> str:
    if isinstance(v, int):
        return str(v)
    return f"{v:g}"


def _show(v: Any) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.10g}"
    try:
        if v.is_Integer:
            return str(v)
        return f"{float(v):.10g}"
    except (TypeError, ValueError):
        return str(v)


def _show_val(val: tuple) -> str:
    kind, x = val
    if kind == "real":
        return f"{float(x):.12g}" if abs(x) < 1e300 and (x == 0 or abs(x) > 1e-300) else str(sp.N(x, 12))
    if kind == "inf":
        return "oo" if x > 0 else "-oo"
    if kind == "complex":
        return str(sp.N(x, 12)) + " (not real)"
    if kind == "zoo":
        return "undefined (division by zero)"
    return "could not be evaluated (undefined or overflow)"


# ----------------------------------------------------------------- densities


def reference_values(result: registry.Result, params) -> dict:
    """Parameter values for the integral report: the default, else 0 or 1 if in the domain, else the middle."""
    out = {}
    for p in params:
        if p.name == result.variable:
            continue
        if p.default is not None:
            out[p] = p.default
            continue
        dom = p.domain
        for cand in (sp.Integer(0), sp.Integer(1)):
            if dom.contains(cand) == sp.true and (not hasattr(dom, "boundary") or cand not in dom.boundary
                                                  or isinstance(dom, sp.Range)):
                out[p] = cand
                break
        else:
            lo, hi = p.sampling_bounds()
            out[p] = sp.Rational(str(round((lo + hi) / 2, 3)))
    return out


def _density_integral(result, params, claim) -> tuple[float | None, str]:
    """∫ claim d(variable) over the variable's domain at reference parameter values."""
    import mpmath

    var_param = next((p for p in result.params if p.name == result.variable), None)
    if var_param is None:
        return None, ""
    refs = reference_values(result, params)
    f_expr = claim.xreplace({p.symbol: v for p, v in refs.items()})
    if f_expr.free_symbols - {var_param.symbol}:
        return None, ""
    at = ", ".join(f"{p.name} = {v}" for p, v in refs.items())
    dom = var_param.domain
    lo, hi = dom.inf, dom.sup
    cuts = {lo, hi}
    for rel in f_expr.atoms(sp.core.relational.Relational):
        for side in rel.args:
            if side.is_number and side.is_real:
                cuts.add(side)
    finite = [c for c in cuts if c.is_finite]
    if lo.is_infinite or hi.is_infinite:
        cuts.add(sp.Integer(1) if not finite else max(finite) + 1)
        cuts.add(sp.Integer(-1) if not finite else min(finite) - 1)
    pts = sorted((c for c in cuts if (c >= lo) == sp.true and (c <= hi) == sp.true), key=lambda c: float(c))
    try:
        f = sp.lambdify(var_param.symbol, f_expr, "mpmath")

        def integrand(t):
            try:
                return mpmath.re(f(t))
            except ZeroDivisionError:
                # A removable singularity (1/(y^2 (1 + y^-2)) at y = 0): step off it.
                return mpmath.re(f(t + mpmath.mpf("1e-12")))

        with mpmath.workdps(20):
            total = mpmath.quad(integrand, [mpmath.mpf(float(c)) if c.is_finite else
                                                             (mpmath.inf if c > 0 else -mpmath.inf) for c in pts])
        value = float(total)
    except Exception as exc:  # noqa: BLE001 - report instead of failing the whole check
        return None, f"could not integrate the claim over {result.variable} ({type(exc).__name__})"
    span = f"{result.variable} in {_show_set(dom)}"
    cond = f" at {at}" if at else ""
    if math.isfinite(value) and abs(value - 1) <= 1e-8:
        return value, f"as a density: the claim integrates to 1 over {span}{cond}"
    return value, (f"as a density: the claim integrates to {value:.5g} over {span}{cond}, "
                   "not 1" if math.isfinite(value) else
                   f"as a density: the claim's integral over {span}{cond} diverges")


def _show_set(s: sp.Set) -> str:
    return str(s).replace("Interval.open", "").replace("Interval", "")


# ----------------------------------------------------------------- errata: every answer of the write-up

#: The transcribed claims of the homework write-up, shipped with the package.
DEFAULT_CLAIMS = "homework2.yaml"
_ENTRY_KEYS = {"question", "part", "id", "claim", "where", "rename", "note"}


@dataclass
class ClaimEntry:
    """One transcribed answer: which result it claims, the LaTeX as written, an optional region."""

    question: str
    id: str
    claim: str | None
    part: str = ""
    where: str | None = None
    rename: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def text_to_check(self) -> str | None:
        """The claim with the ``rename`` replacements applied (the student's notation -> registry symbols)."""
        if self.claim is None:
            return None
        text = self.claim
        for old, new in self.rename.items():
            text = text.replace(old, new)
        return text


def load_claims(path: str | os.PathLike | None = None) -> tuple[str, list[ClaimEntry]]:
    """Read a claims file (default: the packaged :data:`DEFAULT_CLAIMS`); return (title, entries)."""
    import yaml

    if path is None:
        from importlib.resources import files

        text = files("genverify.claims").joinpath(DEFAULT_CLAIMS).read_text(encoding="utf-8")
        label = DEFAULT_CLAIMS
    else:
        label = str(path)
        with open(path, encoding="utf-8") as fh:  # FileNotFoundError -> exit 2 in the CLI
            text = fh.read()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"--file {label}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise ValueError(f"--file {label}: expected a mapping with a list under 'entries'")
    entries = []
    for k, raw in enumerate(data["entries"]):
        if not isinstance(raw, dict):
            raise ValueError(f"--file {label}: entry {k} is not a mapping")
        extra = set(raw) - _ENTRY_KEYS
        if extra:
            raise ValueError(f"--file {label}: entry {k} has unknown field(s) {sorted(extra)}")
        missing = {"question", "id", "claim"} - set(raw)
        if missing:
            raise ValueError(f"--file {label}: entry {k} lacks {sorted(missing)}")
        rename = raw.get("rename") or {}
        if not isinstance(rename, dict) or not all(isinstance(a, str) and isinstance(b, str)
                                                   for a, b in rename.items()):
            raise ValueError(f"--file {label}: entry {k}: 'rename' must map text to text")
        claim = raw["claim"]
        if claim is not None and not isinstance(claim, (str, int, float)):
            raise ValueError(f"--file {label}: entry {k}: 'claim' must be text or null")
        entries.append(ClaimEntry(question=str(raw["question"]), id=str(raw["id"]),
                                  claim=None if claim is None else str(claim), part=str(raw.get("part") or ""),
                                  where=None if raw.get("where") is None else str(raw["where"]),
                                  rename=dict(rename), note=str(raw.get("note") or "")))
    return str(data.get("homework", label)), entries


def audit_entry(entry: ClaimEntry, timeout: float = DEFAULT_TIMEOUT, seed: int = 0) -> ErrataRow:
    """Check one transcribed answer; never raises for a claim that cannot be checked."""
    row = dict(question=entry.question, part=entry.part, id=entry.id, claim=entry.claim or "(none)",
               where=entry.where or "", note=entry.note)
    text = entry.text_to_check()
    if text is None:
        return ErrataRow(**row, verdict=Verdict.NOT_CHECKABLE, evidence="no formula given in the write-up")
    if entry.id not in registry.ids():
        return ErrataRow(**row, verdict=Verdict.NOT_CHECKABLE,
                         evidence=f"result not registered (no result {entry.id!r} in the registry yet)")
    try:
        v = check(entry.id, text, where=entry.where, latex=True, timeout=timeout, seed=seed)
    except ValueError as exc:
        return ErrataRow(**row, verdict=Verdict.NOT_CHECKABLE, evidence=str(exc))
    if v.equivalent:
        evidence = v.message
    else:
        evidence = v.counterexample.describe() if v.counterexample else v.message
    if v.integral_note:
        evidence += "; " + v.integral_note
    if v.defaults:
        evidence += " (" + ", ".join(f"{k} = {x}" for k, x in v.defaults.items()) + " as in the homework)"
    return ErrataRow(**row, verdict=Verdict.CORRECT if v.equivalent else Verdict.INCORRECT, evidence=evidence)


def audit(entries: list[ClaimEntry], timeout: float = DEFAULT_TIMEOUT, seed: int = 0,
          progress=None) -> list[ErrataRow]:
    """Check every entry; ``progress(entry)`` is called before each (for a progress bar)."""
    rows = []
    for entry in entries:
        if progress is not None:
            progress(entry)
        rows.append(audit_entry(entry, timeout=timeout, seed=seed))
    return rows
