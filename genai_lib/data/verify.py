"""Check that a local data file is the file the lessons were written against.

A file can reach the data folder in three ways: downloaded by the course
(already checked by :func:`genai_lib.data.fetch`), copied in by hand, or
unpacked by hand (``gunzip``). The last two are checked here, every time a
file is used, so a fake, cut-short or damaged copy is an error and never
quietly becomes "MNIST".

What counts as the right file:

- its bytes have the SHA-256 of the file on the mirror, or
- its *unpacked contents* (the IDX bytes inside the gzip, or the file itself
  if it is not gzipped) have the pinned digest. The gzip wrapper carries a
  timestamp, so two honest copies of MNIST can differ as files and still hold
  the same images; the contents cannot.

Hashing 47 MB each time a notebook loads MNIST would be slow, so a result is
remembered in ``<download folder>/verified-files.json``, keyed by the file's
path, size and modification time: change the file and it is checked again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import zlib
from pathlib import Path

from genai_lib import config
from genai_lib.data.sources import RemoteFile

CACHE_NAME = "verified-files.json"
_GZIP_MAGIC = b"\x1f\x8b"


class DataFileError(ValueError):
    """A local data file is not the file it is named after (fake, truncated or damaged)."""


def check_file(path: Path, remote: RemoteFile, fix: str) -> None:
    """Raise :class:`DataFileError` unless ``path`` holds ``remote``'s data.

    Args:
        path: the local copy, gzipped or unpacked.
        remote: the registry entry it claims to be.
        fix: the sentence that tells the user how to get a good copy
            (for example ``'Run genai_lib.data.load_mnist("mnist", download=True).'``).
    """
    path = Path(path)
    stat = path.stat()
    key = str(path.resolve())
    entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "pinned": remote.sha256}
    cache = _read_cache()
    if cache.get(key) == entry:
        return

    if _hash(open(path, "rb"), hashlib.sha256())[0] != remote.sha256:  # not the mirror's exact file
        _check_contents(path, remote, fix)
    cache[key] = entry
    _write_cache(cache)


def _check_contents(path: Path, remote: RemoteFile, fix: str) -> None:
    """Compare the unpacked contents (through gzip if the file is gzipped) with the pinned digest."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    stream = gzip.open(path, "rb") if gzipped else open(path, "rb")
    try:
        sha256, md5 = _hash(stream, hashlib.sha256(), hashlib.md5())
    except (EOFError, OSError, zlib.error) as err:  # truncated stream, bad CRC, bad data
        if not gzipped:
            raise
        raise DataFileError(
            f"{path} is not a complete gzip file ({err}); it was probably cut short. "
            f"Delete it, then: {fix}"
        ) from None
    if remote.unpacked_sha256 is not None:
        ok, pinned = sha256 == remote.unpacked_sha256, f"SHA-256 {remote.unpacked_sha256}"
    else:
        # The datasets' publishers list MD5s of the unpacked files; where the course
        # has not computed a SHA-256 of them from a checked copy, that is the pin.
        ok, pinned = (
            remote.unpacked_md5 is not None and md5 == remote.unpacked_md5,
            f"MD5 {remote.unpacked_md5}",
        )
    if not ok:
        what = "unpacked contents" if gzipped else "contents"
        raise DataFileError(
            f"{path} is not the expected {remote.name}: its {what} have SHA-256 {sha256} and MD5 {md5} "
            f"(expected {pinned}). It may be truncated, damaged, or another dataset's file. "
            f"Delete it, then: {fix} To use files of your own on purpose, pass verify=False."
        )


def _hash(stream, *digests) -> list[str]:
    """Feed a binary stream to each digest in 1 MiB blocks; close it; return the hex digests."""
    with stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            for digest in digests:
                digest.update(block)
    return [d.hexdigest() for d in digests]


def _cache_path() -> Path:
    return config.download_dir() / CACHE_NAME


def _read_cache() -> dict:
    try:
        cache = json.loads(_cache_path().read_text())
    except (OSError, ValueError):  # none yet, unreadable, or cut short: check again
        return {}
    return cache if isinstance(cache, dict) else {}


def _write_cache(cache: dict) -> None:
    """Save the cache atomically; a folder we cannot write only costs a re-check next time."""
    path = _cache_path()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{CACHE_NAME}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(cache, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
