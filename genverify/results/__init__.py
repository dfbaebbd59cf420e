"""The registrations: one module per topic, in the homework's order.

Each module declares ``RESULTS`` (a list of :class:`~genverify.core.Result`)
and, where the topic has one, ``EXPERIMENTS`` (and :mod:`.questions` the
homework's ``QUESTIONS``); it registers nothing itself.
:mod:`genverify.registry` reads :data:`MODULES` in this order. A new topic
is a new module here and one line in :data:`MODULES` (the test suite fails
on a module that is not listed).
"""

from __future__ import annotations

from genverify.results import densities, em, kl, kl_fit, leaky_relu, nice_vae, questions

#: The topic modules, in the order of the homework's questions.
MODULES = (
    questions,   # the homework's question texts (QUESTIONS), the report's sections
    kl,          # 1a: KL of uniforms; 1c: the Gaussian KLs of the ELBO
    kl_fit,      # 1b, 1c: forward and reverse KL fits, the ELBO's gap; experiment kl-fits
    em,          # 2: EM for a mixture of Bernoullis; experiment em (3)
    nice_vae,    # 4: experiment nice-vae
    densities,   # 5: change of variables and geometry
    leaky_relu,  # 6: the Leaky-ReLU flow's inverse and Jacobian
)
