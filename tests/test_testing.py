"""genverify.testing.assert_implements and its strategies (issue 17): a user's function against a verified
result, with the smallest counterexample, expected and got values and the formula when it is wrong; bad
input named; the pytest plugin cheap and working."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given

from genverify.core import ParameterError, UnknownResultError
from genverify.testing import assert_implements, points, strategies


def lognormal(z, mu, sigma):
    return np.exp(-((np.log(z) - mu) ** 2) / (2 * sigma**2)) / (z * sigma * np.sqrt(2 * np.pi))


def writeup_5b(z, mu, sigma):
    """The write-up's final 5b: 1/z moved under the square root."""
    return 1 / (sigma * np.sqrt(2 * np.pi * z)) * np.exp(-((np.log(z) - mu) ** 2) / (2 * sigma**2))


def failure(*args, **kw) -> str:
    with pytest.raises(AssertionError) as exc:
        assert_implements(*args, **kw)
    return str(exc.value)


# ----------------------------------------------------------------- right implementations pass


def test_a_right_numpy_function_passes():
    assert_implements("lognormal-pdf", lognormal)


def test_a_scalar_only_function_passes():
    def scalar(z, mu, sigma):
        return math.exp(-((math.log(z) - mu) ** 2) / (2 * sigma**2)) / (z * sigma * math.sqrt(2 * math.pi))

    assert_implements("lognormal-pdf", scalar)


def test_a_torch_function_with_other_names_passes():
    torch = pytest.importorskip("torch")

    def density(x, m, s):
        return torch.exp(-((torch.log(x) - m) ** 2) / (2 * s**2)) / (x * s * math.sqrt(2 * math.pi))

    assert_implements("lognormal-pdf", density, names={"x": "z", "m": "mu", "s": "sigma"})


def test_names_may_list_the_symbols_in_positional_order():
    assert_implements("lognormal-pdf", lambda a, b, c: lognormal(a, b, c), names=["z", "mu", "sigma"])


def test_a_symbol_with_a_default_may_be_left_out_or_taken():
    assert_implements("leaky-relu-inverse", lambda x: x if x > 0 else x / 0.1)  # alpha stays 1/10
    assert_implements("leaky-relu-inverse", lambda x, alpha: x if x > 0 else x / alpha)
    message = failure("leaky-relu-inverse", lambda x, alpha: x if x > 0 else x / 0.1)
    assert "alpha = " in message  # a fixed slope is wrong once alpha varies


def test_integer_symbols_arrive_as_integers_and_vector_results_compare_elementwise():
    seen = set()

    def log_abs_det(n_neg, alpha):
        seen.add(type(n_neg))
        return n_neg * np.log(alpha)

    assert_implements("leaky-relu-log-abs-det", log_abs_det, vectorized=False)
    assert seen == {int}

    def moments(w, mu1, sigma1, mu2, sigma2):
        mean = w * mu1 + (1 - w) * mu2
        return mean, w * (sigma1**2 + mu1**2) + (1 - w) * (sigma2**2 + mu2**2) - mean**2

    assert_implements("kl-forward-fit", moments, rtol=1e-6, atol=1e-9, vectorized=False)


def test_the_reference_infinity_is_the_only_infinity_that_agrees():
    def kl(a, b, c, d):
        return np.log((d - c) / (b - a)) if c <= a and b <= d else np.inf

    assert_implements("kl-uniform", kl)
    assert_implements("kl-uniform-reverse", lambda: math.inf)
    message = failure("kl-uniform", lambda a, b, c, d: np.log((d - c) / (b - a)) if c <= a and b <= d else np.nan)
    assert "got:      nan" in message and "NaN never counts as agreement" in message
    assert "got:      1e+300" in failure("kl-uniform-reverse", lambda: 1e300)


# ----------------------------------------------------------------- wrong implementations fail, and say why


