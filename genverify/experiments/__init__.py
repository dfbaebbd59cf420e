"""The experiments: pipelines that run models on data and produce figures, tables and numbers.

* :mod:`genverify.experiments.kl_fits`: forward and reverse KL fits of a Gaussian (1b), the ELBO (1c);
* :mod:`genverify.experiments.em_mnist`: EM for a mixture of Bernoullis on MNIST (3);
* :mod:`genverify.experiments.nice_vae`: NICE and the VAE trained, sampled and compared with EM (4);
* :mod:`genverify.experiments.plotting`: matplotlib, configured in one place.

The registrations (:class:`~genverify.core.Experiment` entries naming each
``run``) are in :mod:`genverify.results`; the report runs them.
"""
