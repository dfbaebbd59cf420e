"""Mutation testing of genverify's mathematics: numerics/, derivations/ and models/ (``make mutation``).

A small AST mutator, because mutmut and cosmic-ray cannot drive this layout
without harm here: both expect the package's source tree where its import
name says (``genverify/numerics/...``), while setuptools' ``package-dir`` maps
``genverify.numerics`` to ``numerics/``; mutmut 3 copies the tree into
``mutants/`` and runs it there (the editable install still imports
``/work/main``), and cosmic-ray rewrites the files in place while it runs,
which breaks every other process that imports them meanwhile. This tool never
writes a source file: a mutant is compiled from the mutated AST (with the
original line numbers) and loaded by an import hook in a forked child.

Mutation operators (``ast``): arithmetic (``+ -``, ``* /``, ``** -> *``,
``// -> /``, ``% -> *``), comparisons (``< <=``, ``> >=``, ``== !=``, ``in`` /
``not in``, ``is`` / ``is not``), boolean (``and or``, dropped ``not``), unary
minus dropped, constants (an int n -> n + 1, a float x -> 2x or 1 for 0, True
<-> False). Strings, docstrings, annotations and ``raise`` statements are left
alone (messages are not mathematics).

The oracle of a mutant: the checks of ``genverify verify`` whose runs executed
its line, then the fast tests that executed it (``-x``), in one forked child
with a timeout. Which checks and tests execute which lines is recorded once
(``baseline``): each unit in its own forked child, traced with
``sys.settrace`` from a fresh import. A line executed at import time (a
module-level constant, a default argument) is charged to every unit that
touches its module.

Usage::

    python tools/mutate.py baseline             # record coverage and unit times (minutes)
    python tools/mutate.py run [--sample N]     # run mutants (a random sample, or all)
    python tools/mutate.py report               # score, survivors (tools/mutation_equivalent.txt
                                                # lists the equivalent ones, with reasons)

``make mutation`` runs all three. Results go to ``build/mutation/`` (ignored by git).

One script of about 650 lines on purpose: the mutation points, the fork
server, the baseline and the report share their data structures and are run
together; nothing of it is imported by genverify.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "mutation"
EQUIVALENT = Path(__file__).resolve().parent / "mutation_equivalent.txt"

#: Package directories mutated, and the import names they map to (pyproject's package-dir).
PACKAGES = {"numerics": "genverify.numerics", "derivations": "genverify.derivations", "models": "genverify.models"}

#: The fast tests of the oracle (per test node). Slow end-to-end files (experiments, report) are left out.
FAST_TESTS = [
    "tests/test_kl.py", "tests/test_densities.py", "tests/test_elbo.py", "tests/test_kl_fit.py",
    "tests/test_em_derivations.py", "tests/test_em_numerics.py", "tests/test_leaky_relu.py",
    "tests/test_check_power.py", "tests/test_derivations_derive.py", "tests/test_doctests.py",
    "tests/test_numerics_edges.py", "tests/test_derivation_steps.py",
    "tests/test_bernoulli_mixture.py", "tests/test_nice.py", "tests/test_vae.py", "tests/test_training.py",
]
#: Test nodes left out of the oracle: these duplicate the verify units (every registry check).
SKIP_NODES = ("tests/test_registry.py::test_registry_check_passes",)

#: The most seconds one mutant's oracle may run (a mutant past it is killed by timeout).
MAX_BUDGET = 400.0

#: Third-party modules imported by the fork server before it forks (never genverify: the mutant must load fresh).
PRELOAD = ["numpy", "scipy", "scipy.integrate", "scipy.optimize", "scipy.special", "scipy.stats", "sympy",
           "sympy.stats", "mpmath", "torch", "torch.distributions", "matplotlib", "matplotlib.figure", "pytest",
           "hypothesis", "yaml", "jinja2", "rich", "sklearn"]


# ----------------------------------------------------------------- mutation points


@dataclass(frozen=True)
class Mutant:
    file: str  # relative to ROOT
    line: int
    col: int
    op: str  # "Add->Sub", "Lt->LtE", "const 2->3", ...
    index: int  # the n-th mutation point of the file (stable for an unchanged file)

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}:{self.col}:{self.op}"


_BINOPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult,
           ast.FloorDiv: ast.Div, ast.Mod: ast.Mult}
_CMPOPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
           ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes not to mutate: docstrings, annotations, raise statements, decorators, __all__."""
    skip: set[int] = set()

    def mark(node):
        for sub in ast.walk(node):
            skip.add(id(sub))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                mark(body[0])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                mark(dec)
            if node.returns is not None:
                mark(node.returns)
            for arg in node.args.args + node.args.kwonlyargs + node.args.posonlyargs:
                if arg.annotation is not None:
                    mark(arg.annotation)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, (ast.Raise, ast.JoinedStr, ast.Assert)):
            mark(node)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            mark(node)
    return skip