def test_the_writeups_5b_formula_fails_with_a_counterexample_expected_got_and_the_formula():
    message = failure("lognormal-pdf", writeup_5b)
    assert message.startswith("lognormal-pdf (question 5b): writeup_5b does not implement the verified result")
    assert "counterexample (the simplest Hypothesis found): z = " in message
    assert "expected: " in message and "got:      " in message and "relative" in message
    assert "verified formula: sqrt(2)*exp(-(mu - log(z))**2/(2*sigma**2))/(2*sqrt(pi)*sigma*z)" in message
    assert "genverify.numerics.lognormal_pdf" in message


def test_the_counterexample_is_shrunk_and_reproducible():
    first, again = failure("lognormal-pdf", writeup_5b), failure("lognormal-pdf", writeup_5b)
    assert first == again
    line = next(x for x in first.splitlines() if "counterexample" in x)
    assert "mu = 0.0, sigma = 1.0" in line  # the simple values; only z must move away from 1
    assert failure("lognormal-pdf", writeup_5b, seed=5).count("counterexample") == 1


def test_nan_never_counts_as_agreement():
    message = failure("lognormal-pdf", lambda z, mu, sigma: lognormal(z, mu, sigma) if z < 100 else math.nan)
    assert "got:      nan" in message and "NaN never counts as agreement" in message


def test_a_function_that_raises_fails_with_the_point_that_made_it_raise():
    def fragile(z, mu, sigma):
        if z > 500:
            raise ZeroDivisionError("boom")
        return lognormal(z, mu, sigma)

    with pytest.raises(AssertionError) as exc:
        assert_implements("lognormal-pdf", fragile)
    message = str(exc.value)
    assert "fragile raised ZeroDivisionError: boom" in message and "counterexample" in message
    z = float(message.split("z = ")[1].split(",")[0])
    assert z > 500
    assert isinstance(exc.value.__cause__, ZeroDivisionError)


def test_a_function_returning_no_number_or_the_wrong_shape_fails():
    assert "returned NoneType None, not a number" in failure("lognormal-pdf", lambda z, mu, sigma: None)
    assert "returned shape (2,), expected shape ()" in failure("lognormal-pdf", lambda z, mu, sigma: [1.0, 2.0])


def test_a_function_wrong_only_on_arrays_is_caught_by_the_vectorised_call():
    def sorts_arrays(z, mu, sigma):
        out = lognormal(z, mu, sigma)
        return np.sort(out) if np.ndim(out) else out

    message = failure("lognormal-pdf", sorts_arrays)
    assert "vectorised call" in message and "wrong only when given arrays" in message
    assert_implements("lognormal-pdf", sorts_arrays, vectorized=False)


def test_tolerances_are_the_users_to_set():
    def half(z, mu, sigma):
        return np.float16(lognormal(z, mu, sigma))

    assert "rtol = 1e-07" in failure("lognormal-pdf", half)
    assert_implements("lognormal-pdf", half, rtol=1e-3, atol=1e-7)


# ----------------------------------------------------------------- bad input


def test_an_unknown_result_id_names_the_closest_ids():
    with pytest.raises(UnknownResultError, match="Did you mean: lognormal-pdf"):
        assert_implements("lognormal-pfd", lognormal)


def test_a_signature_that_does_not_match_names_the_missing_parameters():
    with pytest.raises(ParameterError) as exc:
        assert_implements("lognormal-pdf", lambda x, m, s: 0.0)
    message = str(exc.value)
    assert message.startswith("fn <lambda>(x, m, s) cannot be called with the symbols of lognormal-pdf")
    assert "no parameter for z, mu, sigma" in message
    assert "names={'m': 'mu', 's': 'sigma', 'x': 'z'}" in message
    with pytest.raises(ParameterError, match="no parameter for sigma. It must take an argument"):
        assert_implements("lognormal-pdf", lambda z, mu: 0.0)
    with pytest.raises(ParameterError, match=r"names maps 's' to 'sgma', .* \(did you mean 'sigma'\?\)"):
        assert_implements("lognormal-pdf", lambda z, mu, s: 0.0, names={"s": "sgma"})
    with pytest.raises(ParameterError, match="names maps 'q', not a parameter of"):
        assert_implements("lognormal-pdf", lognormal, names={"q": "mu"})


