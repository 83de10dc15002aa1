"""genai_lib.data: loaders, the IDX reader, safe downloads and the character tokenizer.

No test touches the network: downloads use file:// URLs to files written in
tmp_path, and GENAI_DATA points every lookup at tmp_path.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import genai_lib.data as data
from genai_lib.data import download, sources, verify

# ---------------------------------------------------------------- helpers


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """Write a uint8 array as an IDX file (the MNIST format), optionally gzipped."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    raw = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_fake_mnist(
    folder: Path, n_train: int = 12, n_val: int = 5, compress: bool = True
) -> dict:
    """Four small IDX files with MNIST's names; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        sources.TRAIN_IMAGES: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        sources.TRAIN_LABELS: rng.integers(0, 10, n_train, dtype=np.uint8),
        sources.TEST_IMAGES: rng.integers(0, 256, (n_val, 28, 28), dtype=np.uint8),
        sources.TEST_LABELS: rng.integers(0, 10, n_val, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / (name if compress else name.removesuffix(".gz")), array, compress)
    return arrays


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty GENAI_DATA folder, so no test sees a real download on this machine."""
    folder = tmp_path / "genai_data"
    folder.mkdir()
    monkeypatch.setenv("GENAI_DATA", str(folder))
    return folder


# ---------------------------------------------------------------- digits


def test_digits_shapes_range_and_split():
    d = data.load_digits()
    assert d.train_images.shape == (1438, 1, 8, 8) and d.val_images.shape == (359, 1, 8, 8)
    assert d.train_labels.shape == (1438,) and d.val_labels.shape == (359,)
    assert d.train_images.dtype == torch.float32 and d.train_labels.dtype == torch.int64
    assert d.shape == (1, 8, 8)
    both = torch.cat([d.train_images, d.val_images])
    assert both.min() == 0.0 and both.max() == 1.0  # 0..16 divided by 16
    assert set(d.train_labels.tolist()) == set(range(10)) and d.classes[3] == "3"


def test_digits_split_is_every_fifth_image_and_deterministic():
    from sklearn.datasets import load_digits as sklearn_digits

    pixels = torch.from_numpy(sklearn_digits().images).float() / 16  # (1797, 8, 8)
    d1, d2 = data.load_digits(), data.load_digits()
    torch.testing.assert_close(d1.val_images[:, 0], pixels[4::5], rtol=0, atol=0)
    torch.testing.assert_close(
        d1.train_images[:, 0], pixels[torch.arange(1797) % 5 != 4], rtol=0, atol=0
    )
    assert torch.equal(d1.train_images, d2.train_images) and torch.equal(
        d1.val_labels, d2.val_labels
    )


# ---------------------------------------------------------------- read_idx


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("shape", [(7, 5, 3), (11,)])
def test_read_idx_round_trips(tmp_path, compress, shape):
    array = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    out = data.read_idx(write_idx(tmp_path / "x.idx", array, compress))
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("change, found", [("cut", 31), ("extend", 41)])
def test_read_idx_wrong_payload_length_is_a_clear_error(tmp_path, change, found):
    path = write_idx(tmp_path / "images.idx", np.zeros((4, 3, 3), np.uint8))  # 36 data bytes
    raw = path.read_bytes()
    path.write_bytes(raw[:-5] if change == "cut" else raw + bytes(5))
    with pytest.raises(ValueError) as err:
        data.read_idx(path)
    message = str(err.value)
    assert str(path) in message
    assert "36 data bytes" in message and f"found {found}" in message  # expected vs found
    assert "Delete it and download it again" in message


def test_read_idx_wrong_magic_is_a_clear_error(tmp_path):
    path = tmp_path / "not_idx.bin"
    path.write_bytes(b"\x00\x00\x0d\x03" + bytes(100))  # 0x0d = float32, not uint8
    with pytest.raises(ValueError, match="magic number") as err:
        data.read_idx(path)
    assert "0x00000d03" in str(err.value) and "0x00000803" in str(err.value)


def test_read_idx_truncated_header_is_a_clear_error(tmp_path):
    path = tmp_path / "short.idx"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")  # claims 3 dims, gives 1
    with pytest.raises(ValueError, match="16-byte header"):
        data.read_idx(path)


