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


def test_gpt_char_benchmark_reports_its_keys(tmp_path):
    from genai_lib.data import load_text

    corpus = tmp_path / "corpus.txt"
    text = load_text("pydoc")[:30_000]
    corpus.write_text(text, encoding="utf-8")
    vocab = len(set(text))
    for recipe in ("nanogpt", "best"):
        summary = last_json_line([str(BENCHMARKS / "gpt_char.py"), "--data", str(corpus), "--recipe", recipe,
                                  "--iters", "12"])
        assert set(summary) == {"recipe", "iters", "params", "val_loss_full", "tokens_per_s_median",
                                "train_s", "peak_rss_mb"}
        assert summary["recipe"] == recipe and summary["iters"] == 12
        assert summary["params"] == 795_904 + (vocab - 65) * 128  # the baby GPT (65 characters: 795,904)
        assert 0 < summary["val_loss_full"] < 6  # 12 steps: barely trained, but a finite loss per character
