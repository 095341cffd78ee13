"""MNIST loading: IDX parsing and validation, and the dataset tfds prepares from it."""

import gzip
import os
import pathlib
import shutil

import numpy as np
import pytest
from tensorflow_datasets.core.download import checksums, downloader

from mlpjax import data
from mlpjax.data import IDX_FILES, DataError, load_mnist, read_idx

_IDX_CODES = {np.dtype("u1"): 0x08, np.dtype(">i4"): 0x0C}


def write_idx(path, array):
    """`array` as an IDX file; gzipped when the name ends in .gz."""
    header = bytes([0, 0, _IDX_CODES[array.dtype], array.ndim]) + np.array(array.shape, ">u4").tobytes()
    raw = header + array.tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if str(path).endswith(".gz") else raw)


def write_tiny_mnist(idx_dir, seed, n_train=20, n_test=10):
    """Four random IDX files with the standard names; returns {split: (images_NxHxW, labels_N)}."""
    rng = np.random.default_rng(seed)
    idx_dir.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images_NxHxW = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels_N = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(idx_dir / IDX_FILES[split][0], images_NxHxW)
        write_idx(idx_dir / IDX_FILES[split][1], labels_N)
        arrays[split] = images_NxHxW, labels_N
    return arrays


def assert_matches(mnist, arrays):
    """`mnist` holds exactly the IDX `arrays`, as float32 pixels / 255 and int32 labels."""
    for split, (images_NxHxW, labels_N) in arrays.items():
        x_NxD, got_labels_N = getattr(mnist, f"x_{split}_NxD"), getattr(mnist, f"labels_{split}_N")
        assert x_NxD.dtype == np.float32 and got_labels_N.dtype == np.int32
        expected_NxD = images_NxHxW.reshape(len(images_NxHxW), 784).astype(np.float32) / np.float32(255)
        np.testing.assert_array_equal(x_NxD, expected_NxD)
        np.testing.assert_array_equal(got_labels_N, labels_N)


def prepared_configs(tfds_dir):
    """Names of the `mlpjax_mnist` configs under `tfds_dir` whose dataset tfds finished."""
    return sorted(p.parts[-3] for p in pathlib.Path(tfds_dir).glob("mlpjax_mnist/*/*/dataset_info.json"))


def fail_if_generating(self, images_path, labels_path):
    raise AssertionError("examples generated again")


@pytest.mark.parametrize("name", ["a.idx.gz", "a.idx"])
def test_read_idx_returns_the_exact_array(tmp_path, name):
    images_NxHxW = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    values_N = np.array([-7, 0, 2**31 - 1], ">i4")  # multi-byte values are big-endian in IDX
    write_idx(tmp_path / f"images_{name}", images_NxHxW)
    write_idx(tmp_path / f"values_{name}", values_N)

    got_images, got_values = read_idx(tmp_path / f"images_{name}"), read_idx(tmp_path / f"values_{name}")

    assert got_images.dtype == np.uint8 and got_images.shape == (2, 3, 4)
    np.testing.assert_array_equal(got_images, images_NxHxW)
    assert got_values.tolist() == [-7, 0, 2**31 - 1]


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_middle_byte(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _bad_magic(path):
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[:4] = b"\x12\x34\x08\x01"
    path.write_bytes(gzip.compress(bytes(raw)))


@pytest.mark.parametrize(
    "bad_file, damage, problem",
    [
        ("train-labels-idx1-ubyte.gz", os.remove, "No such file"),
        ("t10k-images-idx3-ubyte.gz", _truncate, "truncated gzip"),
        ("train-images-idx3-ubyte.gz", _flip_middle_byte, "corrupted"),
        ("t10k-labels-idx1-ubyte.gz", _bad_magic, "magic number 0x12340801"),
        # Plain (not gzipped) content under the .gz name is read too, so this hits the size check.
        ("t10k-images-idx3-ubyte.gz", lambda p: p.write_bytes(gzip.decompress(p.read_bytes())[:-1]), "needs 7856"),
        ("train-images-idx3-ubyte.gz", lambda p: write_idx(p, np.zeros((20, 28, 27), np.uint8)), "28x28"),
        ("t10k-labels-idx1-ubyte.gz", lambda p: write_idx(p, np.zeros(9, np.uint8)), "expected 10 uint8 labels"),
        ("train-labels-idx1-ubyte.gz", lambda p: write_idx(p, np.full(20, 10, np.uint8)), "label 10"),
    ],
)
def test_bad_file_raises_one_line_naming_it_before_any_tfds_work(tmp_path, bad_file, damage, problem):
    write_tiny_mnist(tmp_path / "idx", seed=0)
    damage(tmp_path / "idx" / bad_file)

    with pytest.raises(DataError) as error:
        load_mnist(str(tmp_path / "idx"), str(tmp_path / "tfds"))

    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "idx" / bad_file) in message and problem in message
    assert not (tmp_path / "tfds").exists()