def _points(tree: ast.AST):
    """(node, description, apply) for every mutation point, in a fixed order."""
    skip = _skipped_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            new = _BINOPS[type(node.op)]
            out.append((node, f"{type(node.op).__name__}->{new.__name__}", lambda n, new=new: setattr(n, "op", new())))
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in _CMPOPS:
                    new = _CMPOPS[type(op)]

                    def apply(n, k=k, new=new):
                        n.ops[k] = new()

                    out.append((node, f"{type(op).__name__}->{new.__name__}", apply))
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            out.append((node, f"{type(node.op).__name__}->{new.__name__}", lambda n, new=new: setattr(n, "op", new())))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
            name = "drop-" + type(node.op).__name__
            out.append((node, name, None))  # replaced by its operand (see _mutated)
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            v = node.value
            if isinstance(v, bool):
                new_v = not v
            elif isinstance(v, int):
                new_v = v + 1
            else:
                new_v = 2 * v if v != 0 else 1.0
            out.append((node, f"const {v!r}->{new_v!r}", lambda n, new_v=new_v: setattr(n, "value", new_v)))
    return out


class _DropUnary(ast.NodeTransformer):
    def __init__(self, target):
        self.target = target

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        return node.operand if node is self.target else node


def mutants_of(rel: str) -> list[Mutant]:
    tree = ast.parse((ROOT / rel).read_text(), filename=rel)
    return [Mutant(rel, node.lineno, node.col_offset, desc, n) for n, (node, desc, _) in enumerate(_points(tree))]


def _mutated(m: Mutant):
    """The code object of the mutated module (original line numbers kept)."""
    path = ROOT / m.file
    tree = ast.parse(path.read_text(), filename=str(path))
    node, desc, apply = _points(tree)[m.index]
    if (node.lineno, node.col_offset, desc) != (m.line, m.col, m.op):
        raise RuntimeError(f"{m.id}: the file changed since the mutants were listed")
    if apply is None:
        tree = _DropUnary(node).visit(tree)
    else:
        apply(node)
    ast.fix_missing_locations(tree)
    return compile(tree, str(path), "exec")


def all_mutants() -> list[Mutant]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).glob("*.py")):
            out += mutants_of(str(path.relative_to(ROOT)))
    return out


def module_name(rel: str) -> str:
    pkg, _, name = rel.partition("/")
    name = name[:-3]
    return PACKAGES[pkg] if name == "__init__" else f"{PACKAGES[pkg]}.{name}"


# ----------------------------------------------------------------- the fork server's child side


class _MutantFinder:
    """A meta-path finder that loads one module from a given code object."""

    def __init__(self, name: str, path: Path, code):
        self.name, self.path, self.code = name, path, code

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        import importlib.util

        is_pkg = self.path.name == "__init__.py"
        return importlib.util.spec_from_file_location(
            fullname, self.path, loader=self,
            submodule_search_locations=[str(self.path.parent)] if is_pkg else None)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self.code, module.__dict__)


def _child_setup() -> None:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "tests"))
    os.environ["CI"] = "1"
    # genverify's on-disk derivation cache keys on the source files, which a mutant leaves unchanged:
    # it would hand the mutant the original derivation.
    os.environ["GENVERIFY_CACHE"] = "off"
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:  # noqa: BLE001
        pass


class _UnitTimeout(Exception):
    pass


