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
