r"""Check a user's normalizing-flow layer and VAE bounds (questions 4 and 6).

:func:`assert_flow` checks an invertible map :math:`y = f(x)` on
:math:`\mathbb{R}^n` at random points, in float64:

* invertibility: :math:`f^{-1}(f(x)) = x`;
* the log-determinant: the reported :math:`\log|\det \partial f/\partial x|`
  equals the one of the Jacobian that autograd computes, row by row (a small
  ``dim`` keeps the full Jacobian cheap); the inverse's, when it reports one,
  is its negative.

Accepted flows (the conventions):

* a ``torch.distributions.Transform``: ``t(x)``, ``t.inv(y)``,
  ``t.log_abs_det_jacobian(x, y)`` (elementwise ones, shape ``(n, dim)``, are
  summed over the last dimension, as ``IndependentTransform(t, 1)`` does);
* an ``nn.Module`` (or any object) with ``forward``/``__call__`` and
  ``inverse`` (or ``reverse``), each taking an ``(n, dim)`` batch. The
  log-determinant comes from ``forward`` returning ``(y, log_det)``, or from a
  method ``log_abs_det_jacobian(x, y)`` (or ``log_abs_det_jacobian(x)``); shape
  ``(n,)``, or ``(n, dim)`` summed. If ``inverse`` returns ``(x, log_det)``,
  that is :math:`\log|\det \partial f^{-1}/\partial y|`. A module is checked on
  a float64 copy in eval mode; the original is untouched.

:func:`assert_elbo_bound` checks a VAE's bounds: ELBO :math:`\le` the
importance-weighted bound :math:`\mathcal{L}_k` (Burda et al. 2016), which
grows with k, and :math:`\mathcal{L}_1` = ELBO in expectation. Accepted models:
``model.elbo(x)`` (per image ``(n,)``, or the batch mean) and
``model.iwae_log_likelihood(x, k)`` (or ``iwae(x, k)`` / ``iwae_bound(x, k)``),
as :class:`genverify.models.MLPVAE` and ``ConvVAE`` have; or
``model.log_weights(x, k)``, the ``(k, n)`` importance log-weights
:math:`\log p(x, z_j) - \log q(z_j \mid x)`, from which both bounds are
computed. A method that takes ``generator`` gets a seeded one.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.distributions import constraints
from torch.distributions.transforms import Transform

from genverify.core import ParameterError
from genverify.testing._calls import default_seed, describe, fmt

__all__ = ["assert_elbo_bound", "assert_flow"]

#: Standard errors a Monte Carlo comparison may be off by before it fails (false alarm ~6e-7 each).
Z_SCORE = 5.0


# ----------------------------------------------------------------- flows


class _Flow:
    """A Transform or a module behind one interface: forward -> (y, log_det | None), inverse -> (x, log_det | None)."""

    def __init__(self, flow: Any, dtype: torch.dtype):
        self.name = describe(flow) if not isinstance(flow, torch.nn.Module) else type(flow).__name__
        if isinstance(flow, Transform):
            self.kind = "transform"
            self.flow = flow
        else:
            inverse = getattr(flow, "inverse", None) or getattr(flow, "reverse", None)
            if not callable(flow) or not callable(inverse):
                raise ParameterError("flow", f"{{param}} must be a torch.distributions.Transform or have forward "
                                             f"(or __call__) and inverse (or reverse) methods; {self.name} has "
                                             + ("no inverse" if callable(flow) else "no forward"))
            self.kind = "module"
            self.flow = flow
            if isinstance(flow, torch.nn.Module):
                try:
                    self.flow = copy.deepcopy(flow).to(dtype).eval()
                except Exception:  # noqa: BLE001 - an uncopyable module is checked as it is
                    self.flow = flow
            self._inverse = getattr(self.flow, "inverse", None) or self.flow.reverse

    def domain(self) -> Any:
        return self.flow.domain if self.kind == "transform" else constraints.real

    @staticmethod
    def _split(out: Any, what: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(out, (tuple, list)):
            if len(out) != 2:
                raise AssertionError(f"{what} returned {len(out)} values; expected a tensor or (tensor, log_det)")
            return out[0], out[1]
        return out, None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.kind == "transform":
            y = self.flow(x)
            return y, self.flow.log_abs_det_jacobian(x, y)
        y, log_det = self._split(self.flow(x), "forward")
        if log_det is None:
            ladj = getattr(self.flow, "log_abs_det_jacobian", None)
            if callable(ladj):
                log_det = ladj(x, y) if _takes_two(ladj) else ladj(x)
        return y, log_det

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.kind == "transform":
            return self.flow.inv(y), None
        return self._split(self._inverse(y), "inverse")


def _takes_two(fn: Callable) -> bool:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    except (TypeError, ValueError):
        return True
    return len(params) >= 2


def _per_row(log_det: Any, n: int, dim: int, what: str) -> torch.Tensor:
    """``(n,)`` from ``(n,)``, ``(n, 1)``, ``(n, dim)`` (summed) or a scalar shared by every row."""
    t = torch.as_tensor(log_det, dtype=torch.float64)
    if t.dim() == 0:
        return t.expand(n)
    if t.shape == (n,):
        return t
    if t.shape == (n, 1):
        return t[:, 0]
    if t.shape == (n, dim):
        return t.sum(dim=1)
    raise AssertionError(f"{what} has shape {tuple(t.shape)}; expected ({n},) per row or ({n}, {dim}) per element")


def _inputs(flow: _Flow, n: int, dim: int, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """N(0, I) points, mapped into a Transform's domain (an interval, or a half-line)."""
    x = torch.randn(n, dim, generator=generator, dtype=dtype)
    dom = flow.domain()
    while hasattr(dom, "base_constraint"):  # independent(interval, 1) -> interval
        dom = dom.base_constraint
    lo, hi = getattr(dom, "lower_bound", None), getattr(dom, "upper_bound", None)
    if lo is not None and hi is not None:
        return float(lo) + (float(hi) - float(lo)) * torch.sigmoid(x)
    if lo is not None:
        return float(lo) + torch.exp(x)
    return x


