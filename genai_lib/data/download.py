"""Download one file safely: verified by SHA-256, written atomically.

The file is streamed into a temporary file next to its destination and only
moved into place (``os.replace``, atomic on one file system) once its checksum
matches. So whatever happens (no network, a wrong file, Ctrl-C halfway), the
destination either holds the exact file or nothing, and no temporary file is
left behind; a partial file left by a download that was killed outright (SIGKILL) is
removed by the next download of the same file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

CHUNK_BYTES = 1 << 20  # 1 MiB: read, hash and write in pieces, never the whole file in memory


class DownloadError(RuntimeError):
    """No URL gave the file: no network, or every mirror sent something else."""


class _ChecksumMismatch(Exception):
    def __init__(self, got: str) -> None:
        super().__init__(got)
        self.got = got


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(
    urls: list[str] | tuple[str, ...], dest: Path, sha256: str, what: str, timeout: float = 60.0
) -> Path:
    """Download the file at the first URL that works to ``dest`` and return ``dest``.

    Args:
        urls: mirrors of the same file, tried in order (``https://``, ``http://``
            or ``file://``).
        dest: where the file should end up; its folder is created if needed.
        sha256: the expected hex digest; a file with another digest is refused.
        what: a few words for messages, e.g. ``"MNIST train-images-idx3-ubyte.gz"``.
        timeout: seconds to wait for a server to answer (per URL and per read).

    Raises:
        DownloadError: no URL gave the expected file. Nothing is left at ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    expected = sha256.lower()
    failures: list[str] = []
    for url in urls:
        print(f"Downloading {what} from {url}")
        try:
            _download_verified(url, dest, expected, timeout)
            return dest
        except _ChecksumMismatch as err:
            failures.append(f"{url}: the file's SHA-256 is {err.got}, expected {expected}")
        except OSError as err:  # URLError, HTTPError, timeouts and disk errors are all OSErrors
            failures.append(f"{url}: {err}")
    raise DownloadError(_failure_message(what, dest, failures))


def _download_verified(url: str, dest: Path, expected: str, timeout: float) -> None:
    """Stream ``url`` into a temporary file beside ``dest``; move it into place if it checks out."""
    # A download killed outright (SIGKILL) could not remove its partial file: this one does.
    for leftover in dest.parent.glob(f".{dest.name}.*.part"):
        leftover.unlink(missing_ok=True)
    # Same folder as dest, so os.replace is a rename, not a copy across disks.
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            raise _ChecksumMismatch(digest.hexdigest())
        os.replace(tmp, dest)
    finally:
        # After a successful replace tmp is gone; after anything else (even
        # KeyboardInterrupt) this removes the partial file.
        tmp.unlink(missing_ok=True)


def _failure_message(what: str, dest: Path, failures: list[str]) -> str:
    tried = "\n".join(f"  - {line}" for line in failures) or "  (no URL was given)"
    return (
        f"Could not download {what}; nothing was written to {dest}.\n"
        f"Tried:\n{tried}\n"
        f"What to do: check your internet connection and try again. Or get the file "
        f"{dest.name!r} some other way and copy it by hand into the folder {dest.parent} "
        f"(to keep data somewhere else, set the GENAI_DATA environment variable to a "
        f"folder and put it in the {dest.parent.name!r} subfolder there)."
    )
