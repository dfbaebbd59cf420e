"""Does a derivation's result depend on the SymPy operations it performs?

Used by ``tests/test_derivations_derive.py``. The probe

1. records every SymPy operation that a derivation module calls *directly*
   (``integrate``, ``diff``, ``solve``, ``solveset``, ``limit``, ``det``,
   ``Matrix.jacobian``, ``hessian``, ``doit``, ``rsolve``, ``summation``,
   ``product_simplify``, ``minimum``, ``Set.measure``, ``sympy.stats.E``, ...),
   grouped by call site (file, line, operation). A site reached through
   another registered result's ``derive`` (``em-p-update`` uses the
   derivation of Q) is *inherited*: that result answers for it;
2. re-runs the derivation once per call site and perturbation, with every
   output of that site perturbed, and compares the result with the
   unperturbed one.

The perturbations of an output y (each entry of a matrix, list or dict):

* ``scale``: y (1 + delta). It keeps every zero, sign and structural fact
  (diagonality, definiteness, the roots of an equation), so a check such as
  ``assert jac.is_diagonal()`` still passes: if the result neither changes nor
  the derivation raises, y did not produce the result;
* ``warp``: every real symbol and indexed entry s_n of y becomes
  s_n (1 + (n + 1) delta): it moves the roots of an equation;
* ``iwarp``: the same, with the factor of an indexed entry e[i, k] depending
  on its indices, (1 + (n + 1) delta (1 + i + k)): a normalisation over k
  cannot absorb it;
* ``shift``: y + delta; ``zero``: 0 (an empty set for a set). They change the
  facts that a result may depend on only through a decision (a measure that is
  zero or positive, a limit that is finite).

delta = 1/3 (a simple rational keeps SymPy fast). The runs remember SymPy's operations and a few
pure simplification helpers by their arguments (a memo kept for the process, :func:`_call`): a
perturbed run recomputes only what its perturbation reaches, with the same verdicts. A site outside :func:`genverify.derivations.support.supporting`
(and not inherited) is *used* when ``scale`` or ``warp`` changes the result
or makes the derivation raise, or ``shift``/``zero`` change the result
without raising (a raise under those proves nothing: they break structure a
derivation may rightly assert). Running out of time proves nothing either
(it would make the verdict depend on the machine's load). While the probe perturbs such a site, the
supporting blocks' ``require`` is switched off: the run observes the result
alone. A supporting block must be able to fail: some perturbation of all
its sites at once, with ``require`` on, makes the derivation raise.

A *component* of the result (each branch value and condition of a Piecewise,
each entry of a matrix; the whole result otherwise) is typed in when no
perturbation run changes it, comparing runs whose result has the same shape
along the component's path (a perturbation that merges a neighbouring branch
away proves nothing about this one); constants (no free symbols) are exempt.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import sympy as sp
from sympy.concrete.products import Product
from sympy.concrete.summations import Sum
from sympy.core.basic import Basic
from sympy.integrals.integrals import Integral
from sympy.matrices.matrixbase import MatrixBase

DELTA = sp.Rational(1, 3)
#: A perturbed derivation may take RUN_TIMEOUT_FACTOR times the recorded one, and at least
#: RUN_TIMEOUT_MIN seconds (a perturbed equation can send SymPy's solve astray; running out of
#: time proves nothing either way).
RUN_TIMEOUT_FACTOR = 8.0
RUN_TIMEOUT_MIN = 5.0
KINDS_USED = ("scale", "warp", "iwarp")  # a change or a raise shows use
KINDS_DECISION = ("shift", "zero")  # a change (not a raise) shows use
#: The order in which a site is perturbed until it shows use (the cheapest decisive first).
ORDER = ("scale", "warp", "shift", "zero", "iwarp")
VERBOSE = False

try:  # the supporting-block marker (absent in old trees: then nothing is a supporting block)
    from genverify.derivations import support as _support
except ImportError:  # pragma: no cover
    _support = None


# ----------------------------------------------------------------- recording and perturbing


def _op_table() -> list[tuple[object, str, str]]:
    """(owner, attribute, name) of every recorded operation."""
    simp = importlib.import_module("sympy.simplify.simplify")
    stats = importlib.import_module("sympy.stats")
    from sympy.sets.sets import Set

    table = [(sp, name, name) for name in ("integrate", "diff", "solve", "solveset", "linsolve", "limit", "det",
                                           "hessian", "rsolve", "summation", "product", "minimum", "maximum",
                                           "reduce_inequalities", "solve_univariate_inequality",
                                           "product_simplify")]
    table += [(simp, "product_simplify", "product_simplify"), (stats, "E", "E")]
    table += [(MatrixBase, "jacobian", "Matrix.jacobian"), (MatrixBase, "det", "Matrix.det")]
    table += [(cls, "doit", f"{cls.__name__}.doit") for cls in (Basic, Sum, Product, Integral) if "doit" in cls.__dict__]
    table += [(Set, "measure", "Set.measure")]
    seen, out = set(), []
    for owner, attr, name in table:
        if hasattr(owner, attr) and (id(owner), attr) not in seen:
            seen.add((id(owner), attr))
            out.append((owner, attr, name))
    return out


@dataclass
class _State:
    mode: str = "off"  # off | record | perturb
    probed: object = None  # code object of the derive function under test
    nested: frozenset = frozenset()  # code objects of the other registered derive functions
    target: frozenset = frozenset()  # the sites perturbed in this run
    kind: str = ""
    sites: dict = field(default_factory=dict)  # site -> (in_support, inherited)
    blocks: dict = field(default_factory=dict)  # site -> the supporting block it runs in (None outside)
    counts: dict = field(default_factory=dict)  # site -> calls in the recorded run
    first_only: bool = False  # perturb only the first call at each target site
    seen: dict = field(default_factory=dict)  # site -> calls so far in this run
    memo: dict = field(default_factory=dict)  # (operation, arguments) -> output, kept across probes


_STATE = _State()

_UNHASHABLE = object()


def _key(value):
    """A memo key for ``value``: equal keys only for equal values of the same types (1 and S.One differ)."""
    if isinstance(value, (list, tuple)):
        parts = tuple(_key(v) for v in value)
        return _UNHASHABLE if _UNHASHABLE in parts else (type(value), parts)
    if isinstance(value, dict):
        return _key(sorted(value.items(), key=repr))
    try:
        hash(value)
    except TypeError:
        return _UNHASHABLE
    return (type(value), value)


def _call(name, fn, args, kwargs):
    """``fn(*args, **kwargs)``, remembered for the probe's runs.

    SymPy's operations are pure, so an operation called with the arguments of an earlier run
    gives that run's output: a perturbed run recomputes only what the perturbation reached.
    Mutable outputs (a ``Matrix``) are never shared between runs.
    """
    key = _key((name, args, kwargs))
    if key is _UNHASHABLE:
        return fn(*args, **kwargs)
    if key in _STATE.memo:
        out = _STATE.memo[key]
        return list(out) if isinstance(out, list) else out  # a caller may change its list
    out = fn(*args, **kwargs)
    # Only immutable outputs (hashable: not a Matrix, a dict or a list of those) are remembered.
    if _key(out) is not _UNHASHABLE and not isinstance(out, dict):
        _STATE.memo[key] = list(out) if isinstance(out, list) else out
    return out


def _site(name: str):
    """The caller's site if it is a derivation module (frame 0: here, 1: the wrapper, 2: the caller)."""
    frame = sys._getframe(2)
    module = frame.f_globals.get("__name__", "")
    if not module.startswith("genverify.derivations") or module == "genverify.derivations.support":
        return None
    return (frame.f_code.co_filename.rsplit("/", 1)[-1], frame.f_lineno, name), frame


