"""Claims: parse a student's formula, check it against the registry, audit a whole write-up.

From the text to the verdict:

* :mod:`genverify.claims.parse`: the public front of the safe parser
  (:func:`~genverify.claims.parse.parse_claim`, ``parse_condition``,
  ``is_latex``; plain text and LaTeX; nothing reaches ``eval``), built from
  :mod:`~genverify.claims.lexer` (normalisation, whitelist tokenizer, safety
  limits), :mod:`~genverify.claims.grammar` (the recursive descent both
  notations share), :mod:`~genverify.claims.latex_grammar` and
  :mod:`~genverify.claims.python_grammar` (each notation's own rules);
* :mod:`genverify.claims.errors`: why a claim cannot be checked (``ClaimError``
  and its kinds, all ``ValueError``);
* :mod:`genverify.claims.checker`: :func:`~genverify.claims.checker.check`
  (``genverify.check``): symbolic equivalence, else
  :mod:`~genverify.claims.numeric` (40-digit comparison at random points, the
  counterexample), and a density's integral; the answer tests of
  :mod:`~genverify.claims.answer_tests` (up to a constant, proportional,
  numeric within a tolerance, a decimal to its written precision);
* :mod:`genverify.claims.diagnose`: what is wrong with a wrong claim (a
  factor, a term, a sign, one term, a region, normalisation, renamed symbols);
* :mod:`genverify.claims.steps`: the step-by-step audit of a derivation (the
  first line that does not follow from the one it names, and how);
* :mod:`genverify.claims.isolation`: the check in a forked child with a hard
  time limit, and the SIGALRM budget of its symbolic step;
* :mod:`genverify.claims.writeups`: claims files (``ClaimEntry``, ``load_claims``,
  ``read_claims`` that keeps the good entries of a file with bad ones);
  ``homework2.yaml`` is the homework write-up's answers and derivations, transcribed;
* :mod:`genverify.claims.template`: the claims-file skeleton of every result;
* :mod:`genverify.claims.errata`: the audit of a write-up (``audit_entry``,
  ``audit``, ``audit_file``), of many (``audit_files``, ``grading_rows``) and
  the report's errata experiment;
* :mod:`genverify.claims.verdict`: :class:`~genverify.claims.verdict.Verdict`,
  the typed errata row (with its step rows) and :class:`~genverify.claims.verdict.Audit`.
"""
