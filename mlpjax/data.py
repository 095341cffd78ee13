"""MNIST as float32 arrays, stored and read through tensorflow-datasets without TensorFlow.

tfds prepares the dataset once per source into `data_dir` as array_record files and reads
it back with `as_data_source`; neither needs TensorFlow. The source is either four local
IDX files (`idx_dir`) or tfds's own checksummed download of the stock MNIST files.

tfds decodes one example at a time in Python (4 s for the 70,000 on 2 cores), so the first
read also saves the decoded uint8 arrays beside tfds's files (`decoded_uint8.npz`, 55 MB);
later reads load those (all of `load_mnist` then takes 0.5 s) when they hold as many rows as
tfds recorded for each split.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gzip
import hashlib
import logging
import math
import os
import pathlib
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.image_classification import mnist as tfds_mnist

from mlpjax.quiet import quiet

IDX_FILES = {  # split -> (images file, labels file): the standard MNIST names
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

tfds.display_progress_bar(False)  # tqdm bars for a few seconds of work are just noise


class DataError(Exception):
    """Bad MNIST input; the message is one line naming the file (or config key) and the problem."""


@dataclasses.dataclass(frozen=True)
class Mnist:
    """MNIST, one example per row, in the files' order. Pixels are uint8 / 255 in [0, 1]."""

    x_train_NxD: np.ndarray  # float32 (60000, 784)
    labels_train_N: np.ndarray  # int32 (60000,), digits 0..9
    x_test_NxD: np.ndarray  # float32 (10000, 784)
    labels_test_N: np.ndarray  # int32 (10000,)
    source: str  # "idx:/abs/dir (sha256 <first 12 hex>)" or "tfds download"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array in one IDX file, gzipped or plain (told apart by content), e.g. uint8 (N, 28, 28).

    Checks the magic number (two zero bytes, a known dtype code, at least one dim) and that
    the payload is exactly the size the header's dims promise; raises `DataError` otherwise.
    """
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    # By content, not name: tfds's download cache names files differently.
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupted or truncated gzip ({e})") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise DataError(f"{path}: bad IDX magic number 0x{data[:4].hex()}")
    header_size = 4 + 4 * data[3]
    if len(data) < header_size:
        raise DataError(f"{path}: IDX header truncated ({len(data)} bytes)")
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", data[3], offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header_size + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{path}: {len(data)} bytes, but a {dtype} array of shape {shape} needs {expected}")
    return np.frombuffer(data, dtype, offset=header_size).reshape(shape)


def _check_idx_dir(idx_dir: str) -> str:
    """sha256 hex over the four IDX files' bytes, after checking that they hold MNIST."""
    if not os.path.isdir(idx_dir):
        raise DataError(f"data.idx_dir: {idx_dir} is not a directory")
    sha = hashlib.sha256()
    for images_name, labels_name in IDX_FILES.values():
        images_path, labels_path = os.path.join(idx_dir, images_name), os.path.join(idx_dir, labels_name)
        images_NxHxW, labels_N = read_idx(images_path), read_idx(labels_path)
        if images_NxHxW.dtype != np.uint8 or images_NxHxW.shape[1:] != (28, 28):
            raise DataError(f"{images_path}: expected uint8 images of 28x28, got {images_NxHxW.dtype} {images_NxHxW.shape}")
        n = images_NxHxW.shape[0]
        if labels_N.dtype != np.uint8 or labels_N.shape != (n,):
            raise DataError(f"{labels_path}: expected {n} uint8 labels (one per image), got {labels_N.dtype} {labels_N.shape}")
        if n and labels_N.max() > 9:
            raise DataError(f"{labels_path}: label {labels_N.max()} is not a digit 0..9")
        for path in (images_path, labels_path):
            sha.update(pathlib.Path(path).read_bytes())
    return sha.hexdigest()


@dataclasses.dataclass
class _MnistConfig(tfds.core.BuilderConfig):
    idx_dir: str | None = None  # None: tfds downloads the stock files


class MlpjaxMnist(tfds_mnist.MNIST):
    """tfds's MNIST builder, registered as `mlpjax_mnist`, made to work without TensorFlow.

    The stock builder reads with `tf.io.gfile`, gunzips downloads with TF and encodes its
    `Image` feature with a TF graph. Here numpy reads the IDX files (`read_idx` gunzips),
    and images are stored as zlib-compressed uint8 tensors: Pillow PNGs also work without
    TF, but on 2 cores they took 7.1 s to prepare and 6.5 s to read, against 4 s and 2.5 s.
    """

    VERSION = tfds.core.Version("1.0.0")  # bump when the stored features change

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="MNIST handwritten digits, in the IDX files' order.",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(28, 28), dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,  # tfds would hash-shuffle; keep rows in file order
        )

    @tfds.core.utils.classproperty
    @classmethod
    def _checksums_path(cls):
        # tfds would look next to this file; the stock URLs' sizes and sha256s ship with tfds.
        return tfds.core.utils.tfds_path() / "url_checksums" / "mnist.txt"

    def _split_generators(self, dl_manager):
        names = [name for pair in IDX_FILES.values() for name in pair]
        if self.builder_config.idx_dir is None:
            # `download`, not the stock `download_and_extract`: tfds's extractor needs TF.
            paths = dl_manager.download({name: self.URL + name for name in names})
        else:
            paths = {name: os.path.join(self.builder_config.idx_dir, name) for name in names}
        return [
            tfds.core.SplitGenerator(name=split, gen_kwargs=dict(images_path=paths[images], labels_path=paths[labels]))
            for split, (images, labels) in IDX_FILES.items()
        ]

    def _generate_examples(self, images_path, labels_path):
        images_NxHxW, labels_N = read_idx(images_path), read_idx(labels_path)
        for index, (image_HxW, label) in enumerate(zip(images_NxHxW, labels_N, strict=True)):
            yield index, {"image": image_HxW, "label": int(label)}

    # tfds prints two bold lines around every prepare; `load_mnist` prints one of its own.
    def _log_download_bytes(self):
        pass

    def _log_download_done(self):
        pass