def _run_units(units: list[str], stop_first: bool = True, budgets: dict | None = None) -> tuple[bool, str]:
    """Run verify units ("verify::<result id>::<check name>") then test nodes; (all passed, first failing unit).

    ``budgets`` gives each verify unit its own time limit: a mutant that sends SymPy into a
    long computation is stopped at the first check it slows, not at the end of the whole run.
    """
    from genverify import registry
    from genverify.verification import run_check

    def alarm(signum, frame):  # noqa: ARG001
        raise _UnitTimeout()

    for u in units:
        if not u.startswith("verify::"):
            continue
        _, rid, name = u.split("::", 2)
        result = registry.get(rid)
        chk = next(c for c in result.checks if c.name == name)
        limit = (budgets or {}).get(u)
        if limit:
            signal.signal(signal.SIGALRM, alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            # run_check turns an exception inside the check into a failed record; the alarm may also
            # land outside it (while deriving), so it is caught here too.
            passed = run_check(result, chk).passed
        except _UnitTimeout:
            passed = False
        finally:
            if limit:
                signal.setitimer(signal.ITIMER_REAL, 0)
        if not passed:
            return False, u
    nodes = [u for u in units if not u.startswith("verify::")]
    if nodes:
        import pytest

        args = [*nodes, "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly", "--hypothesis-profile=ci",
                "--no-header", "-o", "addopts="]
        if not stop_first:
            args.remove("-x")
        code = pytest.main(args)
        if code != 0:
            return False, "pytest"
    return True, ""


def _fork(fn, timeout: float) -> tuple[str, str, float]:
    """Run ``fn()`` (returning (ok, detail)) in a forked child; ("passed"|"failed"|"timeout"|"error", detail, s)."""
    r, w = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        status, detail = "error", ""
        try:
            _child_setup()
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 1)
                os.dup2(devnull.fileno(), 2)
            ok, detail = fn()
            status = "passed" if ok else "failed"
        except BaseException as exc:  # noqa: BLE001 - a crash of the oracle is reported, not raised
            status, detail = "error", f"{type(exc).__name__}: {exc}"[:300]
        os.write(w, json.dumps([status, detail]).encode())
        os._exit(0)
    os.close(w)
    deadline = t0 + timeout
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            return "timeout", "", time.perf_counter() - t0
        time.sleep(0.02)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    status, detail = json.loads(data) if data else ("error", "no report from the child")
    return status, detail, time.perf_counter() - t0


def _preload() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional dependency
            pass
    if any(k == "genverify" or k.startswith("genverify.") for k in sys.modules):
        raise RuntimeError("the fork server must not import genverify")


# ----------------------------------------------------------------- baseline: which unit runs which line


def _targets() -> set[str]:
    return {str((ROOT / pkg).resolve()) for pkg in PACKAGES}


def _tracer(store: dict, targets: set[str]):
    def local(frame, event, arg):  # noqa: ARG001
        if event == "line":
            store.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
        return local

    def global_(frame, event, arg):  # noqa: ARG001
        fn = frame.f_code.co_filename
        if fn.rsplit("/", 1)[0] in targets:
            store.setdefault(fn, set()).add(frame.f_lineno)
            return local
        return None

    return global_


def _collect_nodes(test_files: list[str]) -> list[str]:
    """The test node ids of ``test_files`` (pytest --collect-only in a child)."""

    def collect():
        import pytest

        class Collector:
            nodes: list[str] = []

            def pytest_collection_finish(self, session):
                Collector.nodes = [item.nodeid for item in session.items]

        code = pytest.main([*test_files, "--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts="],
                           plugins=[Collector()])
        Path(OUT / "nodes.json").write_text(json.dumps(Collector.nodes))
        return code == 0, ""

    status, detail, _ = _fork(collect, 600)
    if status != "passed":
        raise RuntimeError(f"collecting the tests failed: {status} {detail}")
    nodes = json.loads((OUT / "nodes.json").read_text())
    return [n for n in nodes if not n.startswith(SKIP_NODES)]


def _verify_units() -> list[str]:
    def listing():
        from genverify import registry

        units = [f"verify::{r.id}::{c.name}" for r in registry.all_results() for c in r.checks]
        Path(OUT / "verify_units.json").write_text(json.dumps(units))
        return True, ""

    status, detail, _ = _fork(listing, 600)
    if status != "passed":
        raise RuntimeError(f"listing the checks failed: {status} {detail}")
    return json.loads((OUT / "verify_units.json").read_text())


