"""Time limits for the claim checker: a forked child with a hard limit, and a soft SIGALRM budget.

SymPy's big-integer arithmetic cannot be interrupted by a signal, but a
process can be killed: :func:`run_isolated` runs ``fn(*args)`` in a forked
child and kills it after ``timeout`` seconds, so no claim can hang the caller.
The answer (or the error) comes back through a pipe, pickled:

* an exception of the ``passthrough`` classes (by default the claims errors,
  :class:`~genverify.core.ParameterError` and an unknown result id) is raised
  again in the parent, class and parameter names included;
* running out of memory is :class:`~genverify.claims.errors.ClaimRefused`;
* any other exception is a :class:`~genverify.claims.errors.ClaimError`
  naming it (never a traceback);
* the time limit is :class:`~genverify.claims.errors.CheckTimeout`.

Inside the child, :func:`with_alarm` gives one step (the symbolic
simplification) a softer budget: pure-Python SymPy work is interruptible by
SIGALRM, and the check then falls back to numbers instead of failing.
"""

from __future__ import annotations

import importlib
import os
import pickle
import select
import signal
import time
from collections.abc import Callable
from typing import Any

from genverify.claims.errors import CheckTimeout, ClaimError, ClaimRefused
from genverify.core import ParameterError, UnknownResultError

__all__ = ["PASSTHROUGH", "BudgetExceeded", "run_isolated", "with_alarm"]

#: Exceptions raised in the child that the parent raises again as they are.
PASSTHROUGH: tuple[type[BaseException], ...] = (ClaimError, ParameterError, UnknownResultError)


#: Modules SymPy imports on first use (``simplify``: ``sympy.physics.units``, ``sympy.combinatorics``;
#: ``lambdify``: ``sympy.codegen``). A forked child's imports die with it.
LAZY_SYMPY_MODULES = ("sympy.physics.units", "sympy.combinatorics", "sympy.codegen.ast", "sympy.sets.setexpr",
                      "sympy.tensor.tensor")
_forks = 0


def _preload() -> None:
    """From a process's second isolated check on, import :data:`LAZY_SYMPY_MODULES` here, once.

    Every child would import them again (about 0.1 s a check); a process that checks one
    claim (``genverify check``) does not pay for modules its child may not need.
    """
    global _forks
    _forks += 1
    if _forks == 2:
        for name in LAZY_SYMPY_MODULES:
            importlib.import_module(name)


def run_isolated(fn: Callable[..., Any], args: tuple, timeout: float, *,
                 passthrough: tuple[type[BaseException], ...] = PASSTHROUGH) -> Any:
    """``fn(*args)`` computed in a forked child that is killed after ``timeout`` seconds.

    The return value and any ``passthrough`` exception must pickle.
    """
    _preload()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        _child(fn, args, read_fd, write_fd, passthrough)
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
        raise ClaimRefused("the check process ended without an answer (out of memory?)")
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "ok":
        return value
    if kind == "raise":
        raise value
    raise ClaimError(f"the claim could not be checked ({value})")


def _child(fn, args, read_fd: int, write_fd: int, passthrough) -> None:
    code = 0
    try:
        os.close(read_fd)
        try:
            payload: tuple[str, Any] = ("ok", fn(*args))
        except passthrough as exc:
            payload = ("raise", exc)
        except MemoryError:
            payload = ("raise", ClaimRefused("the check ran out of memory"))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, never a traceback
            payload = ("error", f"{type(exc).__name__}: {exc}")
        data = _dumps(payload)
        with os.fdopen(write_fd, "wb") as out:
            out.write(data)
    except BaseException:  # noqa: BLE001
        code = 1
    finally:
        os._exit(code)


def _dumps(payload: tuple[str, Any]) -> bytes:
    """Pickle ``payload``; an exception that does not survive the round trip is sent as text."""
    try:
        data = pickle.dumps(payload)
        if payload[0] == "raise":
            pickle.loads(data)
        return data
    except Exception as exc:
        if payload[0] != "raise":
            raise
        err = payload[1]
        return pickle.dumps(("error", f"{type(err).__name__}: {err} (unpicklable: {type(exc).__name__})"))


class BudgetExceeded(Exception):
    """Raised inside :func:`with_alarm`'s function when its time is up."""


def with_alarm(seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` for at most ``seconds`` (SIGALRM; pure-Python SymPy work is interruptible).

    Raises :class:`BudgetExceeded` when the time is up. Off the main thread
    there is no alarm: ``fn`` runs unbounded (an outer limit still holds).
    """
    def handler(signum, frame):
        raise BudgetExceeded()

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
