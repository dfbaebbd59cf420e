"""Figures for the experiments: matplotlib configured in one place.

Figures are built with matplotlib's object API (:class:`matplotlib.figure.Figure`),
which needs neither pyplot nor a backend: nothing in genverify selects a
backend, so a user's interactive session keeps theirs, and a headless machine
needs no display. Files are written as ``<stem>.pdf`` and ``<stem>.png``,
atomically (:func:`genverify.io.save_figure`).
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from genverify.io import save_figure

__all__ = ["blank_figure", "new_figure", "save"]


def blank_figure(figsize: tuple[float, float] = (6.4, 4.8)) -> Figure:
    """A figure without axes (for grids laid out with ``fig.add_gridspec``)."""
    return Figure(figsize=figsize)


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (6.4, 4.8), **subplot_kw):
    """A figure and its axes (``Figure.subplots``), without pyplot's global state."""
    fig = Figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, **subplot_kw)
    return fig, axes


def save(fig: Figure, stem: str | os.PathLike, dpi: int = 150) -> list[Path]:
    """Write ``stem.pdf`` and ``stem.png`` atomically; returns the paths."""
    return save_figure(fig, stem, dpi=dpi)