def _clear_caches() -> None:
    """Forget every cached derivation and lru_cache of genverify, so that each unit runs its own code."""
    for name, mod in list(sys.modules.items()):
        if not (name == "genverify" or name.startswith("genverify.")):
            continue
        for val in list(vars(mod).values()):
            if callable(getattr(val, "cache_clear", None)):
                try:
                    val.cache_clear()
                except TypeError:
                    pass
    from genverify import registry

    for r in registry.all_results():
        r.forget_derivation()
    for mod in list(sys.modules.values()):
        for val in list(vars(mod).values()) if mod is not None else ():
            if type(val).__name__ == "Result" and hasattr(val, "forget_derivation"):
                val.forget_derivation()


def baseline(jobs: int, tests: list[str] | None = None) -> None:  # noqa: ARG001 - one child at a time: shared cores
    """Run every unit once, traced; write coverage.json.

    The checks run in one forked child and each test file in another; caches are
    cleared before every unit, so that a unit records the lines it needs even
    when an earlier unit computed them.
    """
    OUT.mkdir(parents=True, exist_ok=True)
    _preload()
    test_files = tests or FAST_TESTS
    verify = _verify_units()
    nodes = _collect_nodes(test_files)
    units = verify + nodes
    index = {u: n for n, u in enumerate(units)}
    targets = _targets()
    cov_dir = OUT / "cov"
    cov_dir.mkdir(exist_ok=True)
    print(f"baseline: {len(verify)} checks, {len(nodes)} test nodes", flush=True)
    t_all = time.perf_counter()

    def import_phase(store):
        sys.settrace(_tracer(store, targets))
        import genverify.registry as registry

        registry.all_results()
        sys.settrace(None)

    def run_verify():
        imported: dict = {}
        import_phase(imported)
        from genverify import registry
        from genverify.verification import run_check

        per_unit, timings = {}, {}
        for u in verify:
            _, rid, name = u.split("::", 2)
            _clear_caches()
            store: dict = {}
            result = registry.get(rid)
            chk = next(c for c in result.checks if c.name == name)
            t0 = time.perf_counter()
            sys.settrace(_tracer(store, targets))
            try:
                ok = run_check(result, chk).passed
            finally:
                sys.settrace(None)
            timings[u] = {"status": "passed" if ok else "failed", "seconds": time.perf_counter() - t0}
            per_unit[index[u]] = {k: sorted(v) for k, v in store.items()}
        (cov_dir / "verify.json").write_text(json.dumps({
            "lines": per_unit, "timings": timings, "import": {k: sorted(v) for k, v in imported.items()}}))
        return True, ""

    def run_file(test_file):
        def fn():
            imported: dict = {}
            import_phase(imported)
            import pytest

            per_unit, timings = {}, {}
            state = {}

            class Tracing:
                def pytest_runtest_setup(self, item):
                    _clear_caches()
                    state["store"], state["t0"] = {}, time.perf_counter()
                    sys.settrace(_tracer(state["store"], targets))

                def pytest_runtest_teardown(self, item):
                    sys.settrace(None)

                def pytest_runtest_logreport(self, report):
                    if report.when == "call" or (report.when == "setup" and not report.passed):
                        u = report.nodeid
                        if u in index:
                            timings[u] = {"status": "passed" if report.passed else "failed",
                                          "seconds": time.perf_counter() - state["t0"]}
                            per_unit[index[u]] = {k: sorted(v) for k, v in state["store"].items()}

            pytest.main([test_file, "-q", "-p", "no:cacheprovider", "--hypothesis-profile=ci", "-o", "addopts="],
                        plugins=[Tracing()])
            name = test_file.replace("/", "_")
            (cov_dir / f"{name}.json").write_text(json.dumps({
                "lines": per_unit, "timings": timings, "import": {k: sorted(v) for k, v in imported.items()}}))
            return True, ""

        return fn

    jobs_ = [("verify", run_verify)] + [(f, run_file(f)) for f in test_files]
    for label, fn in jobs_:
        status, detail, seconds = _fork(fn, 7200)
        print(f"  {label}: {status} {detail} ({seconds:.0f} s)", flush=True)
    coverage: dict = {}  # file -> line -> [unit index]
    import_lines: dict = {}
    timings: dict = {}
    for path in sorted(cov_dir.glob("*.json")):
        data = json.loads(path.read_text())
        timings.update(data["timings"])
        for n, lines_of in data["lines"].items():
            for fn_, lines in lines_of.items():
                for line in lines:
                    coverage.setdefault(fn_, {}).setdefault(str(line), []).append(int(n))
        for fn_, lines in data["import"].items():
            import_lines.setdefault(fn_, set()).update(lines)
    for u in units:
        timings.setdefault(u, {"status": "missing", "seconds": 0.0})
    (OUT / "coverage.json").write_text(json.dumps({
        "units": units, "timings": timings, "coverage": coverage,
        "import": {k: sorted(v) for k, v in import_lines.items()}}))
    bad = [u for u, t in timings.items() if t["status"] != "passed"]
    print(f"baseline done in {time.perf_counter() - t_all:.0f} s; {len(bad)} units did not pass "
          f"(left out of the oracle): {bad[:10]}", flush=True)


