"""Small image datasets as tensors: scikit-learn's 8x8 digits, MNIST and Fashion-MNIST.

Every loader returns an :class:`ImageData` with the same layout, so a chapter
can switch from the offline 8x8 digits to 28x28 MNIST by changing one line:

- images: float32, shape (N, 1, H, W), pixel values in [0, 1]
- labels: int64, shape (N,), class indices into ``classes``
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genai_lib.data import sources
from genai_lib.data.download import fetch
from genai_lib.data.verify import check_file

MNIST_KINDS = ("mnist", "fashion")

DIGIT_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


@dataclass(frozen=True, eq=False, repr=False)
class ImageData:
    """A labelled image dataset, already split into train and validation."""

    name: str
    train_images: torch.Tensor  # (N_train, 1, H, W) float32 in [0, 1]
    train_labels: torch.Tensor  # (N_train,) int64
    val_images: torch.Tensor  # (N_val, 1, H, W) float32 in [0, 1]
    val_labels: torch.Tensor  # (N_val,) int64
    classes: list[str]  # classes[label] is the label's name

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape of one image: (channels, height, width)."""
        c, h, w = self.train_images.shape[1:]
        return (c, h, w)

    def __repr__(self) -> str:  # the default would print every pixel
        c, h, w = self.shape
        return (
            f"ImageData({self.name!r}: {len(self.train_images)} train + "
            f"{len(self.val_images)} val images of {c}x{h}x{w}, {len(self.classes)} classes)"
        )


def _to_image_data(
    name: str,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    classes: list[str],
    max_value: float,
) -> ImageData:
    """(N, H, W) arrays with pixels in [0, max_value] -> an ImageData with (N, 1, H, W) in [0, 1]."""

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(x, dtype=np.float32) / max_value).unsqueeze(1)

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(y, dtype=np.int64))

    return ImageData(
        name,
        images(train_images),
        labels(train_labels),
        images(val_images),
        labels(val_labels),
        classes,
    )


# ---------------------------------------------------------------- 8x8 digits


def load_digits() -> ImageData:
    """scikit-learn's 1,797 handwritten digits, 8x8 pixels; bundled, so it works offline.

    The split is fixed: every fifth image (index % 5 == 4) is validation,
    giving 1,438 train and 359 validation images. Pixels are 0..16 in the
    source and divided by 16.
    """
    from sklearn.datasets import load_digits as sklearn_digits  # sklearn is slow to import

    digits = sklearn_digits()
    images, labels = digits.images, digits.target  # (1797, 8, 8) in 0..16, (1797,)
    is_val = np.arange(len(images)) % 5 == 4
    return _to_image_data(
        "digits",
        images[~is_val],
        labels[~is_val],
        images[is_val],
        labels[is_val],
        DIGIT_CLASSES,
        max_value=16.0,
    )


# ---------------------------------------------------------------- IDX files

# IDX header: two zero bytes, a data-type code, the number of dimensions, then
# one big-endian uint32 per dimension. MNIST uses only unsigned bytes (0x08):
# 0x00000803 for (N, H, W) images, 0x00000801 for (N,) labels.
_UINT8 = 0x08
_IDX_MAGICS = {0x0803: "images (N, H, W)", 0x0801: "labels (N,)"}


