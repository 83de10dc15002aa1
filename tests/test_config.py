"""Fast mode, device choice, seeding."""

import os
import subprocess
import sys

import pytest
import torch

from genai_lib import config


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("0", False),
        ("false", False),
        ("", False),
        (None, False),
    ],
)
def test_parse_flag_accepts_the_documented_values(text, expected):
    assert config.parse_flag("GENAI_FAST", text) is expected


@pytest.mark.parametrize("text", ["2", "fast", "maybe", "0.5"])
def test_parse_flag_rejects_anything_else_with_advice(text):
    with pytest.raises(ValueError, match=r"GENAI_FAST=1.*GENAI_FAST=0"):
        config.parse_flag("GENAI_FAST", text)


def test_an_invalid_genai_fast_stops_the_import_with_a_clear_message():
    env = {**os.environ, "GENAI_FAST": "sometimes"}
    result = subprocess.run(
        [sys.executable, "-c", "import genai_lib"], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "GENAI_FAST='sometimes' is not understood" in result.stderr


def test_fast_mode_is_on_under_pytest():
    # pyproject's [tool.pytest.ini_options] env sets it, and the notebooks rely on it.
    assert config.FAST is True
    assert config.pick(fast=1, full=2) == 1


def test_pick_returns_the_full_value_outside_fast_mode(monkeypatch):
    monkeypatch.setattr(config, "FAST", False)
    assert config.pick(fast=1, full=2) == 2


def test_get_device_defaults_to_what_the_machine_has(monkeypatch):
    monkeypatch.delenv("GENAI_DEVICE", raising=False)
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert config.get_device().type == expected


def test_get_device_honours_the_environment_and_the_argument(monkeypatch):
    monkeypatch.setenv("GENAI_DEVICE", "cpu")
    assert config.get_device() == torch.device("cpu")
    monkeypatch.setenv("GENAI_DEVICE", "auto")
    assert config.get_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        config.get_device("cuda")


def test_an_unknown_device_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown device 'gpu0'"):
        config.get_device("gpu0")


def test_seed_everything_repeats_random_draws():
    import random

    import numpy as np

    config.seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(3))
    config.seed_everything(7)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_data_dirs_order_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("GENAI_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dirs = config.data_dirs()
    assert dirs[0] == config.REPO_DATA_DIR
    assert dirs[-1] == tmp_path / "cache" / "genai_lib" == config.download_dir()
    monkeypatch.setenv("GENAI_DATA", str(tmp_path / "mine"))
    assert config.data_dirs() == [tmp_path / "mine"]


def test_progress_style_is_validated():
    assert config.parse_progress(None) == "auto" and config.parse_progress("TEXT") == "text"
    with pytest.raises(ValueError, match="GENAI_PROGRESS='bars' is not understood"):
        config.parse_progress("bars")


def test_get_device_takes_a_torch_device_as_well_as_a_name():
    assert config.get_device(torch.device("cpu")) == torch.device("cpu")
