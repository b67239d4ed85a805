"""micrograd_plus.data: the IDX reader, checksums, fetch (mirrors, atomic writes, resume), imports, loaders.

Downloads are tested against a local HTTP server on 127.0.0.1; the real files come from
the offline copies in ../shared/datasets (see the ``shared_datasets`` fixture).
"""

import gzip
import hashlib
import http.server
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from micrograd_plus import data, datasets
from micrograd_plus.data import DatasetError, IDXError, load_mnist, read_idx
from micrograd_plus.datasets import (
    CIFAR10,
    MNIST,
    ChecksumError,
    DataFile,
    DatasetSpec,
    DownloadError,
    fetch,
    verify_file,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch):
    """No test sees a developer's MICROGRAD_PLUS_DATA* settings."""
    monkeypatch.delenv("MICROGRAD_PLUS_DATA", raising=False)
    monkeypatch.delenv("MICROGRAD_PLUS_DATA_FROM", raising=False)


# ------------------------------------------------------------------ the IDX reader
def idx_bytes(array, code):
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize(
    "dtype,code",
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip_every_type(tmp_path, dtype, code, gz):
    array = (np.arange(24) - 5).reshape(2, 3, 4).astype(dtype)
    raw = idx_bytes(array, code)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)
    got[0, 0, 0] = 1  # writable


def test_read_idx_real_mnist(mnist_dir):
    images = read_idx(mnist_dir / "train-images-idx3-ubyte.gz")
    labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    test_labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and test_labels.shape == (10000,)
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the well-known first labels
    assert test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert images.max() == 255 and images.min() == 0