def _inherited(frame) -> bool:
    while frame is not None and frame.f_code is not _STATE.probed:
        if frame.f_code in _STATE.nested:
            return True
        frame = frame.f_back
    return False


def _seen(found, out):
    site, frame = found
    if _STATE.mode == "record":
        in_support = bool(_support is not None and _support.active())
        inherited = _inherited(frame)
        if site not in _STATE.sites or (_STATE.sites[site][1] and not inherited):
            # A site is inherited only if every call there is; its own calls decide in_support.
            _STATE.sites[site] = (in_support, inherited)
            _STATE.blocks[site] = _support.current() if in_support else None
        _STATE.counts[site] = _STATE.counts.get(site, 0) + 1
        return out
    if site in _STATE.target:
        n = _STATE.seen[site] = _STATE.seen.get(site, 0) + 1
        if n == 1 or not _STATE.first_only:
            return perturb(out, _STATE.kind)
    return out


def _wrap_function(fn, name):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _STATE.mode == "off":
            return fn(*args, **kwargs)
        out = _call(name, fn, args, kwargs)
        found = _site(name)
        return out if found is None else _seen(found, out)

    return wrapper


def _pure_table() -> list[tuple[object, str]]:
    """(owner, attribute) of the costly pure helpers a perturbed run repeats (simplification, rewriting)."""
    pairs = [(sp, name) for name in ("simplify", "simplify_logic", "apart", "cancel", "factor", "factor_terms",
                                     "together", "logcombine", "expand_log", "powsimp", "piecewise_fold")]
    pairs += [(importlib.import_module("sympy.simplify.simplify"), "simplify"),
              (importlib.import_module("sympy.logic.boolalg"), "simplify_logic")]
    return [(owner, name) for owner, name in pairs if hasattr(owner, name)]


