"""Registrations for question 4: NICE and the VAE on MNIST, compared with the EM mixture.

Question 4 has no closed-form result; its answer is an experiment
(:mod:`genverify.experiments.nice_vae`). The models' own checks (invertibility,
log-determinants, the ELBO bound) are in the test suite.
"""

from __future__ import annotations

from genverify.core import Experiment

#: The experiment of question 4: 4a NICE samples, 4b VAE samples, 4c the comparison table.
EXPERIMENTS = [Experiment(
    id="nice-vae",
    title="NICE and VAE on MNIST, compared with the EM mixture",
    question="4",
    run="genverify.experiments.nice_vae:run",
)]