def _corrupt(path: Path, expected: str, found: str) -> ValueError:
    return ValueError(
        f"{path} is not a valid IDX file: expected {expected}, found {found}. "
        f"It is probably truncated or corrupt (an interrupted download?). "
        f"Delete it and download it again."
    )


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed, into a uint8 array.

    Returns an array of shape (N, H, W) for an image file or (N,) for a label
    file. The file is checked strictly (header, data type, and a payload of
    exactly N*H*W bytes), so a truncated download is an error, not bad data.

    Raises:
        ValueError: the file is not a complete IDX file; the message says why.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # the gzip magic number; don't trust the file name
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:  # truncated stream, bad CRC, bad data
            raise _corrupt(path, "a complete gzip stream", f"a broken one ({err})") from None

    if len(raw) < 4:
        raise _corrupt(path, "a 4-byte header", f"only {len(raw)} bytes")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _IDX_MAGICS:
        known = " or ".join(f"0x{m:08x} ({what})" for m, what in _IDX_MAGICS.items())
        raise _corrupt(path, f"magic number {known}", f"0x{magic:08x}")

    ndim = raw[3]
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise _corrupt(path, f"a {header_bytes}-byte header", f"only {len(raw)} bytes")
    dims = struct.unpack(f">{ndim}I", raw[4:header_bytes])
    payload = len(raw) - header_bytes
    expected = int(np.prod(dims))
    if payload != expected:
        shape = " x ".join(map(str, dims))
        raise _corrupt(path, f"{expected:,} data bytes for shape {shape}", f"{payload:,}")
    # .copy(): frombuffer gives a read-only view of the bytes, which torch warns about.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(dims).copy()


# ---------------------------------------------------------------- MNIST and Fashion-MNIST

# (train images, train labels, val images, val labels): val is the official test set.
_MNIST_FILES = (
    sources.TRAIN_IMAGES,
    sources.TRAIN_LABELS,
    sources.TEST_IMAGES,
    sources.TEST_LABELS,
)


def _unpacked(name: str) -> str:
    return name.removesuffix(".gz")


def _find_mnist_file(kind: str, name: str, path: Path | None) -> Path | None:
    """The local copy of one file, gzipped or unpacked, or None."""
    if path is None:
        return sources.find_local(kind, [name, _unpacked(name)])
    for candidate in (path / name, path / _unpacked(name)):
        if candidate.is_file():
            return candidate
    return None


def load_mnist(
    kind: str = "mnist", download: bool = False, path: str | Path | None = None, verify: bool = True
) -> ImageData:
    """MNIST digits or Fashion-MNIST clothes: 28x28 grey images in 10 classes.

    Train is the official 60,000-image training set, validation the official
    10,000-image test set.

    Args:
        kind: ``"mnist"`` or ``"fashion"``.
        download: fetch missing files (about 12 MB for MNIST, 31 MB for
            Fashion-MNIST) into ``config.download_dir()/<kind>/``.
        path: a folder holding the four IDX files (``.gz`` or unpacked) to use
            instead of the data folders; downloads, if asked for, go there too.
        verify: check every file, downloaded or copied in by hand, against the
            pinned digests (:mod:`genai_lib.data.verify`; remembered, so a file is
            hashed once). ``False`` only for IDX files of your own.

    Raises:
        ValueError: unknown ``kind``, or a file is corrupt, fake or not the pinned one.
        FileNotFoundError: files are missing and ``download`` is False.
    """
    if kind not in MNIST_KINDS:
        raise ValueError(
            f"Unknown kind {kind!r}; the known kinds are {', '.join(map(repr, MNIST_KINDS))}."
        )
    folder = Path(path).expanduser() if path is not None else None

    found = {name: _find_mnist_file(kind, name, folder) for name in _MNIST_FILES}
    missing = [name for name, p in found.items() if p is None]
    if missing and not download:
        raise FileNotFoundError(_missing_message(kind, missing, folder))
    for name in missing:
        remote = sources.remote_file(kind, name)
        dest = (folder or sources.download_folder(kind)) / name
        found[name] = fetch(list(remote.urls), dest, remote.sha256, what=f"{kind} {name}")

    if verify:
        path_arg = f', path="{folder}"' if folder is not None else ""
        fix = f'run genai_lib.data.load_mnist("{kind}", download=True{path_arg}) to download it again.'
        for name in _MNIST_FILES:
            check_file(found[name], sources.remote_file(kind, name), fix)
    arrays = [read_idx(found[name]) for name in _MNIST_FILES]
    name, classes = (
        ("MNIST", DIGIT_CLASSES) if kind == "mnist" else ("Fashion-MNIST", FASHION_CLASSES)
    )
    for images, labels, split in ((arrays[0], arrays[1], "train"), (arrays[2], arrays[3], "val")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"The {kind} {split} files do not match: images {images.shape}, "
                f"labels {labels.shape}. Delete them and download them again."
            )
        if len(labels) and labels.max() >= len(classes):
            raise ValueError(
                f"The {kind} {split} labels go up to {labels.max()}, but there are only "
                f"{len(classes)} classes (0 to {len(classes) - 1}): these are not {name} labels."
            )
    return _to_image_data(name, *arrays, classes, max_value=255.0)


