"""Lazy names of a package (PEP 562): ``from genverify.models import NICE`` imports torch only then.

:func:`lazy_exports` builds the module ``__getattr__`` of a package whose names live in its
submodules and are imported on first access, so importing the package (the CLI's ``--help``,
the pytest plugin) stays light. Imports nothing of genverify.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that returns ``name`` from the submodule ``package.exports[name]``.

    >>> getattr_ = lazy_exports("json", {"JSONDecoder": "decoder"})
    >>> getattr_("JSONDecoder").__name__
    'JSONDecoder'
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
