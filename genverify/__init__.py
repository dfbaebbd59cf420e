"""genverify: symbolic-plus-numeric verification of the mathematics of generative models.

The registry of results (:mod:`genverify.registry`) is the spine: each result
has a SymPy derivation (:mod:`genverify.derivations`), a float64 function
(:mod:`genverify.numerics`), optionally a torch counterpart
(:mod:`genverify.models`), and the checks that tie them.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy: `import genverify` stays light (the CLI's --help); `genverify.check` loads the claim checker.
    if name == "check":
        from genverify.claims.checker import check

        return check
    raise AttributeError(f"module 'genverify' has no attribute {name!r}")