@pytest.mark.parametrize("damage", ["truncate", "flip_byte"])
def test_read_idx_broken_gzip_is_a_clear_error(tmp_path, damage):
    path = write_idx(tmp_path / "labels.gz", np.arange(200, dtype=np.uint8), compress=True)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]  # an interrupted download
    else:
        raw[-6] ^= 0xFF  # corrupt the stored CRC: the data inflates but fails the check
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="gzip") as err:
        data.read_idx(path)
    assert str(path) in str(err.value) and "download it again" in str(err.value)


# ---------------------------------------------------------------- load_mnist


def test_load_mnist_unknown_kind_lists_known_kinds():
    with pytest.raises(ValueError) as err:
        data.load_mnist("kmnist")
    assert (
        "'kmnist'" in str(err.value)
        and "'mnist'" in str(err.value)
        and "'fashion'" in str(err.value)
    )


@pytest.mark.parametrize("kind", ["mnist", "fashion"])
def test_missing_mnist_says_where_it_looked_and_how_to_download(data_dir, kind):
    with pytest.raises(FileNotFoundError) as err:
        data.load_mnist(kind)
    message = str(err.value)
    assert f'genai_lib.data.load_mnist("{kind}", download=True)' in message
    assert str(data_dir / kind) in message and sources.TRAIN_IMAGES in message
    assert ("about 12 MB" if kind == "mnist" else "about 31 MB") in message


@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist_from_a_folder(tmp_path, compress):
    arrays = write_fake_mnist(tmp_path / "mine", compress=compress)
    # files of our own, on purpose
    d = data.load_mnist("fashion", path=tmp_path / "mine", verify=False)
    assert d.train_images.shape == (12, 1, 28, 28) and d.val_images.shape == (5, 1, 28, 28)
    assert d.train_images.dtype == torch.float32 and d.val_labels.dtype == torch.int64
    expected = torch.from_numpy(arrays[sources.TEST_IMAGES]).float().unsqueeze(1) / 255
    torch.testing.assert_close(d.val_images, expected, rtol=0, atol=0)
    assert d.train_labels.tolist() == arrays[sources.TRAIN_LABELS].tolist()
    assert d.classes[9] == "Ankle boot" and d.name == "Fashion-MNIST"


def test_load_mnist_finds_files_in_the_data_folder(data_dir):
    write_fake_mnist(data_dir / "mnist")
    d = data.load_mnist("mnist", verify=False)
    assert len(d.train_images) == 12 and d.classes == [str(i) for i in range(10)]


def test_load_mnist_download_fetches_only_missing_files(data_dir, tmp_path, monkeypatch):
    # A fake "server" folder, and a registry that points at it through file:// URLs.
    server = tmp_path / "server"
    arrays = write_fake_mnist(server)
    registry = tuple(
        sources.RemoteFile(name, ((server / name).as_uri(),), sha256_of(server / name), None)
        for name in arrays
    )
    monkeypatch.setitem(sources.DATASETS, "mnist", registry)
    write_idx(data_dir / "mnist" / sources.TEST_LABELS, arrays[sources.TEST_LABELS], compress=True)
    before = (data_dir / "mnist" / sources.TEST_LABELS).stat().st_mtime_ns

    d = data.load_mnist("mnist", download=True)
    assert sorted(p.name for p in (data_dir / "mnist").iterdir()) == sorted(arrays)
    assert (
        data_dir / "mnist" / sources.TEST_LABELS
    ).stat().st_mtime_ns == before  # not downloaded again
    assert d.val_labels.tolist() == arrays[sources.TEST_LABELS].tolist()


# ---------------------------------------------------------------- fetch


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A file to "download" through a file:// URL."""
    path = tmp_path / "server" / "payload.bin"
    path.parent.mkdir()
    # > 1 chunk, so streaming is exercised
    path.write_bytes(np.random.default_rng(2).bytes(3_000_000))
    return path


def test_fetch_copies_a_verified_file(tmp_path, remote):
    dest = tmp_path / "out" / "sub" / "payload.bin"
    got = data.fetch([remote.as_uri()], dest, sha256_of(remote), what="test payload")
    assert got == dest and dest.read_bytes() == remote.read_bytes()
    assert list(dest.parent.iterdir()) == [dest]  # no temp file left


