"""The files the course can download, and where their local copies live.

Every file is pinned by its SHA-256, so a download is either exactly the file
the lessons were written against, or an error.

A dataset's files live in a folder named after it, inside one of the data
folders of :func:`genai_lib.config.data_dirs`::

    <data folder>/mnist/train-images-idx3-ubyte.gz
    <data folder>/fashion/t10k-labels-idx1-ubyte.gz
    <data folder>/tinyshakespeare/tinyshakespeare.txt

Downloads go to :func:`genai_lib.config.download_dir`; lookups search every
data folder, so a copy placed by hand in the repository's ``data/`` is found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from genai_lib import config


@dataclass(frozen=True)
class RemoteFile:
    """One file on the internet, pinned by its checksum."""

    name: str  # file name on disk
    urls: tuple[str, ...]  # mirrors, tried in order
    sha256: str  # hex digest of the exact bytes
    size: int | None  # bytes; informational (for "about N MB" messages)
    # For a gzipped file, digests of what it unpacks to, so a copy gzipped again
    # (another timestamp in the header) or unpacked by hand is recognised too:
    unpacked_md5: str | None = None  # as the dataset's publishers list it
    unpacked_sha256: str | None = None  # where we computed it from a checked copy


def _idx_files(mirrors: Sequence[str], table: dict[str, tuple]) -> tuple[RemoteFile, ...]:
    """The four IDX files of an MNIST-like dataset, each reachable at every mirror.

    ``table`` maps a file name to (SHA-256, size, unpacked MD5, unpacked SHA-256 or None).
    """
    return tuple(
        RemoteFile(name, tuple(base + name for base in mirrors), *digests)
        for name, digests in table.items()
    )


# The original LeCun files. yann.lecun.com now often refuses downloads, so we
# use the two mirrors that torchvision and TensorFlow use.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

# Both datasets use the same four file names: 60,000 train and 10,000 test images.
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

TINYSHAKESPEARE = RemoteFile(
    name="tinyshakespeare.txt",
    urls=(
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    ),
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    size=1_115_394,
)

# dataset (= its folder name) -> its files.
# The unpacked MD5s are the ones the datasets' pages and torchvision list for the
# four unpacked files. The unpacked SHA-256s of MNIST's test files were computed
# from a copy whose MD5s match those; the other files keep their MD5 as the pin.
DATASETS: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": _idx_files(
        MNIST_MIRRORS,
        {
            TRAIN_IMAGES: (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                9_912_422,
                "6bbc9ace898e44ae57da46a324031adb",
                None,
            ),
            TRAIN_LABELS: (
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                28_881,
                "a25bea736e30d166cdddb491f175f624",
                None,
            ),
            TEST_IMAGES: (
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                1_648_877,
                "2646ac647ad5339dbf082846283269ea",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            TEST_LABELS: (
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                4_542,
                "27ae3e4e09519cfbb04c329615203637",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        },
    ),
    "fashion": _idx_files(
        FASHION_MIRRORS,
        {
            TRAIN_IMAGES: (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                26_421_880,
                "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                None,
            ),
            TRAIN_LABELS: (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                29_515,
                "9018921c3c673c538a1fc5bad174d6f9",
                None,
            ),
            TEST_IMAGES: (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                4_422_102,
                "8181f5470baa50b63fa0f6fddb340f0a",
                None,
            ),
            TEST_LABELS: (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                5_148,
                "15d484375f8d13e6eb1aabb0c3f46965",
                None,
            ),
        },
    ),
    "tinyshakespeare": (TINYSHAKESPEARE,),
}


def remote_file(dataset: str, name: str) -> RemoteFile:
    """Look up one file of the registry by dataset and file name."""
    for file in DATASETS[dataset]:
        if file.name == name:
            return file
    raise KeyError(f"{name!r} is not a file of dataset {dataset!r}")


def local_dirs(dataset: str) -> list[Path]:
    """The folders searched for ``dataset``'s files, in order."""
    return [folder / dataset for folder in config.data_dirs()]


def download_folder(dataset: str) -> Path:
    """The folder that ``dataset``'s files are downloaded to."""
    return config.download_dir() / dataset


def find_local(dataset: str, names: Sequence[str]) -> Path | None:
    """The first existing ``<data folder>/<dataset>/<name>``, or ``None``.

    Folders are searched in :func:`local_dirs` order; within a folder, the
    names are tried in order (e.g. the ``.gz`` file, then an unpacked copy).
    """
    for folder in local_dirs(dataset):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def describe_size(n_bytes: int | None) -> str:
    """'about 12 MB' for a message, or '' when the size is unknown."""
    if n_bytes is None:
        return ""
    if n_bytes < 1_000_000:
        return f"about {max(1, round(n_bytes / 1000))} kB"
    return f"about {round(n_bytes / 1_000_000)} MB"