# ----------------------------------------------------------------- running mutants


def _units_for(m: Mutant, cov: dict) -> list[int]:
    path = str((ROOT / m.file).resolve())
    lines = cov["coverage"].get(path, {})
    hit = set(lines.get(str(m.line), []))
    imported = set(cov["import"].get(path, []))
    if m.line in imported and not hit:
        # Executed at import (a module constant, a default argument): every unit that runs this file.
        hit = {u for us in lines.values() for u in us}
    return sorted(hit)


def run(sample: int | None, seed: int, timeout_factor: float, files: list[str] | None,
        rerun_survivors: bool = False, extra: list[str] | None = None) -> None:
    """Run the mutants not run yet (of ``files``; a random ``sample``); ``extra`` test nodes join every
    mutant's oracle (tests written after the baseline, without recording a new one)."""
    cov = json.loads((OUT / "coverage.json").read_text())
    units, timings = cov["units"], cov["timings"]
    mutants = all_mutants()
    if files:
        mutants = [m for m in mutants if any(m.file.startswith(f) for f in files)]
    if sample and not rerun_survivors:
        mutants = random.Random(seed).sample(mutants, min(sample, len(mutants)))
    results_path = OUT / "results.jsonl"
    done = set()
    if results_path.exists():
        recs = [json.loads(line) for line in results_path.read_text().splitlines() if line.strip()]
        if rerun_survivors:
            # After new checks or tests (a new baseline, or --oracle): run the survivors again (of the
            # selected files), keep the rest; only the survivors, whatever the sample.
            again = {m.id for m in mutants}
            rerun = {r["id"] for r in recs if r["status"] in ("survived", "no-coverage", "stale") and r["id"] in again}
            mutants = [m for m in mutants if m.id in rerun]
            keep = [r for r in recs if r["id"] not in rerun]
            results_path.write_text("".join(json.dumps(r) + "\n" for r in keep))
            recs = keep
        done = {r["id"] for r in recs}
    _preload()
    t_all = time.perf_counter()
    todo = [m for m in mutants if m.id not in done]
    print(f"{len(todo)} mutants to run ({len(done)} done before)", flush=True)
    with results_path.open("a") as out:
        for n, m in enumerate(todo):
            picked = _units_for(m, cov)
            names = [units[u] for u in picked if timings[units[u]]["status"] == "passed"]
            # Cheapest units first: the first failure ends the run.
            names.sort(key=lambda u: (not u.startswith("verify::"), timings[u]["seconds"]))
            names += [u for u in (extra or []) if u not in names]
            rec = {"id": m.id, "file": m.file, "line": m.line, "op": m.op, "units": len(names)}
            if not names:
                rec.update(status="no-coverage", seconds=0.0)
            else:
                # Baseline times were measured under tracing (2-3 times slower than plain runs).
                budget = min(MAX_BUDGET, 30.0 + timeout_factor * sum(timings.get(u, {"seconds": 10.0})["seconds"]
                                                                     for u in names))
                budgets = {u: 20.0 + 3.0 * timings[u]["seconds"] for u in names if u.startswith("verify::")}
                try:
                    code = _mutated(m)
                except RuntimeError as exc:  # the file was edited after the listing: rerun baseline
                    rec.update(status="stale", detail=str(exc), seconds=0.0)
                    out.write(json.dumps(rec) + "\n")
                    continue
                name = module_name(m.file)

                def fn(code=code, name=name, names=names, path=ROOT / m.file, budgets=budgets):
                    sys.meta_path.insert(0, _MutantFinder(name, path, code))
                    return _run_units(names, budgets=budgets)

                status, detail, seconds = _fork(fn, budget)
                killed = status in ("failed", "timeout", "error")
                rec.update(status="killed" if killed else "survived", how=status, by=detail, seconds=round(seconds, 2))
            out.write(json.dumps(rec) + "\n")
            out.flush()
            if n % 10 == 0:
                print(f"  {n + 1}/{len(todo)} {rec['status']:11s} {m.id} ({time.perf_counter() - t_all:.0f} s)",
                      flush=True)
    print(f"ran {len(todo)} mutants in {time.perf_counter() - t_all:.0f} s", flush=True)