def test_fetch_tries_the_next_mirror(tmp_path, remote):
    dest = tmp_path / "out" / "payload.bin"
    missing = (tmp_path / "nowhere" / "payload.bin").as_uri()
    data.fetch([missing, remote.as_uri()], dest, sha256_of(remote), what="test payload")
    assert dest.read_bytes() == remote.read_bytes()


def test_fetch_checksum_mismatch_writes_nothing(tmp_path, remote):
    dest = tmp_path / "out" / "payload.bin"
    wrong = "0" * 64
    with pytest.raises(data.DownloadError) as err:
        data.fetch([remote.as_uri()], dest, wrong, what="test payload")
    message = str(err.value)
    assert wrong in message and sha256_of(remote) in message  # expected and got
    assert "nothing was written" in message
    assert list(dest.parent.iterdir()) == []  # neither dest nor a temp file


def test_fetch_unreachable_url_is_a_helpful_error(tmp_path):
    dest = tmp_path / "out" / "train-images-idx3-ubyte.gz"
    url = (tmp_path / "no" / "such" / "file.gz").as_uri()
    with pytest.raises(data.DownloadError) as err:
        data.fetch([url], dest, "0" * 64, what="MNIST train images")
    message = str(err.value)
    assert "MNIST train images" in message and url in message
    assert "internet connection" in message and "GENAI_DATA" in message
    assert "'train-images-idx3-ubyte.gz'" in message and str(dest.parent) in message
    assert list(dest.parent.iterdir()) == []


def test_fetch_interrupted_download_writes_nothing(tmp_path, remote, monkeypatch):
    class DropsAfterOneChunk:
        """A response whose connection breaks after the first chunk."""

        def __init__(self) -> None:
            self.calls = 0

        def read(self, n: int) -> bytes:
            self.calls += 1
            if self.calls > 1:
                raise ConnectionResetError("connection reset by peer")
            return b"x" * n

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

    monkeypatch.setattr(
        download.urllib.request, "urlopen", lambda url, timeout: DropsAfterOneChunk()
    )
    dest = tmp_path / "out" / "payload.bin"
    with pytest.raises(data.DownloadError, match="connection reset"):
        data.fetch(
            ["https://example.invalid/payload.bin"], dest, sha256_of(remote), what="test payload"
        )
    assert list(dest.parent.iterdir()) == []


def test_a_killed_downloads_partial_file_is_removed_by_the_next_one(tmp_path, remote):
    """SIGKILL leaves a hidden .part file (no cleanup code runs); the next download removes it."""
    dest = tmp_path / "out" / "payload.bin"
    dest.parent.mkdir()
    orphan = dest.parent / ".payload.bin.k3x9q.part"
    orphan.write_bytes(b"half a file")
    other = dest.parent / ".other.bin.k3x9q.part"  # another file's download: not ours to remove
    other.write_bytes(b"x")
    data.fetch([remote.as_uri()], dest, sha256_of(remote), what="test payload")
    assert sorted(p.name for p in dest.parent.iterdir()) == [".other.bin.k3x9q.part", "payload.bin"]


# ---------------------------------------------------------------- text


def test_pydoc_text_is_ascii_and_deterministic():
    text = data.load_text()
    assert len(text) > 100_000
    assert set(text) <= {"\n"} | {chr(i) for i in range(32, 127)}
    assert "\n\n\n" not in text and " \n" not in text
    assert "for" in text and "assert" in text
    assert data.load_text("pydoc") == text


def test_clean_to_ascii_keeps_the_obvious_equivalents():
    # accent, nbsp, ellipsis, sharp s, bell
    dirty = (
        "\u201cQuoted\u201d \u2018it\u2019s\u2019 a\u2013b\u2014c "  # curly quotes, dashes
        "caf\u00e9\u00a0ok\u2026 \u00df\x07end  \n\n\n\nnext"
    )
    assert data.clean_to_ascii(dirty) == "\"Quoted\" 'it's' a-b--c cafe ok... end\n\nnext\n"


def test_unknown_text_lists_known_names():
    with pytest.raises(ValueError) as err:
        data.load_text("war_and_peace")
    assert all(repr(name) in str(err.value) for name in data.TEXT_NAMES)


