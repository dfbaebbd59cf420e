"""Figures for the experiments: matplotlib configured in one place.

Figures are built with matplotlib's object API (:class:`matplotlib.figure.Figure`),
which needs neither pyplot nor a backend: nothing in genverify selects a
backend, so a user's interactive session keeps theirs, and a headless machine
needs no display. Files are written as ``<stem>.pdf`` and ``<stem>.png``,
atomically (:func:`genverify.io.save_figure`).

matplotlib is imported when the first figure is made, not with this module: the registry
imports modules that draw (``kl_fits``) only to read what they declare.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from genverify.io import save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["blank_figure", "new_figure", "save"]


def blank_figure(figsize: tuple[float, float] = (6.4, 4.8)) -> Figure:
    """A figure without axes (for grids laid out with ``fig.add_gridspec``)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (6.4, 4.8), **subplot_kw):
    """A figure and its axes (``Figure.subplots``), without pyplot's global state."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, **subplot_kw)
    return fig, axes


def save(fig: Figure, stem: str | os.PathLike, dpi: int = 150) -> list[Path]:
    """Write ``stem.pdf`` and ``stem.png`` atomically; returns the paths."""
    return save_figure(fig, stem, dpi=dpi)