def mnist_t10k_split(folder: str | Path, verify: bool = True) -> ImageData:
    """MNIST's 10,000 test images from ``folder`` (IDX files, gzipped or not), as 8,000 train / 2,000 held out.

    The split the benchmarks use on a machine with only the t10k files: every
    fifth image (index % 5 == 4) is held out. The first 5,000 test images are
    easier than the last 5,000, so a contiguous cut would not be representative.
    """
    folder = Path(folder)

    def first(*names: str) -> Path:
        for name in names:
            if (folder / name).is_file():
                return folder / name
        raise FileNotFoundError(
            f"No {names[1]} (or {names[0]}) in {folder}: give the folder that holds MNIST's "
            f"t10k IDX files."
        )

    files = [first(name, _unpacked(name)) for name in (sources.TEST_IMAGES, sources.TEST_LABELS)]
    if verify:  # the benchmarks' figures are only comparable on the real test set
        for path, name in zip(files, (sources.TEST_IMAGES, sources.TEST_LABELS)):
            check_file(
                path, sources.remote_file("mnist", name), "copy MNIST's t10k files there again."
            )
    images, labels = (read_idx(path) for path in files)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    held = torch.arange(len(x)) % 5 == 4
    return ImageData(
        "mnist-t10k-8k", x[~held], y[~held], x[held], y[held], [str(d) for d in range(10)]
    )


def _missing_message(kind: str, missing: list[str], folder: Path | None) -> str:
    looked_in = [folder] if folder is not None else sources.local_dirs(kind)
    size = sources.describe_size(
        sum(sources.remote_file(kind, n).size or 0 for n in missing) or None
    )
    path_arg = f', path="{folder}"' if folder is not None else ""
    dest = folder if folder is not None else sources.download_folder(kind)
    return (
        f"{kind} files not found: {', '.join(missing)}.\n"
        f"Looked in: {', '.join(str(p) for p in looked_in)}.\n"
        f"To download them{f' ({size})' if size else ''}, run:\n"
        f'    genai_lib.data.load_mnist("{kind}", download=True{path_arg})\n'
        f"Or copy the files by hand into {dest} (gzipped or not)."
    )


def binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary images drawn pixel by pixel: 1 with probability equal to the grey value.

    A Bernoulli likelihood is a true probability only for binary pixels, so
    models that report nats under one see binarised images: drawn afresh each
    batch when training ("dynamic binarisation"), once with a fixed seed for
    evaluation. ``(..., H, W)`` in [0, 1] -> the same shape, values in {0, 1}.
    """
    if not images.is_floating_point():
        raise ValueError(
            f"binarize takes grey values in [0, 1] as floats; got {images.dtype}. For 0..255 "
            f"images use x.float() / 255."
        )
    # the range is read where that is free: on a GPU it would wait for the device
    if images.device.type == "cpu" and images.numel():
        lo, hi = images.min().item(), images.max().item()
        if not (lo >= 0 and hi <= 1):  # written so that NaN fails it too
            raise ValueError(
                f"binarize takes grey values in [0, 1] (the probability of ink); these range over "
                f"[{lo:.3g}, {hi:.3g}]. Divide 0..255 images by 255; map [-1, 1] with (x + 1) / 2."
            )
    if generator is not None and generator.device != images.device:
        return torch.bernoulli(images.cpu(), generator=generator).to(images.device)
    return torch.bernoulli(images, generator=generator)
