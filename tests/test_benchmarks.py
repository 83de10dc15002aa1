"""The benchmark scripts still run and end with their JSON line (a tiny run; the figures are not checked)."""
import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def last_json_line(args: list[str]) -> dict:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                            cwd=BENCHMARKS.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_vae_benchmark_reports_its_keys():
    summary = last_json_line([str(BENCHMARKS / "vae.py"), "--epochs", "1", "--k", "5"])
    assert summary["dataset"] == "digits" and summary["epochs"] == 1
    for model in ("ours", "classic"):
        assert set(summary[model]) == {"neg_elbo", "iwae_nll", "s_per_epoch"}
        assert summary[model]["iwae_nll"] <= summary[model]["neg_elbo"] + 1.0  # a bound, within noise