def test_missing_tinyshakespeare_says_how_to_download(data_dir):
    with pytest.raises(FileNotFoundError) as err:
        data.load_text("tinyshakespeare")
    message = str(err.value)
    assert 'genai_lib.data.load_text("tinyshakespeare", download=True)' in message
    assert str(data_dir / "tinyshakespeare") in message


def test_corrupt_tinyshakespeare_is_a_clear_error(data_dir):
    path = data_dir / "tinyshakespeare" / "tinyshakespeare.txt"
    path.parent.mkdir()
    path.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n")  # cut short
    with pytest.raises(ValueError) as err:
        data.load_text("tinyshakespeare")
    message = str(err.value)
    assert str(path) in message and sources.TINYSHAKESPEARE.sha256 in message
    assert "1,115,394" in message and "download=True" in message


def test_tinyshakespeare_download_is_verified_and_loaded(data_dir, tmp_path, monkeypatch):
    server = tmp_path / "input.txt"
    server.write_bytes(b"ROMEO:\nBut soft!\r\n")  # \r\n must survive as it is
    fake = sources.RemoteFile("tinyshakespeare.txt", (server.as_uri(),), sha256_of(server), 18)
    monkeypatch.setattr(sources, "TINYSHAKESPEARE", fake)
    assert data.load_text("tinyshakespeare", download=True) == "ROMEO:\nBut soft!\r\n"
    assert (data_dir / "tinyshakespeare" / "tinyshakespeare.txt").is_file()


# ---------------------------------------------------------------- tokenizer


def test_char_tokenizer_round_trip():
    text = "To be, or not to be: that is the question.\n"
    tok = data.CharTokenizer.from_text(text)
    assert tok.chars == sorted(set(text)) and tok.vocab_size == len(set(text))
    ids = tok.encode(text)
    assert len(ids) == len(text) and all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text
    assert tok.decode(torch.tensor(ids)) == text


def test_char_tokenizer_rejects_bad_ids():
    tok = data.CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="-1"):
        tok.decode([0, -1])  # would silently decode as "c" without the check
    with pytest.raises(ValueError, match="1-D"):
        tok.decode(torch.zeros(2, 3, dtype=torch.long))


def test_unknown_character_error_names_char_and_position():
    tok = data.CharTokenizer.from_text("hello world")
    with pytest.raises(data.UnknownCharacterError) as err:
        tok.encode("hello wörld")
    assert isinstance(err.value, ValueError)
    assert err.value.char == "ö" and err.value.position == 7
    message = str(err.value)
    assert "'ö'" in message and "position 7" in message and "hello w" in message
    assert "' dehlorw'" in message  # the vocabulary, so the learner sees what is allowed


def test_char_tokenizer_to_dict_from_dict():
    tok = data.CharTokenizer.from_text("abc\n xyz")
    state = tok.to_dict()
    restored = data.CharTokenizer.from_dict(json.loads(json.dumps(state)))
    assert restored == tok and restored.encode("zab\n") == tok.encode("zab\n")
    with pytest.raises(ValueError):
        data.CharTokenizer.from_dict({"type": "bpe", "chars": "abc"})


def test_split_train_val_is_contiguous():
    tokens = torch.arange(100)
    train, val = data.split_train_val(tokens, val_fraction=0.1)
    assert torch.equal(train, torch.arange(90)) and torch.equal(val, torch.arange(90, 100))
    with pytest.raises(ValueError):
        data.split_train_val(tokens, val_fraction=1.5)


def test_stdlib_source_is_offline_python_in_ascii():
    from genai_lib.data import load_text

    code = load_text("stdlib")
    assert code.startswith("# file: __future__.py\n") or code.startswith("# file: _")
    assert 1_000_000 <= len(code) < 1_400_000
    # the base model's ASCII vocabulary covers it
    assert all(c == "\n" or " " <= c <= "~" for c in code)
    assert code.count("def ") > 1000 and "# file: this.py" not in code  # about 1,600 on Python 3.11
    assert load_text("stdlib") == code  # deterministic


def test_the_benchmarks_t10k_split_holds_out_every_fifth_image(tmp_path):
    images = np.arange(20 * 28 * 28, dtype=np.uint8).reshape(20, 28, 28)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, compress=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", (np.arange(20) % 10).astype(np.uint8))
    split = data.mnist_t10k_split(tmp_path, verify=False)
    assert (len(split.train_images), len(split.val_images)) == (16, 4)
    assert split.val_labels.tolist() == [4, 9, 4, 9]  # indices 4, 9, 14, 19
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        data.mnist_t10k_split(tmp_path / "elsewhere")