# ----------------------------------------------------------------- the report


def _equivalent() -> dict[str, str]:
    """Mutant id -> why it is equivalent (tools/mutation_equivalent.txt: '<id>  # <reason>')."""
    out = {}
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                mid, _, why = line.partition("  # ")
                out[mid.strip()] = why.strip()
    return out


def report() -> str:
    recs = [json.loads(line) for line in (OUT / "results.jsonl").read_text().splitlines() if line.strip()]
    recs = list({r["id"]: r for r in recs}.values())  # a mutant run again (--rerun-survivors): its last run
    eq = _equivalent()
    by_status: dict = {}
    for r in recs:
        by_status.setdefault(r["status"], []).append(r)
    survivors = [r for r in recs if r["status"] in ("survived", "no-coverage")]
    equivalent = [r for r in survivors if r["id"] in eq]
    live = [r for r in survivors if r["id"] not in eq]
    killed = len(by_status.get("killed", []))
    stale = len(by_status.get("stale", []))  # files edited after the baseline: not judged
    non_equivalent = len(recs) - len(equivalent) - stale
    score = killed / non_equivalent if non_equivalent else 1.0
    lines = [f"mutants run: {len(recs)}; killed {killed}; survived {len(by_status.get('survived', []))}; "
             f"not covered {len(by_status.get('no-coverage', []))}; equivalent (listed) {len(equivalent)}; "
             f"stale {stale}",
             f"score: {killed}/{non_equivalent} = {100 * score:.1f}% of non-equivalent mutants killed",
             f"total child time: {sum(r.get('seconds', 0) for r in recs):.0f} s"]
    by_file: dict = {}
    for r in recs:
        f = by_file.setdefault(r["file"], [0, 0])
        f[0] += r["status"] == "killed"
        f[1] += 1
    lines.append("per file (killed/run): " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(by_file.items())))
    lines.append("surviving, not listed as equivalent:")
    for r in sorted(live, key=lambda r: r["id"]):
        src = (ROOT / r["file"]).read_text().splitlines()[r["line"] - 1].strip()
        lines.append(f"  {r['id']} [{r['status']}]  {src}")
    lines.append("equivalent (tools/mutation_equivalent.txt):")
    lines += [f"  {r['id']}  # {eq[r['id']]}" for r in sorted(equivalent, key=lambda r: r["id"])]
    text = "\n".join(lines)
    (OUT / "report.txt").write_text(text + "\n")
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="count the mutants per file")
    b = sub.add_parser("baseline", help="record which unit runs which line")
    b.add_argument("--jobs", type=int, default=1)
    b.add_argument("--tests", nargs="*", help="test files of the oracle (default: the fast tests)")
    r = sub.add_parser("run", help="run mutants")
    r.add_argument("--sample", type=int, default=None, help="a random sample of this many mutants")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--timeout-factor", type=float, default=3.0)
    r.add_argument("--files", nargs="*", help="only mutants of files under these paths (numerics/kl.py, models/)")
    r.add_argument("--oracle", nargs="*", default=None, metavar="NODE",
                   help="test nodes added to every mutant's oracle (tests newer than the baseline)")
    r.add_argument("--rerun-survivors", action="store_true", help="run the surviving mutants again (after new "
                                                                  "checks or tests and a new baseline)")
    sub.add_parser("report", help="score and survivors")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        counts: dict = {}
        for m in all_mutants():
            counts[m.file] = counts.get(m.file, 0) + 1
        for k, v in counts.items():
            print(f"{v:5d} {k}")
        print(f"{sum(counts.values()):5d} total")
    elif args.cmd == "baseline":
        baseline(args.jobs, args.tests)
    elif args.cmd == "run":
        run(args.sample, args.seed, args.timeout_factor, args.files, args.rerun_survivors, args.oracle)
    else:
        print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
