"""The registrations: one module per topic, in the homework's order.

Each module declares ``RESULTS`` (a list of :class:`~genverify.core.Result`)
and, where the topic has one, ``EXPERIMENTS`` (and :mod:`.questions` the
homework's ``QUESTIONS``); it registers nothing itself.
:mod:`genverify.registry` reads :data:`NAMES` in this order, and imports a
module only when something of it is needed (``genverify list`` reads the
registry's index and imports none). A new topic is a new module here and one
line in :data:`NAMES` (the test suite fails on a module that is not listed).

``MODULES`` (the modules themselves, in the same order) imports them all.
"""

from __future__ import annotations

import importlib

#: The topic modules' names (in this package), in the order of the homework's questions.
NAMES = (
    "questions",   # the homework's question texts (QUESTIONS), the report's sections
    "kl",          # 1a: KL of uniforms; 1c: the Gaussian KLs of the ELBO
    "kl_fit",      # 1b, 1c: forward and reverse KL fits, the ELBO's gap; experiment kl-fits
    "em",          # 2: EM for a mixture of Bernoullis; experiment em (3)
    "nice_vae",    # 4: experiment nice-vae
    "densities",   # 5: change of variables and geometry
    "leaky_relu",  # 6: the Leaky-ReLU flow's inverse and Jacobian
)
#: The same, as full module names.
MODULE_NAMES = tuple(f"{__name__}.{name}" for name in NAMES)


def __getattr__(name):
    # Lazy: importing one topic module (the registry does, by id) must not import them all.
    if name == "MODULES":
        return tuple(importlib.import_module(m) for m in MODULE_NAMES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