# ---------------------------------------------------------------- files copied in by hand are verified


def pinned_registry(server: Path, unpacked_sha256: bool = True) -> tuple[sources.RemoteFile, ...]:
    """A registry pinning the files in ``server`` as the real MNIST's are pinned: the .gz's own
    SHA-256, plus MD5 (and, if asked, SHA-256) of what it unpacks to."""
    files = []
    for name in (
        sources.TRAIN_IMAGES,
        sources.TRAIN_LABELS,
        sources.TEST_IMAGES,
        sources.TEST_LABELS,
    ):
        contents = gzip.decompress((server / name).read_bytes())
        files.append(
            sources.RemoteFile(
                name,
                ((server / name).as_uri(),),
                sha256_of(server / name),
                None,
                unpacked_md5=hashlib.md5(contents).hexdigest(),
                unpacked_sha256=hashlib.sha256(contents).hexdigest() if unpacked_sha256 else None,
            )
        )
    return tuple(files)


@pytest.fixture
def real_mnist(data_dir, tmp_path, monkeypatch) -> dict:
    """'The real MNIST' for these tests: small files on a file:// server, pinned in the registry."""
    arrays = write_fake_mnist(tmp_path / "server")
    monkeypatch.setitem(sources.DATASETS, "mnist", pinned_registry(tmp_path / "server"))
    return arrays


def test_fake_well_formed_idx_files_copied_in_are_refused(real_mnist, data_dir):
    # The reviewer's probe: 20 images and labels up to 200, well-formed IDX, under $GENAI_DATA/mnist.
    rng = np.random.default_rng(5)
    for name in real_mnist:
        # 10..200
        array = rng.integers(0, 256, (20, 28, 28)) if "images" in name else np.arange(20) * 10 + 10
        write_idx(data_dir / "mnist" / name, array.astype(np.uint8), compress=True)
    with pytest.raises(data.DataFileError) as err:
        data.load_mnist("mnist")
    message = str(err.value)
    assert (
        str(data_dir / "mnist" / sources.TRAIN_IMAGES) in message
        and "is not the expected" in message
    )
    assert 'load_mnist("mnist", download=True)' in message and "verify=False" in message
    # Turning the check off on purpose still refuses labels outside the ten classes.
    with pytest.raises(ValueError, match="labels go up to 200, but there are only 10 classes"):
        data.load_mnist("mnist", verify=False)


@pytest.mark.parametrize("pin", ["sha256", "md5 only"])
def test_a_copy_gzipped_again_or_unpacked_is_accepted_and_one_flipped_byte_is_not(
    data_dir, tmp_path, monkeypatch, pin
):
    arrays = write_fake_mnist(tmp_path / "server")
    monkeypatch.setitem(
        sources.DATASETS,
        "mnist",
        pinned_registry(tmp_path / "server", unpacked_sha256=(pin == "sha256")),
    )
    folder = data_dir / "mnist"
    folder.mkdir()
    # Honest copies: the train files gzipped again (another header), the test files unpacked.
    for name in (sources.TRAIN_IMAGES, sources.TRAIN_LABELS):
        contents = gzip.decompress((tmp_path / "server" / name).read_bytes())
        again = gzip.compress(contents, mtime=12345)
        assert again != (tmp_path / "server" / name).read_bytes()
        (folder / name).write_bytes(again)
    for name in (sources.TEST_IMAGES, sources.TEST_LABELS):
        write_idx(folder / name.removesuffix(".gz"), arrays[name])
    d = data.load_mnist("mnist")
    assert d.val_labels.tolist() == arrays[sources.TEST_LABELS].tolist()

    # One pixel byte flipped in the unpacked test images: refused, and the file is named.
    unpacked = folder / sources.TEST_IMAGES.removesuffix(".gz")
    raw = bytearray(unpacked.read_bytes())
    raw[-1] ^= 0x01
    unpacked.write_bytes(bytes(raw))
    with pytest.raises(
        data.DataFileError, match=f"{unpacked.name} is not the expected {sources.TEST_IMAGES}"
    ):
        data.load_mnist("mnist")
    assert unpacked.exists()  # never deleted for the user


