"""Claims: parse a student's formula, check it against the registry, audit a whole write-up.

* :mod:`genverify.claims.parse`: the safe parser (plain text and LaTeX; nothing reaches ``eval``);
* :mod:`genverify.claims.check`: :func:`check` (equivalence, counterexamples) and the write-up audit;
* :mod:`genverify.claims.verdict`: :class:`Verdict` and the typed errata row;
* ``homework2.yaml``: the homework write-up's answers, transcribed.
"""