def test_read_idx_uncompressed_real_file(mnist_dir, tmp_path):
    plain = tmp_path / "t10k-images-idx3-ubyte"
    plain.write_bytes(gzip.decompress((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes()))
    np.testing.assert_array_equal(read_idx(plain), read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz"))


@pytest.fixture
def real_labels_raw(mnist_dir):
    return gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())


@pytest.mark.parametrize(
    "corrupt,message",
    [
        (lambda raw: raw[:-1], "truncated: shape (10000,) needs 10000 data bytes, found 9999"),
        (lambda raw: raw[:6], "truncated IDX header"),
        (lambda raw: raw[:2], "too short for an IDX header"),
        (lambda raw: b"", "too short for an IDX header"),
        (lambda raw: raw + b"\x00\x00", "2 unexpected trailing bytes"),
        (lambda raw: b"\x01" + raw[1:], "bad IDX magic number 01000801"),
        (lambda raw: raw[:2] + b"\x07" + raw[3:], "unknown IDX data type code 0x07"),
        (lambda raw: raw[:3] + b"\x00" + raw[4:], "0 dimensions"),
        (lambda raw: raw[:3] + b"\x02" + raw[4:], "truncated: shape (10000, 117571840) needs 1175718400000 data bytes"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_rejects_corrupt_copies(tmp_path, real_labels_raw, corrupt, message, gz):
    path = tmp_path / ("bad-labels.gz" if gz else "bad-labels")
    raw = corrupt(real_labels_raw)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(IDXError) as info:
        read_idx(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_read_idx_truncated_gzip_stream(tmp_path, mnist_dir):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes()[:100000])
    with pytest.raises(IDXError, match="corrupt or truncated gzip stream") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_corrupt_gzip_stream(tmp_path, mnist_dir):
    raw = bytearray((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    raw[-6] ^= 0xFF  # a flipped bit in the CRC / length trailer
    raw[200:210] = b"\x00" * 10  # and garbage in the deflate stream
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(bytes(raw))
    with pytest.raises(IDXError, match="corrupt or truncated gzip stream"):
        read_idx(path)


def test_read_idx_gz_name_without_gzip_content(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(IDXError, match="not a gzip file"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


# ------------------------------------------------------------------ checksums and stamps
def test_verify_file_stamp_skips_rehash_until_the_file_changes(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"hello")
    good = DataFile("f.bin", sha256=hashlib.sha256(b"hello").hexdigest())
    verify_file(path, good)
    assert (tmp_path / "f.bin.verified").is_file()

    calls = []
    real_digest = datasets.file_digest
    monkeypatch.setattr(datasets, "file_digest", lambda *a: calls.append(a) or real_digest(*a))
    verify_file(path, good)
    assert calls == []  # trusted the stamp

    path.write_bytes(b"jello")  # same size, new mtime and content
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(ChecksumError) as info:
        verify_file(path, good)
    assert len(calls) == 1
    err = info.value
    assert err.expected == good.sha256 and err.actual == hashlib.sha256(b"jello").hexdigest()
    assert str(path) in str(err) and err.expected in str(err) and err.actual in str(err)
    assert not (tmp_path / "f.bin.verified").exists()


def test_stamp_for_another_checksum_is_not_trusted(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"hello")
    verify_file(path, DataFile("f.bin", sha256=hashlib.sha256(b"hello").hexdigest()))
    with pytest.raises(ChecksumError):
        verify_file(path, DataFile("f.bin", sha256="0" * 64))


def test_md5_checksums(tmp_path):
    path = tmp_path / "m.bin"
    path.write_bytes(b"abc")
    verify_file(path, DataFile("m.bin", md5="900150983cd24fb0d6963f7d28e17f72"))
    with pytest.raises(ChecksumError, match="expected md5 ffff"):
        verify_file(path, DataFile("m.bin", md5="ffff"), use_stamp=False)


def test_registry_matches_the_published_checksums():
    readme = ROOT.parent / "shared" / "datasets" / "README.md"
    if not readme.is_file():
        pytest.skip("no ../shared/datasets README")
    text = readme.read_text()
    for f in MNIST.files:
        row = next((line for line in text.splitlines() if line.startswith(f"| {f.name} ")), "")
        assert f.sha256 in row, f"{f.name}: the registry's sha256 is not the published one"
    members = (ROOT.parent / "shared" / "datasets" / "cifar10" / "MD5SUMS-members").read_text().split("\n")
    published = dict(line.split()[::-1] for line in members if line.strip())
    assert {f.name: f.md5 for f in CIFAR10.files} == published


# ------------------------------------------------------------------ a local HTTP server
class Mirror:
    """A tiny HTTP server on 127.0.0.1 serving files from a dict, with failure modes per path.

    modes[path]: "good" (default), "404", "500", "truncate" (sends the full Content-Length, then
    only half the body and closes), "hang" (never answers). ``ranges`` turns Range support on.
    """

    def __init__(self, files, ranges=True):
        self.files, self.modes, self.ranges, self.requests = dict(files), {}, ranges, []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                mirror.requests.append((self.path, self.headers.get("Range")))
                mode = mirror.modes.get(name, "good")
                if mode in ("404", "500") or name not in mirror.files:
                    self.send_error(404 if mode != "500" else 500)
                    return
                if mode == "hang":
                    time.sleep(3)
                    return
                body, start = mirror.files[name], 0
                rng = self.headers.get("Range")
                if rng and mirror.ranges:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if mode == "truncate":
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def make_mirror():
    mirrors = []

    def make(files, ranges=True):
        mirrors.append(Mirror(files, ranges))
        return mirrors[-1]

    yield make
    for m in mirrors:
        m.close()


PAYLOAD = {"a.bin": bytes(range(256)) * 400, "b.bin": b"second file " * 1000}
SPEC = DatasetSpec(
    "toy", tuple(DataFile(n, sha256=hashlib.sha256(b).hexdigest()) for n, b in PAYLOAD.items()), mirrors=()
)


def corrupted(files):
    return {n: b[:-3] + b"xyz" for n, b in files.items()}


def test_fetch_downloads_and_verifies(tmp_path, make_mirror):
    good = make_mirror(PAYLOAD)
    folder = fetch(SPEC, tmp_path, mirrors=[good.url], search_local=False, progress=False)
    assert folder == tmp_path / "toy"
    for name, body in PAYLOAD.items():
        assert (folder / name).read_bytes() == body
        assert (folder / (name + ".verified")).is_file()
    assert not list(folder.glob("*.part"))
    n = len(good.requests)
    fetch(SPEC, tmp_path, mirrors=[good.url], search_local=False, progress=False)
    assert len(good.requests) == n  # complete and verified: no network at all


def test_fetch_tries_the_next_mirror(tmp_path, make_mirror):
    missing, bad, good = make_mirror({}), make_mirror(corrupted(PAYLOAD)), make_mirror(PAYLOAD)
    fetch(SPEC, tmp_path, mirrors=[missing.url, bad.url, good.url], search_local=False, progress=False)
    assert (tmp_path / "toy" / "a.bin").read_bytes() == PAYLOAD["a.bin"]
    assert [p for p, _ in missing.requests] == ["/a.bin", "/b.bin"]
    assert [p for p, _ in bad.requests] == ["/a.bin", "/b.bin"]
    assert [p for p, _ in good.requests] == ["/a.bin", "/b.bin"]


def test_checksum_mismatch_is_never_used(tmp_path, make_mirror):
    bad = make_mirror(corrupted(PAYLOAD))
    with pytest.raises(DownloadError) as info:
        fetch(SPEC, tmp_path, mirrors=[bad.url], search_local=False, progress=False)
    message = str(info.value)
    expected = SPEC.files[0].sha256
    actual = hashlib.sha256(corrupted(PAYLOAD)["a.bin"]).hexdigest()
    assert f"{bad.url}a.bin" in message and expected in message and actual in message
    assert not (tmp_path / "toy" / "a.bin").exists()
    assert not (tmp_path / "toy" / "a.bin.part").exists()  # bad bytes are not kept for resuming


def test_download_raises_checksum_error_with_both_hashes(tmp_path, make_mirror):
    bad = make_mirror(corrupted(PAYLOAD))
    with pytest.raises(ChecksumError) as info:
        datasets.download(bad.url + "a.bin", tmp_path / "a.bin", SPEC.files[0], progress=False)
    assert info.value.expected == SPEC.files[0].sha256
    assert info.value.actual == hashlib.sha256(corrupted(PAYLOAD)["a.bin"]).hexdigest()
    assert not (tmp_path / "a.bin").exists()


def test_truncated_download_leaves_no_final_file_then_resumes(tmp_path, make_mirror):
    flaky = make_mirror(PAYLOAD)
    flaky.modes["a.bin"] = "truncate"
    with pytest.raises(DownloadError, match="a.bin"):
        fetch(SPEC, tmp_path, mirrors=[flaky.url], search_local=False, progress=False)
    folder = tmp_path / "toy"
    assert not (folder / "a.bin").exists()  # a partial download never looks complete
    part = folder / "a.bin.part"
    assert part.is_file() and 0 < part.stat().st_size < len(PAYLOAD["a.bin"])
    have = part.stat().st_size

    flaky.modes.clear()
    flaky.requests.clear()
    fetch(SPEC, tmp_path, mirrors=[flaky.url], search_local=False, progress=False)
    assert (folder / "a.bin").read_bytes() == PAYLOAD["a.bin"]
    assert not part.exists()
    assert flaky.requests[0] == ("/a.bin", f"bytes={have}-")  # resumed where it stopped


def test_partial_file_restarts_clean_when_server_cannot_resume(tmp_path, make_mirror):
    no_ranges = make_mirror(PAYLOAD, ranges=False)
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "a.bin.part").write_bytes(b"garbage from an old attempt")
    fetch(SPEC, tmp_path, mirrors=[no_ranges.url], search_local=False, progress=False)
    assert (folder / "a.bin").read_bytes() == PAYLOAD["a.bin"]
    assert no_ranges.requests[0][1] is not None  # it asked to resume, got 200, started over


def test_bad_partial_file_gets_one_clean_restart(tmp_path, make_mirror):
    good = make_mirror(PAYLOAD)
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "a.bin.part").write_bytes(b"X" * 100)  # wrong bytes: resuming gives a bad checksum
    fetch(SPEC, tmp_path, mirrors=[good.url], search_local=False, progress=False)
    assert (folder / "a.bin").read_bytes() == PAYLOAD["a.bin"]
    assert [r for p, r in good.requests if p == "/a.bin"] == ["bytes=100-", None]


def test_part_file_longer_than_the_file_restarts(tmp_path, make_mirror):
    good = make_mirror(PAYLOAD)
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "b.bin.part").write_bytes(b"Y" * (len(PAYLOAD["b.bin"]) + 5))  # server answers 416
    fetch(SPEC, tmp_path, mirrors=[good.url], search_local=False, progress=False)
    assert (folder / "b.bin").read_bytes() == PAYLOAD["b.bin"]


def test_corrupt_file_in_the_data_folder_is_replaced(tmp_path, make_mirror, capsys):
    good = make_mirror(PAYLOAD)
    fetch(SPEC, tmp_path, mirrors=[good.url], search_local=False, progress=False)
    target = tmp_path / "toy" / "a.bin"
    target.write_bytes(b"tampered")
    fetch(SPEC, tmp_path, mirrors=[good.url], search_local=False, progress=False)
    assert target.read_bytes() == PAYLOAD["a.bin"]
    assert "checksum mismatch" in capsys.readouterr().err


def test_no_network_fails_fast_and_explains_make_data_from(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        fetch(SPEC, tmp_path, mirrors=[dead, "http://no-such-host.invalid/"], search_local=False, progress=False)
    assert time.monotonic() - start < 30  # a hang guard, not a timing: it fails within seconds
    message = str(info.value)
    assert "make data FROM=/path/to/folder" in message
    assert dead in message and "no-such-host.invalid" in message
    assert not (tmp_path / "toy" / "a.bin").exists()


def test_unresponsive_server_times_out(tmp_path, make_mirror):
    slow = make_mirror(PAYLOAD)
    slow.modes["a.bin"] = "hang"
    with pytest.raises(DownloadError, match="make data FROM="):
        fetch(SPEC, tmp_path, mirrors=[slow.url], search_local=False, progress=False, timeout=0.3)


def test_cli_fetch_without_network_exits_1_with_the_hint(tmp_path, monkeypatch, capsys):
    spec = DatasetSpec("mnist", MNIST.files, mirrors=("http://no-such-host.invalid/",))
    monkeypatch.setitem(datasets.DATASETS, "mnist", spec)
    monkeypatch.setattr(datasets, "local_copies", lambda: [])
    assert data._main(["fetch", "mnist", "--root", str(tmp_path)]) == 1
    assert "make data FROM=" in capsys.readouterr().err


def test_progress_bar_and_plain_message(tmp_path, make_mirror, monkeypatch, capsys):
    good = make_mirror(PAYLOAD)
    datasets.download(good.url + "a.bin", tmp_path / "a.bin", SPEC.files[0], progress=True)  # tqdm
    monkeypatch.setitem(sys.modules, "tqdm", None)  # tqdm missing: a plain message
    datasets.download(good.url + "b.bin", tmp_path / "b.bin", SPEC.files[1], progress=True)
    assert "downloading b.bin" in capsys.readouterr().err
    assert (tmp_path / "b.bin").read_bytes() == PAYLOAD["b.bin"]


# ------------------------------------------------------------------ imports (make data FROM=...)
def test_from_dir_imports_verified_copies(tmp_path, shared_datasets):
    folder = fetch("mnist", tmp_path, from_dir=shared_datasets / "mnist")
    for f in MNIST.files:
        assert (folder / f.name).read_bytes() == (shared_datasets / "mnist" / f.name).read_bytes()
        assert (folder / (f.name + ".verified")).is_file()
        assert (folder / f.name).stat().st_mode & 0o777 == 0o644
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_from_dir_accepts_the_parent_folder_and_links(tmp_path, shared_datasets):
    src = tmp_path / "downloads"
    shutil.copytree(shared_datasets / "mnist", src / "mnist")
    folder = fetch("mnist", tmp_path / "root", from_dir=src, link=True)
    for f in MNIST.files:
        assert os.path.samefile(folder / f.name, src / "mnist" / f.name)  # hard links


def test_from_dir_rejects_a_corrupt_file(tmp_path, shared_datasets):
    src = tmp_path / "downloads"
    shutil.copytree(shared_datasets / "mnist", src)
    bad = src / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-10])
    with pytest.raises(ChecksumError) as info:
        fetch("mnist", tmp_path / "root", from_dir=src)
    err = info.value
    assert str(bad) in str(err) and err.expected == MNIST.files[3].sha256
    assert err.actual == hashlib.sha256(bad.read_bytes()).hexdigest() and err.actual in str(err)
    assert not (tmp_path / "root" / "mnist" / bad.name).exists()
    assert not [p for p in (tmp_path / "root" / "mnist").iterdir() if p.name.startswith(".")]


def test_from_dir_missing_files(tmp_path, shared_datasets):
    src = tmp_path / "downloads"
    src.mkdir()
    shutil.copy(shared_datasets / "mnist" / "t10k-labels-idx1-ubyte.gz", src)
    with pytest.raises(DatasetError, match="does not contain t10k-images-idx3-ubyte.gz"):
        fetch("mnist", tmp_path / "root", from_dir=src)
    with pytest.raises(DatasetError, match="no such folder"):
        fetch("mnist", tmp_path / "root", from_dir=tmp_path / "nowhere")


def test_make_data_from_command(tmp_path, shared_datasets):
    """The exact command `make data FROM=...` runs."""
    env = {**os.environ, "MICROGRAD_PLUS_DATA": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "micrograd_plus.data", "fetch", "mnist", "--from", str(shared_datasets / "mnist")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert f"mnist: 4 files verified in {tmp_path / 'mnist'}" in out.stdout
    assert data._main(["verify", "mnist", "--root", str(tmp_path)]) == 0
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"bad")
    assert data._main(["verify", "mnist", "--root", str(tmp_path)]) == 1


def test_local_copies_are_used_before_the_network(tmp_path, shared_datasets, monkeypatch):
    monkeypatch.setenv("MICROGRAD_PLUS_DATA_FROM", str(shared_datasets))
    assert shared_datasets in datasets.local_copies()
    spec = DatasetSpec("mnist", MNIST.files, mirrors=("http://no-such-host.invalid/",))
    folder = fetch(spec, tmp_path)  # would fail if it went to the network
    assert all((folder / f.name).is_file() for f in MNIST.files)


def test_a_corrupt_local_copy_is_skipped_for_the_network(tmp_path, make_mirror, monkeypatch, capsys):
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.bin").write_bytes(b"not the right bytes")
    monkeypatch.setenv("MICROGRAD_PLUS_DATA_FROM", str(local))
    good = make_mirror(PAYLOAD)
    folder = fetch(SPEC, tmp_path / "root", mirrors=[good.url], progress=False)
    assert (folder / "a.bin").read_bytes() == PAYLOAD["a.bin"]
    assert "checksum mismatch" in capsys.readouterr().err
    assert [p for p, _ in good.requests] == ["/a.bin", "/b.bin"]


def test_data_root(monkeypatch, tmp_path):
    assert datasets.data_root(tmp_path) == tmp_path
    monkeypatch.setenv("MICROGRAD_PLUS_DATA", str(tmp_path / "env"))
    assert datasets.data_root() == tmp_path / "env"
    monkeypatch.delenv("MICROGRAD_PLUS_DATA")
    assert datasets.data_root() == ROOT / "data"  # in the course repository: data/ (git-ignored)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        fetch("imagenet", tmp_path)


# ------------------------------------------------------------------ loaders
def test_load_mnist(mnist_root):
    (X_train, y_train), (X_test, y_test) = load_mnist(mnist_root)
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    raw = read_idx(mnist_root / "mnist" / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(X_test[7], raw[7].reshape(-1) / np.float32(255))
    assert y_test[:3].tolist() == [7, 2, 1]

    (Xs, ys), _ = load_mnist(mnist_root, flatten=False)
    assert Xs.shape == (60000, 28, 28)
    np.testing.assert_array_equal(Xs.reshape(60000, -1), X_train)


def test_load_mnist_validation_split(mnist_root):
    (X_tr, y_tr), (X_val, y_val), (X_te, y_te) = load_mnist(mnist_root, validation_size=5000, seed=3)
    assert len(X_tr) == 55000 and len(X_val) == 5000 and len(X_te) == 10000
    (X_all, y_all), _ = load_mnist(mnist_root)
    # disjoint, and together exactly the training set
    together = np.concatenate([X_tr, X_val])
    assert np.array_equal(np.sort(together.sum(1)), np.sort(X_all.sum(1)))
    assert np.array_equal(np.bincount(np.concatenate([y_tr, y_val])), np.bincount(y_all))
    (_, y_tr_again), _, _ = load_mnist(mnist_root, validation_size=5000, seed=3)
    assert np.array_equal(y_tr, y_tr_again)  # seeded
    (_, _), (_, y_val3), _ = load_mnist(mnist_root, validation_size=5000, seed=4)
    assert not np.array_equal(y_val, y_val3)
    with pytest.raises(ValueError, match="validation_size"):
        load_mnist(mnist_root, validation_size=60000)


def test_load_mnist_without_fetching(tmp_path):
    with pytest.raises(DatasetError, match="make data"):
        load_mnist(tmp_path, fetch_missing=False)


def test_load_mnist_rejects_a_file_corrupted_after_verification(mnist_root, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(mnist_root, root)
    path = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))  # same size, one byte changed
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz"):
        load_mnist(root, fetch_missing=False)


# ------------------------------------------------------------------ CIFAR-10
def tiny_cifar_archive(path, batches, prefix="cifar-10-batches-bin/"):
    with tarfile.open(path, "w:gz") as tar:
        for name, body in batches.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))


def toy_cifar_spec(batches):
    return DatasetSpec(
        "cifar10",
        tuple(DataFile(n, md5=hashlib.md5(b).hexdigest()) for n, b in batches.items()),
        mirrors=(),
        archive=CIFAR10.archive,
        archive_dir=CIFAR10.archive_dir,
    )


def cifar_records(n, seed):
    rng = np.random.default_rng(seed)
    records = rng.integers(0, 256, size=(n, 3073), dtype=np.uint8)
    records[:, 0] = rng.integers(0, 10, size=n)
    return records.tobytes()


def test_cifar_members_verified_one_by_one(tmp_path):
    batches = {"data_batch_1.bin": cifar_records(3, 0), "test_batch.bin": cifar_records(2, 1)}
    spec = toy_cifar_spec(batches)
    src = tmp_path / "src"
    src.mkdir()
    tiny_cifar_archive(src / "cifar-10-binary.tar.gz", batches)
    folder = fetch(spec, tmp_path / "root", from_dir=src)
    for name, body in batches.items():
        assert (folder / name).read_bytes() == body

    # one corrupt member: the error names the archive member and both hashes
    bad = dict(batches, **{"test_batch.bin": cifar_records(2, 9)})
    tiny_cifar_archive(src / "cifar-10-binary.tar.gz", bad)
    with pytest.raises(ChecksumError) as info:
        fetch(spec, tmp_path / "root2", from_dir=src)
    assert "cifar-10-binary.tar.gz:cifar-10-batches-bin/test_batch.bin" in str(info.value)
    assert info.value.expected == hashlib.md5(batches["test_batch.bin"]).hexdigest()
    assert not (tmp_path / "root2" / "cifar10" / "test_batch.bin").exists()

    # a member missing from the archive, and a truncated archive
    tiny_cifar_archive(src / "cifar-10-binary.tar.gz", {"data_batch_1.bin": batches["data_batch_1.bin"]})
    with pytest.raises(DatasetError, match="members missing from the archive: test_batch.bin"):
        fetch(spec, tmp_path / "root3", from_dir=src)
    tiny_cifar_archive(src / "cifar-10-binary.tar.gz", batches)
    raw = (src / "cifar-10-binary.tar.gz").read_bytes()
    (src / "cifar-10-binary.tar.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated archive"):
        fetch(spec, tmp_path / "root4", from_dir=src)


def test_cifar_from_an_extracted_folder_and_loading(tmp_path, monkeypatch):
    batches = {f"data_batch_{i}.bin": cifar_records(4, i) for i in range(1, 6)}
    batches["test_batch.bin"] = cifar_records(3, 7)
    spec = toy_cifar_spec(batches)
    extracted = tmp_path / "src" / "cifar-10-batches-bin"
    extracted.mkdir(parents=True)
    for name, body in batches.items():
        (extracted / name).write_bytes(body)
    fetch(spec, tmp_path / "root", from_dir=tmp_path / "src")
    monkeypatch.setattr(data, "CIFAR10", spec)
    (X, y), (Xt, yt) = data.load_cifar10(tmp_path / "root", fetch_missing=False)
    assert X.shape == (20, 3, 32, 32) and X.dtype == np.float32 and y.dtype == np.int64
    assert Xt.shape == (3, 3, 32, 32)
    rec = np.frombuffer(batches["data_batch_2.bin"], dtype=np.uint8).reshape(-1, 3073)
    assert y[4] == rec[0, 0]
    np.testing.assert_array_equal(X[4, 1], rec[0, 1 + 1024 : 1 + 2048].reshape(32, 32) / np.float32(255))  # green plane
    (Xh, _), _ = data.load_cifar10(tmp_path / "root", layout="NHWC", fetch_missing=False)
    np.testing.assert_array_equal(Xh, X.transpose(0, 2, 3, 1))
    (_, _), (Xv, _), _ = data.load_cifar10(tmp_path / "root", validation_size=5, fetch_missing=False)
    assert Xv.shape == (5, 3, 32, 32)
    with pytest.raises(ValueError, match="layout"):
        data.load_cifar10(tmp_path / "root", layout="CHW")


def test_cifar_download_from_a_mirror(tmp_path, make_mirror):
    batches = {"data_batch_1.bin": cifar_records(3, 0), "test_batch.bin": cifar_records(2, 1)}
    spec = toy_cifar_spec(batches)
    tiny_cifar_archive(tmp_path / "archive.tar.gz", batches)
    server = make_mirror({"cifar-10-binary.tar.gz": (tmp_path / "archive.tar.gz").read_bytes()})
    folder = fetch(spec, tmp_path / "root", mirrors=[server.url], search_local=False, progress=False)
    assert (folder / "test_batch.bin").read_bytes() == batches["test_batch.bin"]
    assert not (folder / "cifar-10-binary.tar.gz").exists()  # extracted and verified, archive removed


@pytest.mark.slow
def test_real_cifar10_archive_members_match_the_registry(tmp_path, shared_datasets):
    """The shared (repacked) archive: every member verified with the registry's md5s."""
    folder = fetch("cifar10", tmp_path, from_dir=shared_datasets / "cifar10")
    for f in CIFAR10.files:
        assert (folder / f.name).stat().st_size == 30730000
        assert (folder / (f.name + ".verified")).is_file()
    (X, y), (Xt, yt) = data.load_cifar10(tmp_path, fetch_missing=False)
    assert X.shape == (50000, 3, 32, 32) and Xt.shape == (10000, 3, 32, 32)
    assert np.bincount(y).tolist() == [5000] * 10 and np.bincount(yt).tolist() == [1000] * 10