def assert_flow(flow: Any, *, dim: int = 3, n: int = 16, inputs: torch.Tensor | None = None, rtol: float = 1e-6,
                atol: float = 1e-8, seed: int | None = None) -> None:
    r"""Assert that ``flow`` is invertible and reports log|det J| as autograd computes it.

    ``flow``: a ``torch.distributions.Transform`` or a module with ``forward``
    and ``inverse`` (see the module docstring for the conventions). Checked at
    ``n`` points of :math:`\mathbb{R}^{dim}` drawn from N(0, I) (mapped into the
    transform's domain), or at ``inputs`` (``(n, dim)``), in float64. A layer
    that needs a particular width (a coupling layer) takes ``dim``.

    Raises ``AssertionError`` naming the point (the failing row closest to the
    origin), the reported and the autograd values.
    """
    __tracebackhide__ = True
    dtype = torch.float64
    wrapped = _Flow(flow, dtype)
    if inputs is None:
        if not (isinstance(dim, int) and dim >= 1 and isinstance(n, int) and n >= 1):
            raise ParameterError("dim", f"{{param}} and n must be integers >= 1, got dim={dim!r}, n={n!r}", "n")
        generator = torch.Generator().manual_seed(default_seed(seed))
        x = _inputs(wrapped, n, dim, generator, dtype)
    else:
        x = torch.as_tensor(inputs).to(dtype)
        if x.dim() != 2:
            raise ParameterError("inputs", f"{{param}} must have shape (n, dim), got {tuple(x.shape)}")
        n, dim = x.shape
    name = wrapped.name
    order = torch.argsort(x.abs().amax(dim=1)).tolist()  # report the simplest failing row

    def fail(row: int | None, lines: Sequence[str], error: BaseException | None = None) -> None:
        __tracebackhide__ = True
        head = f"{name} is not a valid flow layer on R^{dim}" if row is None else \
            f"{name} is not a valid flow layer on R^{dim}: at x = {fmt(x[row].numpy())}"
        raise AssertionError("\n".join([head, *lines])) from error

    with torch.no_grad():
        try:
            y, log_det = wrapped.forward(x)
        except AssertionError as exc:
            fail(None, [f"  {exc}"])
        except Exception as exc:  # noqa: BLE001 - the user's layer raised: a failure of their test
            fail(None, [f"  forward raised {type(exc).__name__}: {exc}"], exc)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            fail(None, [f"  forward returned {type(y).__name__} of shape {tuple(getattr(y, 'shape', ()))}; "
                        f"expected a tensor of the input's shape {tuple(x.shape)}"])
        if log_det is None:
            fail(None, ["  it reports no log|det J|: forward should return (y, log_det), or the layer should have "
                        "log_abs_det_jacobian(x, y)"])
        try:
            log_det = _per_row(log_det, n, dim, "log|det J|")
        except AssertionError as exc:
            fail(None, [f"  {exc}"])
        try:
            x_back, inv_log_det = wrapped.inverse(y)
        except Exception as exc:  # noqa: BLE001
            fail(None, [f"  inverse raised {type(exc).__name__}: {exc}"], exc)
        x_back = torch.as_tensor(x_back, dtype=dtype)
        close = (x_back - x).abs() <= atol + rtol * x.abs()
        bad = [i for i in order if not bool(close[i].all())]
        if bad:
            i = bad[0]
            fail(i, [f"  not invertible: inverse(forward(x)) != x ({len(bad)} of {n} rows)",
                     f"  forward(x)          = {fmt(y[i].numpy())}",
                     f"  inverse(forward(x)) = {fmt(x_back[i].numpy())}"])
    true = torch.empty(n, dtype=dtype)
    jacobians = []
    for i in range(n):
        try:
            jac = torch.autograd.functional.jacobian(lambda v: wrapped.forward(v[None])[0][0], x[i])
        except Exception as exc:  # noqa: BLE001 - a layer autograd cannot differentiate cannot be trained either
            fail(i, [f"  autograd cannot differentiate forward: {type(exc).__name__}: {exc}"], exc)
        jacobians.append(jac)
        true[i] = torch.linalg.slogdet(jac).logabsdet
    ok = (log_det - true).abs() <= atol + rtol * true.abs()
    bad = [i for i in order if not bool(ok[i])]
    if bad:
        i = bad[0]
        lines = [f"  log|det J| is wrong ({len(bad)} of {n} rows): reported {float(log_det[i]):.10g}, "
                 f"the autograd Jacobian gives {float(true[i]):.10g}"]
        jac = jacobians[i]
        if bool(torch.all(jac == torch.diag(torch.diagonal(jac)))):
            lines.append(f"  the Jacobian is diagonal: diag(J) = {fmt(torch.diagonal(jac).numpy())}, so "
                         "log|det J| = sum_i log|J_ii|")
        if torch.allclose(log_det, -true, rtol=rtol, atol=atol):
            lines.append("  it is the negative: the log-determinant of the inverse, log|det df^-1/dy|, "
                         "instead of log|det df/dx|?")
        fail(i, lines)
    if inv_log_det is not None:
        try:
            inv_log_det = _per_row(inv_log_det, n, dim, "the inverse's log|det J|")
        except AssertionError as exc:
            fail(None, [f"  {exc}"])
        ok = (inv_log_det + true).abs() <= atol + rtol * true.abs()
        bad = [i for i in order if not bool(ok[i])]
        if bad:
            i = bad[0]
            lines = [f"  the inverse reports log|det J| = {float(inv_log_det[i]):.10g}; log|det df^-1/dy| at "
                     f"y = f(x) is -log|det df/dx| = {float(-true[i]):.10g}"]
            if torch.allclose(inv_log_det, true, rtol=rtol, atol=atol):
                lines.append("  it equals the forward log-determinant: the inverse's is its negative")
            fail(i, lines)