def test_indexed_results_point_to_the_em_helpers():
    with pytest.raises(ParameterError, match="assert_e_step"):
        assert_implements("em-responsibility", lognormal)


def test_bad_settings_are_named():
    with pytest.raises(ParameterError, match="rtol must be a finite number"):
        assert_implements("lognormal-pdf", lognormal, rtol=-1)
    with pytest.raises(ParameterError, match="backend must be one of"):
        assert_implements("lognormal-pdf", lognormal, backend="jax")


# ----------------------------------------------------------------- strategies


@given(**strategies("lognormal-pdf"))
def test_strategies_draw_inside_the_sampling_bounds(z, mu, sigma):
    assert 1e-3 <= z <= 1e3 and -3 <= mu <= 3 and 0.05 <= sigma <= 10


@given(points("kl-uniform"))
def test_points_respect_the_joint_constraint(point):
    assert point["a"] < point["b"] and point["c"] < point["d"]
    assert all(-3 <= v <= 3 for v in point.values())


@given(points("leaky-relu-log-abs-det", fixed={"alpha": 0.1}))
def test_points_hold_fixed_symbols_and_draw_integers(point):
    assert point["alpha"] == 0.1 and isinstance(point["n_neg"], int) and 0 <= point["n_neg"] <= 8


# ----------------------------------------------------------------- the pytest plugin


PLUGIN_TEST = '''
import pytest

def test_rng_is_seeded(rng):
    print("first draw", rng.integers(1 << 30))

@pytest.mark.parametrize("genverify_result", ["lognormal-pdf"], indirect=True)
def test_indirect(genverify_result):
    assert genverify_result.question == "5b"

@pytest.mark.genverify_result("kl-vae")
def test_marker(genverify_result):
    assert genverify_result.id == "kl-vae"

def test_factory(genverify_result):
    assert genverify_result("lognormal-pdf").id == "lognormal-pdf"

def test_seed_reaches_the_checks():
    from genverify.testing._calls import default_seed
    print("seed", default_seed())
'''


def plugin_args(cwd) -> list[str]:
    """Nothing when pytest loads the plugin by its pytest11 entry point (genverify installed), else ``-p``.

    Asked from ``cwd`` in a new process: the checkout's root holds a stale ``genverify.egg-info``
    that importlib.metadata would read instead of the installed metadata.
    """
    code = ("from importlib.metadata import entry_points; "
            "print(any(ep.value == 'genverify.testing.plugin' for ep in entry_points(group='pytest11')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=True)
    return [] if out.stdout.strip() == "True" else ["-p", "genverify.testing.plugin"]


def run_pytest(tmp_path, *args):
    (tmp_path / "test_user.py").write_text(textwrap.dedent(PLUGIN_TEST))
    return subprocess.run([sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider",
                           *plugin_args(tmp_path), str(tmp_path / "test_user.py"), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)


def test_the_plugin_is_declared_as_a_pytest11_entry_point():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"genverify": "genverify.testing.plugin"}
    assert any(dep.startswith("hypothesis") for dep in project["dependencies"])


def test_the_plugin_gives_fixtures_and_a_seed_option(tmp_path):
    out = run_pytest(tmp_path, "--genverify-seed", "7")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "genverify seed: 7" in out.stdout and "seed 7" in out.stdout and "5 passed" in out.stdout
    again, other = run_pytest(tmp_path, "--genverify-seed", "7"), run_pytest(tmp_path, "--genverify-seed", "8")
    draw = lambda o: o.stdout.split("first draw ")[1].split()[0]
    assert draw(out) == draw(again) != draw(other)


def test_loading_the_plugin_imports_nothing_heavy():
    code = ("import sys; import genverify.testing.plugin; "
            "print(sorted(m for m in ('numpy', 'sympy', 'torch', 'hypothesis', 'genverify.registry') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module_name", ["genverify.testing.implements", "genverify.testing.em",
                                         "genverify.testing.flows", "genverify.registry"])
def test_docstring_examples_hold(module_name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module_name}"