def test_a_flipped_byte_inside_a_gzip_copy_is_refused(real_mnist, data_dir, tmp_path):
    folder = data_dir / "mnist"
    folder.mkdir()
    for name in real_mnist:
        (folder / name).write_bytes((tmp_path / "server" / name).read_bytes())
    data.load_mnist("mnist")
    damaged = bytearray((folder / sources.TEST_IMAGES).read_bytes())
    damaged[len(damaged) // 2] ^= 0x40
    (folder / sources.TEST_IMAGES).write_bytes(bytes(damaged))
    with pytest.raises(data.DataFileError, match=sources.TEST_IMAGES):
        data.load_mnist("mnist")


def test_a_checked_file_is_not_hashed_again_until_it_changes(
    real_mnist, data_dir, tmp_path, monkeypatch
):
    folder = data_dir / "mnist"
    folder.mkdir()
    for name in real_mnist:
        (folder / name).write_bytes((tmp_path / "server" / name).read_bytes())
    hashed = []
    real_hash = verify._hash
    monkeypatch.setattr(
        verify, "_hash", lambda stream, *d: hashed.append(stream) or real_hash(stream, *d)
    )
    data.load_mnist("mnist")
    assert len(hashed) == 4 and (data_dir / verify.CACHE_NAME).is_file()
    hashed.clear()
    data.load_mnist("mnist")
    assert hashed == []  # remembered
    # Other bytes, a later modification time: checked again, and refused.
    labels = folder / sources.TEST_LABELS
    labels.write_bytes(gzip.compress(b"\0\0\x08\x01" + struct.pack(">I", 5) + bytes(5)))
    with pytest.raises(data.DataFileError, match=sources.TEST_LABELS):
        data.load_mnist("mnist")


def test_data_fetch_says_verified_only_after_a_check(real_mnist, data_dir, capsys):
    from genai_lib import cli

    write_fake_mnist(data_dir / "mnist", n_train=20)  # well-formed, not the pinned files
    assert cli.main(["data", "fetch", "mnist"]) == 1
    err = capsys.readouterr().err
    assert "mnist: FAILED" in err and "is not the expected" in err
    for path in (data_dir / "mnist").iterdir():
        path.unlink()
    assert cli.main(["data", "fetch", "mnist"]) == 0  # downloads from the file:// server, checks
    assert "verified" in capsys.readouterr().out


SHARED_T10K = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.mark.skipif(
    not (SHARED_T10K / sources.TEST_IMAGES).is_file(), reason="no copy of MNIST's t10k files here"
)
def test_the_real_t10k_files_pass_and_a_flipped_pixel_does_not(data_dir, tmp_path):
    # A real copy, gzipped by someone else (its .gz digest is not the mirror's): accepted by its contents.
    split = data.mnist_t10k_split(SHARED_T10K)
    assert len(split.train_images) == 8000
    for name in (sources.TEST_IMAGES, sources.TEST_LABELS):
        (tmp_path / name.removesuffix(".gz")).write_bytes(
            gzip.decompress((SHARED_T10K / name).read_bytes())
        )
    data.mnist_t10k_split(tmp_path)  # unpacked by hand: accepted
    images = tmp_path / sources.TEST_IMAGES.removesuffix(".gz")
    raw = bytearray(images.read_bytes())
    raw[16 + 28 * 14 + 14] ^= 0x80  # one pixel in the middle of the first digit
    images.write_bytes(bytes(raw))
    with pytest.raises(data.DataFileError, match="is not the expected"):
        data.mnist_t10k_split(tmp_path)


@pytest.mark.parametrize(
    "images, named",
    [
        (torch.full((2, 2), 255.0), ["[0, 1]", "255"]),
        (torch.ones(2, 2, dtype=torch.uint8), ["uint8", "x.float() / 255"]),
        (torch.full((2, 2), float("nan")), ["[0, 1]", "nan"]),
    ],
    ids=["0..255", "uint8", "nan"],
)
def test_binarize_refuses_what_is_not_a_grey_level_with_the_fix_named(images, named):
    with pytest.raises(ValueError) as err:
        data.binarize(images)
    for part in named:
        assert part in str(err.value), (part, str(err.value))