# ----------------------------------------------------------------- VAE bounds


def _method(model: Any, names: Sequence[str]) -> Callable | None:
    for name in names:
        fn = getattr(model, name, None)
        if callable(fn):
            return fn
    return None


def _takes_generator(fn: Callable) -> bool:
    try:
        return "generator" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _seeded(fn: Callable, seed: int, *args) -> torch.Tensor:
    """``fn(*args)`` with randomness from ``seed``: a generator argument, or the global RNG, restored after."""
    if _takes_generator(fn):
        return fn(*args, generator=torch.Generator().manual_seed(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn(*args)


def _mean(value: Any) -> float:
    return float(torch.as_tensor(value, dtype=torch.float64).detach().mean())


def assert_elbo_bound(model: Any, x: torch.Tensor, *, ks: Sequence[int] = (1, 8, 64), repeats: int = 16,
                      log_px: float | None = None, strict: bool = True, seed: int | None = None) -> None:
    r"""Assert ELBO <= L_k for every k in ``ks``, L_k non-decreasing in k (strictly from the first to the
    last k when ``strict``), L_1 = ELBO in expectation, and L_k <= ``log_px`` when the exact log-evidence of
    the batch (mean per image) is known.

    Each bound is averaged over the batch ``x`` and over ``repeats`` seeded
    draws; comparisons allow :data:`Z_SCORE` standard errors of Monte Carlo
    noise. The model protocol is in the module docstring.
    """
    __tracebackhide__ = True
    elbo_fn = _method(model, ("elbo",))
    iwae_fn = _method(model, ("iwae_log_likelihood", "iwae", "iwae_bound"))
    log_weights_fn = _method(model, ("log_weights",))
    name = describe(model) if not isinstance(model, torch.nn.Module) else type(model).__name__
    if log_weights_fn is None and (elbo_fn is None or iwae_fn is None):
        raise ParameterError("model", f"{{param}} {name} must have elbo(x) and iwae_log_likelihood(x, k) (or iwae / "
                                      "iwae_bound), or log_weights(x, k)")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1 or not isinstance(repeats, int) or repeats < 2:
        raise ParameterError("ks", f"{{param}} must be positive integers and repeats >= 2, got {ks!r}, {repeats!r}",
                             "repeats")
    base = default_seed(seed)
    was_training = getattr(model, "training", None)
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            elbos, bounds = _estimates(model, x, ks, repeats, base, elbo_fn, iwae_fn, log_weights_fn, name)
    finally:
        if isinstance(model, torch.nn.Module) and was_training:
            model.train()
    _judge(name, elbos, bounds, ks, repeats, log_px, strict)


def _estimates(model, x, ks, repeats, base, elbo_fn, iwae_fn, log_weights_fn, name):
    elbos = np.empty(repeats)
    bounds = {k: np.empty(repeats) for k in ks}
    for r in range(repeats):
        try:
            if elbo_fn is not None and iwae_fn is not None:
                elbos[r] = _mean(_seeded(elbo_fn, base * 1_000_003 + r, x))
                for k in ks:
                    bounds[k][r] = _mean(_seeded(iwae_fn, base * 1_000_003 + 7919 * k + r, x, k))
            else:
                for k in ks:
                    w = torch.as_tensor(_seeded(log_weights_fn, base * 1_000_003 + 7919 * k + r, x, k),
                                        dtype=torch.float64)
                    if w.dim() == 0 or w.shape[0] != k:
                        raise AssertionError(f"log_weights(x, {k}) has shape {tuple(w.shape)}; expected ({k}, n)")
                    bounds[k][r] = float((torch.logsumexp(w, 0) - math.log(k)).mean())
                    if k == ks[0]:
                        elbos[r] = float(w.mean())
        except AssertionError:
            raise
        except Exception as exc:
            raise AssertionError(f"{name}: computing the bounds raised {type(exc).__name__}: {exc}") from exc
    return elbos, bounds


def _judge(name, elbos, bounds, ks, repeats, log_px, strict) -> None:
    def mean_se(a):
        return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a)))

    e, e_se = mean_se(elbos)
    table = [f"  ELBO = {e:.6g} ± {e_se:.2g}"] + [f"  L_{k} = {mean_se(bounds[k])[0]:.6g} ± {mean_se(bounds[k])[1]:.2g}"
                                                   for k in ks]
    table.append(f"  (means over the batch and {repeats} seeded repeats ± standard errors; the importance-weighted "
                 "bound L_k = E log (1/k) sum_j p(x, z_j) / q(z_j | x), Burda et al. 2016)")

    def fail(lines):
        __tracebackhide__ = True
        raise AssertionError("\n".join([f"{name}: the ELBO and the importance-weighted bounds are inconsistent",
                                        *lines, *table]))

    everything = [elbos, *bounds.values()]
    if not all(np.all(np.isfinite(a)) for a in everything):
        fail(["  a bound is nan or infinite (a log of 0, or an overflow?)"])
    for k in ks:
        b, b_se = mean_se(bounds[k])
        se = math.hypot(e_se, b_se)
        if e - b > Z_SCORE * se + 1e-9 * abs(e):
            fail([f"  ELBO > L_{k} by {e - b:.3g} ({(e - b) / se if se else math.inf:.1f} standard errors): the ELBO "
                  "must not exceed L_k for any k (Jensen's inequality). Is the KL term added instead of "
                  "subtracted, or log q(z|x) and log p(z) swapped?"])
    for k1, k2 in itertools.pairwise(ks):
        (b1, s1), (b2, s2) = mean_se(bounds[k1]), mean_se(bounds[k2])
        se = math.hypot(s1, s2)
        if b1 - b2 > Z_SCORE * se + 1e-9 * abs(b1):
            fail([f"  L_{k1} > L_{k2} by {b1 - b2:.3g}: the bound must grow with k. Is log k subtracted twice, "
                  "or the mean taken over weights instead of log-weights?"])
    if 1 in ks:
        b, b_se = mean_se(bounds[1])
        se = math.hypot(e_se, b_se)
        if abs(b - e) > Z_SCORE * se + 1e-9 * abs(e):
            fail([f"  L_1 differs from the ELBO by {b - e:.3g} ({abs(b - e) / se if se else math.inf:.1f} standard "
                  "errors): with one sample the importance-weighted bound is the ELBO"])
    if strict and len(ks) > 1:
        (b1, s1), (b2, s2) = mean_se(bounds[ks[0]]), mean_se(bounds[ks[-1]])
        se = math.hypot(s1, s2)
        if not b2 - b1 > Z_SCORE * se:
            fail([f"  L_{ks[-1]} - L_{ks[0]} = {b2 - b1:.3g} ± {se:.2g}: the bound does not tighten with k. Is it "
                  "the mean of the log-weights (an ELBO) instead of the log of the mean weight "
                  "(logsumexp(log_w) - log k)? (strict=False allows an exact posterior.)"])
    if log_px is not None:
        b, b_se = mean_se(bounds[ks[-1]])
        if b - float(log_px) > Z_SCORE * b_se + 1e-9 * abs(b):
            fail([f"  L_{ks[-1]} = {b:.6g} exceeds log p(x) = {float(log_px):.6g}: not a lower bound "
                  "(is log k missing?)"])
