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


def _idx_files(mirrors: Sequence[str], table: dict[str, tuple[str, int | None]]) -> tuple[RemoteFile, ...]:
    """The four IDX files of an MNIST-like dataset, each reachable at every mirror."""
    return tuple(
        RemoteFile(name, tuple(base + name for base in mirrors), sha256, size)
        for name, (sha256, size) in table.items()
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
    urls=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    size=1_115_394,
)

# dataset (= its folder name) -> its files
DATASETS: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": _idx_files(MNIST_MIRRORS, {
        TRAIN_IMAGES: ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422),
        TRAIN_LABELS: ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881),
        TEST_IMAGES: ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
        TEST_LABELS: ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542),
    }),
    "fashion": _idx_files(FASHION_MIRRORS, {
        TRAIN_IMAGES: ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26_421_880),
        TRAIN_LABELS: ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29_515),
        TEST_IMAGES: ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4_422_102),
        TEST_LABELS: ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5_148),
    }),
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