def test_missing_folder_names_the_config_key(tmp_path):
    with pytest.raises(DataError, match=r"^data\.idx_dir: .*/nowhere is not a directory$"):
        load_mnist(str(tmp_path / "nowhere"), str(tmp_path / "tfds"))


def test_prepared_dataset_is_the_idx_files_exactly(small_mnist, small_idx_dir):
    # The first 10,000 training and 2,000 test images of the real files (the code path does not depend on
    # the count; preparing all 70,000 through tfds took 15 s of the suite).
    arrays = {split: tuple(read_idx(os.path.join(small_idx_dir, name)) for name in names) for split, names in IDX_FILES.items()}
    assert small_mnist.x_train_NxD.shape == (10_000, 784) and small_mnist.x_test_NxD.shape == (2_000, 784)  # conftest.SMALL_*
    assert_matches(small_mnist, arrays)
    assert small_mnist.source.startswith(f"idx:{os.path.abspath(small_idx_dir)} (sha256 ")


def test_prepared_once_per_distinct_source(tmp_path, monkeypatch, capsys):
    arrays_a = write_tiny_mnist(tmp_path / "a", seed=1)
    arrays_b = write_tiny_mnist(tmp_path / "b", seed=2)
    tfds_dir = str(tmp_path / "tfds")

    mnist_a = load_mnist(str(tmp_path / "a"), tfds_dir)
    assert capsys.readouterr().out.startswith(f"prepared MNIST from {tmp_path / 'a'} in ")
    mnist_b = load_mnist(str(tmp_path / "b"), tfds_dir)  # other bytes: its own dataset
    assert_matches(mnist_a, arrays_a)
    assert_matches(mnist_b, arrays_b)
    assert mnist_a.source != mnist_b.source and len(prepared_configs(tfds_dir)) == 2

    # Same bytes, from the same or another folder: reused, nothing generated or printed.
    monkeypatch.setattr(data.MlpjaxMnist, "_generate_examples", fail_if_generating)
    shutil.copytree(tmp_path / "a", tmp_path / "a_copy")
    capsys.readouterr()
    assert_matches(load_mnist(str(tmp_path / "a"), tfds_dir), arrays_a)
    assert_matches(load_mnist(str(tmp_path / "a_copy"), tfds_dir), arrays_a)
    assert capsys.readouterr().out == ""
    assert len(prepared_configs(tfds_dir)) == 2