def _wrap_pure(fn, name):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs) if _STATE.mode == "off" else _call(name, fn, args, kwargs)

    return wrapper


def _wrap_property(prop, name):
    def getter(self):
        if _STATE.mode == "off":
            return prop.fget(self)
        out = _call(name, prop.fget, (self,), {})
        found = _site(name)
        return out if found is None else _seen(found, out)

    return property(getter)


def perturb(y, kind: str):
    """``y`` perturbed by ``kind`` (see the module docstring)."""
    if isinstance(y, (list, tuple)):
        return type(y)(perturb(v, kind) for v in y)
    if isinstance(y, dict):
        return {k: perturb(v, kind) for k, v in y.items()}
    if isinstance(y, MatrixBase):
        return y.applyfunc(lambda e: perturb(e, kind))
    if isinstance(y, sp.Set):
        return sp.S.EmptySet if kind == "zero" else y
    if isinstance(y, (int, float)) and not isinstance(y, bool):
        y = sp.sympify(y)
    if not isinstance(y, sp.Expr):
        return y
    if kind == "scale":
        return y * (1 + DELTA)
    if kind in ("warp", "iwarp"):
        return _warp(y, by_index=kind == "iwarp")
    if kind == "shift":
        return y + DELTA
    return sp.S.Zero


def _warp(y: sp.Expr, by_index: bool) -> sp.Expr:
    indexed = y.atoms(sp.Indexed)
    labels = {e.base.label for e in indexed}
    reals = [a for a in y.atoms(sp.Symbol)
             if a.is_integer is not True and a not in labels and not isinstance(a, sp.Dummy)]
    atoms = sorted(reals, key=str) + sorted(indexed, key=str)

    def factor(n, a):
        # By index, an entry's factor depends on its indices: a normalisation over k cannot absorb it.
        ints = sp.Add(*a.indices) if by_index and isinstance(a, sp.Indexed) else 0
        return 1 + (n + 1) * DELTA * (1 + ints)

    return y.xreplace({a: a * factor(n, a) for n, a in enumerate(atoms)})


