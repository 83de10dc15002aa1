"""The benchmark scripts still run and end with their JSON line (a tiny run; the figures are not checked)."""

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def last_json_line(args: list[str]) -> dict:
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_vae_benchmark_reports_its_keys():
    summary = last_json_line([str(BENCHMARKS / "vae.py"), "--epochs", "1", "--k", "5"])
    assert summary["dataset"] == "digits" and summary["epochs"] == 1
    for model in ("ours", "classic"):
        assert set(summary[model]) == {"neg_elbo", "iwae_nll", "s_per_epoch"}
        # a bound, within noise
        assert summary[model]["iwae_nll"] <= summary[model]["neg_elbo"] + 1.0


def test_gpt_char_benchmark_reports_its_keys(tmp_path):
    from genai_lib.data import load_text

    corpus = tmp_path / "corpus.txt"
    text = load_text("pydoc")[:30_000]
    corpus.write_text(text, encoding="utf-8")
    vocab = len(set(text))
    # parameters without the position table for 65 characters (tiny Shakespeare's), as nanoGPT counts
    params_at_65 = {"nanogpt": 795_904, "best": 795_904, "speedrun": 205_312}
    for recipe, params in params_at_65.items():
        summary = last_json_line(
            [
                str(BENCHMARKS / "gpt_char.py"),
                "--data",
                str(corpus),
                "--recipe",
                recipe,
                "--iters",
                "12",
            ]
        )
        assert set(summary) == {
            "recipe",
            "iters",
            "params",
            "val_loss_full",
            "tokens_per_s_median",
            "train_s",
            "peak_rss_mb",
        }
        assert summary["recipe"] == recipe and summary["iters"] == 12
        assert summary["params"] == params + (vocab - 65) * 128
        # 12 steps: barely trained, but a finite loss per character
        assert 0 < summary["val_loss_full"] < 6


def test_finetune_benchmark_reports_its_keys():
    summary = last_json_line(
        [
            str(BENCHMARKS / "finetune.py"),
            "--steps",
            "4",
            "--instruct-steps",
            "4",
            "--instruct-train",
            "64",
            "--instruct-val",
            "8",
        ]
    )
    assert set(summary["methods"]) == {"scratch", "full", "frozen", "lora"}
    for figures in summary["methods"].values():
        assert set(figures) == {
            "trainable_params",
            "total_params",
            "target_val",
            "source_val",
            "s_per_step",
            "peak_mb",
        }
    lora = summary["methods"]["lora"]
    # rank 4 on a 128-wide model: 3.9%
    assert lora["trainable_params"] / lora["total_params"] < 0.05
    # the base already knows English: after 4 steps on code, its pydoc loss is far below a new model's
    assert (
        summary["methods"]["full"]["source_val"] < summary["methods"]["scratch"]["source_val"] - 1.0
    )
    assert set(summary["instruct"]) == {"base_em", "full_em", "lora_em"}


def test_diffusion_benchmark_reports_its_keys():
    summary = last_json_line(
        [
            str(BENCHMARKS / "diffusion.py"),
            "--steps",
            "10",
            "--gan-steps",
            "10",
            "--vae-epochs",
            "1",
            "--timesteps",
            "50",
            "--sweep",
            "1",
            "--guidance",
            "2",
        ]
    )
    assert set(summary) == {"fd_floor", "dcgan_fd", "samplers", "guidance", "cond_acc", "train_s"}
    assert set(summary["samplers"]) == {"ddpm", "ddim50", "ddim20"}
    for sampler in summary["samplers"].values():
        assert set(sampler) == {"fd", "coverage", "s_per_100"}
        assert sampler["fd"] > 0 and 1 <= sampler["coverage"] <= 10 and sampler["s_per_100"] > 0
    assert summary["guidance"] == 2.0 and 0 <= summary["cond_acc"] <= 1


def test_the_unconditional_diffusion_benchmark_trains_only_the_dcgan_and_the_unconditional_model():
    args = [str(BENCHMARKS / "diffusion.py"), "--unconditional-only", "--base-channels", "8"]
    args += ["--steps", "10", "--gan-steps", "10", "--timesteps", "50"]
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"fd_floor", "dcgan_fd", "samplers", "train_s"}
    assert (
        "VAE" not in result.stdout
        and "cGAN" not in result.stdout
        and "guidance" not in result.stdout
    )