def decoded_files(tfds_dir):
    return sorted(pathlib.Path(tfds_dir).glob(f"mlpjax_mnist/*/*/{data.DECODED_FILE}"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.unlink(),
        _flip_middle_byte,  # the zip's CRC-32 catches it
        _truncate,
        # Readable, but not the rows tfds recorded: another dataset's arrays under this name.
        lambda p: np.savez(
            p,
            images_train=np.zeros((3, 28, 28), np.uint8),
            labels_train=np.zeros(3, np.uint8),
            images_test=np.zeros((3, 28, 28), np.uint8),
            labels_test=np.zeros(3, np.uint8),
        ),
    ],
    ids=["missing", "flipped byte", "truncated", "other rows"],
)
def test_decoded_arrays_are_reused_and_a_bad_copy_is_decoded_again(tmp_path, monkeypatch, damage):
    arrays = write_tiny_mnist(tmp_path / "idx", seed=5)
    tfds_dir = str(tmp_path / "tfds")
    assert_matches(load_mnist(str(tmp_path / "idx"), tfds_dir), arrays)  # prepared, decoded by tfds, saved
    [decoded] = decoded_files(tfds_dir)

    # Later reads take the saved arrays, not tfds's decoding.
    read_tfds = data._read_tfds
    monkeypatch.setattr(data, "_read_tfds", lambda builder: pytest.fail("decoded by tfds again"))
    assert_matches(load_mnist(str(tmp_path / "idx"), tfds_dir), arrays)

    # A damaged copy is never trusted: tfds decodes again and the copy is rewritten.
    damage(decoded)
    calls = []
    monkeypatch.setattr(data, "_read_tfds", lambda builder: calls.append(1) or read_tfds(builder))
    assert_matches(load_mnist(str(tmp_path / "idx"), tfds_dir), arrays)
    assert calls == [1] and decoded_files(tfds_dir) == [decoded]
    assert_matches(load_mnist(str(tmp_path / "idx"), tfds_dir), arrays)
    assert calls == [1]


def test_failed_prepare_leaves_nothing_a_later_call_trusts(tmp_path, monkeypatch, capsys):
    arrays = write_tiny_mnist(tmp_path / "idx", seed=3)
    tfds_dir = str(tmp_path / "tfds")
    generate = data.MlpjaxMnist._generate_examples

    def fail_in_test_split(self, images_path, labels_path):  # train is fully written by then
        for index, example in generate(self, images_path, labels_path):
            if "t10k" in images_path and index == 5:
                raise RuntimeError("disk full")
            yield index, example

    monkeypatch.setattr(data.MlpjaxMnist, "_generate_examples", fail_in_test_split)
    with pytest.raises(RuntimeError, match="disk full"):
        load_mnist(str(tmp_path / "idx"), tfds_dir)
    # No version dir at all, finished or `incomplete.*`, is left in the config's folder.
    assert list((tmp_path / "tfds").glob("mlpjax_mnist/*/*")) == []

    monkeypatch.setattr(data.MlpjaxMnist, "_generate_examples", generate)
    capsys.readouterr()
    assert_matches(load_mnist(str(tmp_path / "idx"), tfds_dir), arrays)
    assert capsys.readouterr().out.startswith("prepared MNIST")


def test_download_path_enforces_tfds_mnist_checksums(tmp_path, monkeypatch, capsys):
    # No network here: a fake transport serves tiny files for the stock CVDF URLs.
    arrays = write_tiny_mnist(tmp_path / "served", seed=4)

    def serve(self, url, destination_path, verify=True):
        path = destination_path / os.path.basename(url)
        shutil.copy(tmp_path / "served" / os.path.basename(url), path)
        return downloader.DownloadResult(path=path, url_info=checksums.compute_url_info(path))

    monkeypatch.setattr(downloader._Downloader, "_sync_download", serve)
    monkeypatch.setattr(data, "_check_reachable", lambda url, timeout=10.0: None)  # the fake transport is the network
    stock_urls = sorted(data.MlpjaxMnist.url_infos)
    assert stock_urls == sorted(data.MlpjaxMnist.URL + name for names in IDX_FILES.values() for name in names)

    with pytest.raises(Exception, match="checksum"):  # tiny files are not the real MNIST
        load_mnist(None, str(tmp_path / "tfds"))
    assert prepared_configs(str(tmp_path / "tfds")) == []

    # Pretend the stock checksums were those of the tiny files: downloaded .gz read fine.
    monkeypatch.setattr(
        data.MlpjaxMnist, "url_infos", {url: checksums.compute_url_info(tmp_path / "served" / os.path.basename(url)) for url in stock_urls}
    )
    mnist = load_mnist(None, str(tmp_path / "tfds"))
    assert_matches(mnist, arrays)
    assert mnist.source == "tfds download"
    assert capsys.readouterr().out.startswith("prepared MNIST from tfds download in ")
