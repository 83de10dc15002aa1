"""`python -m genai_lib doctor` tells the truth about this machine, and fails when a chapter's needs are missing."""

import importlib.metadata as metadata
import shutil

import pytest

from genai_lib import doctor, pretrained
from genai_lib.cli import main as cli_main


def test_doctor_reports_ready_here(capsys):
    assert cli_main(["doctor", "--no-benchmark"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "Python",
        "torch",
        "nbval",
        "device",
        "pydoc text (embedded)",
        "pretrained base",
        "verified",
        "download cache",
        "Ready",
    ):
        assert expected in out
    assert "FAIL" not in out


def test_a_missing_package_is_a_failure_with_the_fix(monkeypatch, capsys):
    real_version = metadata.version

    def version(name):
        if name == "nbval":
            raise metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(metadata, "version", version)
    assert cli_main(["doctor", "--no-benchmark"]) == 1
    out = capsys.readouterr().out
    assert (
        "[FAIL] nbval: missing" in out
        and "pip install -r requirements.txt" in out
        and "NOT READY" in out
    )


def test_a_tampered_base_model_is_a_failure(tmp_path, monkeypatch):
    folder = tmp_path / "pretrained"
    shutil.copytree(pretrained.DEFAULT_DIR, folder)
    weights = folder / "base_pydoc.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    monkeypatch.setattr(pretrained, "DEFAULT_DIR", folder)
    base = [c for c in doctor.check_data() if c.name.startswith("pretrained base")]
    assert len(base) == 1 and not base[0].ok and base[0].required
    assert "SHA-256" in base[0].detail


def test_a_tampered_digit_classifier_is_a_failure(tmp_path, monkeypatch):
    from genai_lib import classifiers

    folder = tmp_path / "classifiers"
    shutil.copytree(classifiers.PINNED_DIR, folder)
    weights = folder / "digits.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    monkeypatch.setattr(classifiers, "PINNED_DIR", folder)
    judge = [c for c in doctor.check_data() if c.name.startswith("digit classifier")]
    assert len(judge) == 1 and not judge[0].ok and judge[0].required
    assert "SHA-256" in judge[0].detail


def test_optional_data_is_reported_but_never_required(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_DATA", str(tmp_path))  # an empty data folder: nothing downloaded
    optional = [c for c in doctor.check_data() if "(optional)" in c.name]
    assert len(optional) == 3 and not any(c.required or c.ok for c in optional)
    assert all("not downloaded" in c.detail for c in optional)


def test_estimates_scale_the_reference_times():
    lines = doctor.estimates(2 * doctor.REFERENCE_STEP_S)
    assert len(lines) == len(doctor.REFERENCE_MINUTES) + 1  # and a total
    fast, full = doctor.REFERENCE_MINUTES["04_finetuning"]
    line = next(line for line in lines if "04_finetuning" in line)
    assert f"{2 * fast:4.1f}" in line and f"{2 * full:5.1f}" in line
    assert doctor.micro_benchmark(steps=1) > 0


def test_a_bad_genai_device_is_a_failed_check_not_a_crash(monkeypatch, capsys):
    # this machine has no such GPU (CI has none at all)
    monkeypatch.setenv("GENAI_DEVICE", "cuda:7")
    monkeypatch.setattr(doctor.torch.cuda, "is_available", lambda: False)
    # the micro-benchmark is skipped: it would train on that device
    assert cli_main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] device" in out and "GENAI_DEVICE='cuda:7'" in out and "NOT READY" in out


def test_genai_data_pointing_at_a_file_says_so(tmp_path, monkeypatch):
    from genai_lib.config import data_dirs

    a_file = tmp_path / "mnist.zip"
    a_file.write_bytes(b"")
    monkeypatch.setenv("GENAI_DATA", str(a_file))
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        data_dirs()
    optional = [c for c in doctor.check_data() if "(optional)" in c.name]
    assert all("is a file, not a folder" in c.detail for c in optional)