def test_text_to_image_benchmark_reports_its_keys():
    summary = last_json_line(
        [
            str(BENCHMARKS / "text_to_image.py"),
            "--clip-steps",
            "10",
            "--steps",
            "10",
            "--sweep",
            "1",
            "--per-combo",
            "4",
            "--n-eval",
            "20",
        ]
    )
    assert set(summary["clip"]) >= {"zero_shot_acc", "r_at_1_text_to_image", "r_at_1_image_to_text"}
    assert set(summary["t2i"]) >= {
        "guidance",
        "digit_acc",
        "attribute_acc",
        "heldout_combo_digit_acc",
        "heldout_combo_attribute_acc",
        "fd",
        "fd_floor",
        "clip_score",
        "train_s",
        "s_per_100",
    }
    assert summary["t2i"]["guidance"] == 2.0 and set(summary["sweep"]) == {"1", "2"}
    for key in (
        "digit_acc",
        "attribute_acc",
        "heldout_combo_digit_acc",
        "heldout_combo_attribute_acc",
    ):
        assert 0 <= summary["t2i"][key] <= 1
    assert summary["t2i"]["fd"] > 0 and summary["t2i"]["s_per_100"] > 0


def test_scaling_benchmark_reports_its_keys():
    summary = last_json_line(
        [
            str(BENCHMARKS / "scaling.py"),
            "--steps",
            "8",
            "--repeats",
            "1",
            "--only",
            "one_process_1_thread",
            "two_processes_1_thread",
        ]
    )
    assert set(summary) == {"configs"}
    assert set(summary["configs"]) == {"one_process_1_thread", "two_processes_1_thread"}
    for figures in summary["configs"].values():
        assert (
            set(figures) == {"tokens_per_s_median", "final_loss"}
            and figures["tokens_per_s_median"] > 0
        )
    # the same 32 windows a step, whole or split over two processes: the same training
    one, two = (
        summary["configs"][k]["final_loss"]
        for k in ("one_process_1_thread", "two_processes_1_thread")
    )
    assert abs(one - two) < 1e-3


def test_lora_frontier_benchmark_reports_its_keys():
    summary = last_json_line(
        [
            str(BENCHMARKS / "lora_frontier.py"),
            "--steps",
            "3",
            "--seeds",
            "0",
            "--lrs",
            "1e-4",
            "1e-3",
            "--methods",
            "full",
            "lora_r4",
            "lora_r8",
        ]
    )
    assert set(summary) == {"base", "frontier", "lora_vs_full"}
    assert set(summary["frontier"]) == {"full", "lora_r4", "lora_r8"}
    assert [p["lr"] for p in summary["frontier"]["full"]] == [1e-4, 1e-3]
    # rank 8 trains 7.4% of the parameters: outside the 5% budget the comparison is about
    assert set(summary["lora_vs_full"]) == {"lora_r4"}
    assert set(summary["lora_vs_full"]["lora_r4"]) == {
        "share",
        "lr",
        "target",
        "source",
        "full_source_at_same_target",
        "source_gap",
        "full_dominates",
    }


def test_the_frontier_is_read_between_the_two_rates_that_bracket_the_target():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from lora_frontier import source_on_frontier
    finally:
        sys.path.remove(str(BENCHMARKS))
    # full fine-tuning at three rates: learns more and forgets more as the rate grows
    points = [(1.60, 1.22), (1.40, 1.26), (1.30, 1.32)]
    assert abs(source_on_frontier(points, 1.50) - 1.24) < 1e-12  # halfway between the first two
    assert abs(source_on_frontier(points, 1.35) - 1.29) < 1e-12
    assert source_on_frontier(points, 1.40) == 1.26
    # wrong answers it must not give: the nearest point's value, or an extrapolation
    assert source_on_frontier(points, 1.70) is None and source_on_frontier(points, 1.20) is None