def _check_reachable(url: str, timeout: float = 10.0) -> None:
    """Raise DataError within about `timeout` s if `url`'s server cannot be reached.

    tfds's downloader retries a dead network for minutes; this asks once first.
    """
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # the server answered: the network is there, tfds reports what it said
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"cannot download MNIST (no network: {reason}); {NO_DATA_HINT}") from None


NO_DATA_HINT = "set MNIST_IDX_DIR or data.idx_dir to a folder with the four IDX files"


def _download_and_prepare(builder: MlpjaxMnist) -> None:
    """Prepare the stock MNIST through tfds's checksummed download; a failure is a DataError."""
    _check_reachable(builder.URL + IDX_FILES["train"][1])
    try:
        builder.download_and_prepare(file_format="array_record")
    except Exception as e:  # requests' and tfds's errors; tfds keeps nothing half-written
        raise DataError(f"cannot download MNIST ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); {NO_DATA_HINT}") from None


@contextlib.contextmanager
def _prepare_lock(data_dir: str):
    """One process at a time prepares into `data_dir`: tfds's final rename fails for the second."""
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, ".mlpjax_prepare.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, also if the process dies
        yield


def _prepare(builder: MlpjaxMnist, idx_dir: str | None) -> None:
    start = time.perf_counter()
    # tfds writes into an `incomplete.*` dir and renames it only on success.
    if idx_dir is None:
        _download_and_prepare(builder)
    else:
        builder.download_and_prepare(file_format="array_record")
    print(f"prepared MNIST from {idx_dir or 'tfds download'} in {time.perf_counter() - start:.1f} s")


Splits = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 images_NxHxW, uint8 labels_N)
DECODED_FILE = "decoded_uint8.npz"


def _read_tfds(builder: MlpjaxMnist) -> Splits:
    """Every example of the prepared dataset, decoded by tfds (reads only what is on disk)."""
    sources = builder.as_data_source()
    splits = {}
    for split in IDX_FILES:
        examples = sources[split].__getitems__(range(len(sources[split])))  # one batched read
        splits[split] = np.stack([ex["image"] for ex in examples]), np.array([ex["label"] for ex in examples], np.uint8)
    return splits


def _read_decoded(builder: MlpjaxMnist) -> Splits | None:
    """The arrays `_save_decoded` left, or None if absent, unreadable (the zip's CRCs) or not the
    shape of the splits tfds recorded."""
    try:
        with np.load(os.path.join(builder.data_dir, DECODED_FILE)) as f:
            splits = {split: (f[f"images_{split}"], f[f"labels_{split}"]) for split in IDX_FILES}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    for split, (images_NxHxW, labels_N) in splits.items():
        n = builder.info.splits[split].num_examples
        if images_NxHxW.shape != (n, 28, 28) or labels_N.shape != (n,) or {images_NxHxW.dtype, labels_N.dtype} != {np.dtype(np.uint8)}:
            return None
    return splits


def _save_decoded(builder: MlpjaxMnist, splits: Splits) -> None:
    """Write `splits` beside the prepared dataset, atomically; a read-only `data_dir` just skips it."""
    named = {f"{kind}_{split}": a for split, (images, labels) in splits.items() for kind, a in (("images", images), ("labels", labels))}
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=builder.data_dir, suffix=".npz.tmp")
        os.chmod(tmp, 0o644)  # as readable as tfds's own files (mkstemp makes 0600)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **named)
        os.replace(tmp, os.path.join(builder.data_dir, DECODED_FILE))
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def load_mnist(idx_dir: str | None, data_dir: str) -> Mnist:
    """MNIST prepared by tfds under `data_dir` (once per distinct source) and read as arrays.

    `idx_dir`: folder holding the four standard IDX `.gz` files, or None for tfds's
    checksummed download. Raises `DataError` if the folder or a file is missing or malformed.
    """
    if idx_dir is None:
        config, source = _MnistConfig(name="download"), "tfds download"
    else:
        idx_dir = os.path.abspath(idx_dir)
        digest = _check_idx_dir(idx_dir)[:12]
        # Other files -> other config -> other prepared dir: never reuse data from other files.
        config, source = _MnistConfig(name=f"idx_{digest}", idx_dir=idx_dir), f"idx:{idx_dir} (sha256 {digest})"
    # tfds logs at INFO and WARNING through absl and warns about TensorFlow being absent.
    with quiet(logging.ERROR, python_warnings=False):
        builder = MlpjaxMnist(data_dir=data_dir, config=config)
        if not builder.is_prepared():
            with _prepare_lock(data_dir):
                # Another process (a parallel sweep job) may have prepared it while this one waited.
                builder = MlpjaxMnist(data_dir=data_dir, config=config)
                if not builder.is_prepared():
                    _prepare(builder, idx_dir)
        splits = _read_decoded(builder)
        if splits is None:
            splits = _read_tfds(builder)
            _save_decoded(builder, splits)
    arrays = {}
    for split, (images_NxHxW, labels_N) in splits.items():
        arrays[f"x_{split}_NxD"] = images_NxHxW.reshape(len(images_NxHxW), -1).astype(np.float32) / np.float32(255)
        arrays[f"labels_{split}_N"] = labels_N.astype(np.int32)
    return Mnist(**arrays, source=source)