@contextmanager
def installed():
    """Patch the operations: module attributes, methods, and names the derivation modules imported."""
    pkg = importlib.import_module("genverify.derivations")
    modules = [importlib.import_module(f"genverify.derivations.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)]
    undo = []
    replaced = {}  # id(original function) -> its wrapper
    for owner, attr, name in _op_table():
        current = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        new = _wrap_property(current, name) if isinstance(current, property) else _wrap_function(current, name)
        if not isinstance(owner, type):
            replaced[id(current)] = new
        undo.append((owner, attr, current))
        setattr(owner, attr, new)
    for owner, attr in _pure_table():  # not operations of the derivation: only remembered
        current = getattr(owner, attr)
        new = replaced.get(id(current)) or _wrap_pure(current, attr)
        replaced[id(current)] = new
        undo.append((owner, attr, current))
        setattr(owner, attr, new)
    for mod in modules:  # names bound by `from sympy... import f`
        for attr, val in list(vars(mod).items()):
            if callable(val) and id(val) in replaced:
                undo.append((mod, attr, val))
                setattr(mod, attr, replaced[id(val)])
    try:
        yield modules
    finally:
        for owner, attr, val in reversed(undo):
            setattr(owner, attr, val)
        _STATE.mode = "off"


@contextmanager
def _requires(on: bool):
    """With ``on`` False every ``require`` passes: the run observes the result alone."""
    if on or _support is None:
        yield
        return
    original = _support.require
    holders = [m for m in list(sys.modules.values())
               if getattr(m, "__name__", "").startswith("genverify.derivations")
               and getattr(m, "require", None) is original]
    for m in holders:
        m.require = lambda fact, message: None  # noqa: ARG005
    try:
        yield
    finally:
        for m in holders:
            m.require = original


class _Timeout(Exception):
    pass


def _clear_caches(modules, keep: frozenset = frozenset()) -> None:
    for mod in modules:
        for val in vars(mod).values():
            if callable(getattr(val, "cache_clear", None)) and getattr(val, "__wrapped__", val).__code__ not in keep:
                val.cache_clear()


def _failed(out) -> bool:
    """The run raised (running out of time is not counted: it depends on the machine's load)."""
    return isinstance(out, Exception) and not isinstance(out, _Timeout)


def _run(derive, modules, keep: frozenset = frozenset(), timeout: float = 600.0):
    """derive()'s result, or the exception it raised (running past ``timeout`` seconds is a raise)."""
    _clear_caches(modules, keep)

    def alarm(signum, frame):  # noqa: ARG001
        raise _Timeout(f"longer than {timeout:.1f} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return derive().result
    except Exception as exc:  # noqa: BLE001 - any failure of a perturbed derivation is an outcome
        return exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ----------------------------------------------------------------- components


def components(expr, path=()):
    """(path, sub-expression): each Piecewise value and condition, each matrix entry (recursively)."""
    if isinstance(expr, MatrixBase):
        for n, e in enumerate(expr):
            yield from components(e, path + (n,))
    elif isinstance(expr, sp.Piecewise):
        for n, (val, cond) in enumerate(expr.args):
            yield from components(val, path + (n, 0))
            if cond is not sp.true:
                yield path + (n, 1), cond
    elif getattr(expr, "free_symbols", None):
        yield path, expr


_INCOMPARABLE = object()


def _children(expr):
    return list(expr) if isinstance(expr, MatrixBase) else list(expr.args)


def _at_same_shape(out, base, path):
    """``out``'s sub-expression at ``path`` if ``out`` has ``base``'s shape along it (type, arity), else _INCOMPARABLE."""
    for step in path:
        if type(out) is not type(base) or not hasattr(out, "args"):
            return _INCOMPARABLE
        a, b = _children(out), _children(base)
        if len(a) != len(b):
            return _INCOMPARABLE
        out, base = a[step], b[step]
    return out


# ----------------------------------------------------------------- the probe


@dataclass
class Report:
    """What the probe found for one derivation."""

    sites: dict  # site -> (in_support, inherited)
    unused: list  # own sites outside supporting blocks whose outputs do not reach the result
    cannot_fail: list  # supporting blocks (their descriptions) that no perturbation makes fail
    typed: list  # (path, component) that no perturbation changes
    runs: int = 0

    @property
    def producing(self) -> list:
        """Sites outside supporting blocks (own or inherited)."""
        return [s for s, (sup, _) in self.sites.items() if not sup]

    @property
    def ok(self) -> bool:
        return bool(self.producing) and not self.unused and not self.cannot_fail and not self.typed

    def explain(self) -> str:
        lines = []
        if not self.producing:
            lines.append("no SymPy operation produces the result")
        lines += [f"unused: the output of {s[2]} at {s[0]}:{s[1]} does not reach the result" for s in self.unused]
        lines += [f"cannot fail: perturbing the SymPy operations of the supporting block '{b}' never trips its "
                  "require" for b in self.cannot_fail]
        lines += [f"typed in: component {path} of the result, {comp}, depends on no SymPy operation"
                  for path, comp in self.typed]
        return "\n".join(lines)


def probe(derive, nested=()) -> Report:
    """Probe ``derive`` (see the module docstring); ``nested`` are the other registered derive functions."""
    code = lambda f: getattr(f, "__wrapped__", f).__code__  # noqa: E731 - through functools.lru_cache
    _STATE.probed = code(derive)
    _STATE.nested = frozenset(code(f) for f in nested) - {_STATE.probed}
    with installed() as modules:
        _STATE.mode, _STATE.sites, _STATE.blocks, _STATE.counts = "record", {}, {}, {}
        t0 = time.perf_counter()
        base = _run(derive, modules)
        # The recorded run re-derives the nested results too: an upper bound on a perturbed run's own work.
        timeout = max(RUN_TIMEOUT_MIN, RUN_TIMEOUT_FACTOR * (time.perf_counter() - t0))
        _STATE.mode = "off"
        if isinstance(base, Exception):
            raise base
        sites, blocks = dict(_STATE.sites), dict(_STATE.blocks)
        comps = list(components(base))
        changed: set = set()
        runs = 0

        def run(site, kind, checks=False, together=(), first_only=False):
            nonlocal runs
            runs += 1
            _STATE.mode, _STATE.target, _STATE.kind = "perturb", frozenset((site, *together)), kind
            _STATE.first_only, _STATE.seen = first_only, {}
            t0 = time.perf_counter()
            # An own site's calls inside nested registered derivations stay unperturbed (their
            # caches are kept); an inherited site is perturbed where it is, caches cleared.
            keep = frozenset() if sites[site][1] else _STATE.nested
            try:
                with _requires(on=checks):
                    out = _run(derive, modules, keep=keep, timeout=timeout)
            finally:
                _STATE.mode = "off"
            if VERBOSE:
                print(f"  {site} {kind}: {type(out).__name__ if isinstance(out, Exception) else 'same' if out == base else 'changed'} "
                      f"{time.perf_counter() - t0:.1f}s", flush=True)
            if not isinstance(out, Exception):
                # Compared where the perturbed result has the same shape along the component's path:
                # branches merged away by a perturbation of a neighbour prove nothing about this one.
                for path, comp in comps:
                    now = _at_same_shape(out, base, path)
                    if now is not _INCOMPARABLE and now != comp:
                        changed.add(path)
            return out

        tried = {site: set() for site in sites}
        unused, cannot_fail = [], []
        # Each supporting block must be able to fail: all its own sites perturbed together.
        by_block: dict = {}
        for site, (in_support, inherited) in sites.items():
            if in_support and not inherited:
                by_block.setdefault(blocks[site], []).append(site)
        for label, members in by_block.items():
            if not any(_failed(run(members[0], kind, checks=True, together=members[1:]))
                       for kind in ("shift", "zero", "warp", "iwarp", "scale")):
                cannot_fail.append(label)
        for site, (in_support, inherited) in sites.items():
            if inherited or in_support:
                continue
            used = False
            # A helper called many times (a Kronecker-delta collapse): its first call alone first,
            # cheaper and enough to show use; every call when that shows nothing.
            passes = (True, False) if _STATE.counts.get(site, 0) > 3 else (False,)
            for first_only in passes:
                for kind in (("scale",) if first_only else ORDER):
                    out = run(site, kind, first_only=first_only)
                    tried[site].add(kind)
                    if (_failed(out) and kind in KINDS_USED) or (not isinstance(out, Exception) and out != base):
                        used = True
                        break
                if used:
                    break
            if not used:
                unused.append(site)
        # Components not yet seen to change: the remaining perturbations of the own sites, then
        # of the inherited ones (a result may transform a nested derivation's result).
        producing = [s for s, (sup, inh) in sites.items() if not sup and not inh]
        producing += [s for s, (sup, inh) in sites.items() if not sup and inh]
        # Kind by kind, the decision-changing ones first: a typed condition is what is left to find.
        for kind in ("zero", "shift", "warp", "iwarp", "scale"):
            for site in producing:
                if all(path in changed for path, _ in comps):
                    break
                if kind not in tried[site]:
                    tried[site].add(kind)
                    run(site, kind)
        typed = [(path, comp) for path, comp in comps if path not in changed]
        # Leave the derivations' caches holding unperturbed values (the operations come from the memo).
        _STATE.mode, _STATE.target, _STATE.seen = "perturb", frozenset(), {}
        _run(derive, modules)
        _STATE.mode = "off"
        return Report(sites, unused, cannot_fail, typed, runs)
