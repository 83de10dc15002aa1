"""Scaling the training loop: gradient accumulation, DDP under torchrun, torch.compile, the GPT script.

Tolerances: the runs compared here add the same numbers in another order
(a mean over 2b rows against the mean of two means over b rows, an all-reduce
against a local sum). In float32 that changes the last bits of a gradient,
about 1e-7 relative; a few Adam steps of size ~lr carry that into the weights
as differences of ~1e-7 absolute. ``atol=1e-5`` leaves room for that and
nothing else: a step that used other data or other gradients moves weights
by ~1e-2 (the learning rate).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from genai_lib import checkpoint as ckpt
from genai_lib import distributed
from genai_lib.train import EpochBatches, fit
from genai_lib.train_gpt import GPTRun, parse_args, read_log, run

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import make_data, make_model, train  # noqa: E402

CLOSE = dict(atol=1e-5, rtol=1e-4)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(
            a[name], b[name], **CLOSE, msg=lambda m, name=name: f"{name}: {m}"
        )


def torchrun(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """2 gloo processes on this machine, talking over loopback only; killed if they hang."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        *args,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    return done


# ---------------------------------------------------------------- accumulation


@pytest.mark.parametrize("micro, k", [(8, 4), (16, 2)])
def test_accumulation_gives_the_update_of_one_bigger_batch(micro, k):
    big = make_model(0.0, seed=1)
    big_history = train(big, micro * k, steps=5)
    accumulated = make_model(0.0, seed=1)
    acc_history = train(accumulated, micro, steps=5, accumulate=k)
    assert_same_weights(big.state_dict(), accumulated.state_dict())
    # the logged loss is the mean over the micro-batches: the big batch's loss
    torch.testing.assert_close(acc_history.get("loss")[1], big_history.get("loss")[1], **CLOSE)


def test_accumulation_differs_from_one_small_batch():
    """The comparison above can fail: k micro-batches are not one micro-batch."""
    small = make_model(0.0, seed=1)
    train(small, 8, steps=5)
    accumulated = make_model(0.0, seed=1)
    train(accumulated, 8, steps=5, accumulate=4)
    assert (small[0].weight - accumulated[0].weight).abs().max() > 1e-3


def test_epoch_batches_parts_hold_the_rows_of_one_big_batch():
    x = torch.arange(100.0)
    big = EpochBatches(x, 24, seed=3)
    parts = EpochBatches(x, 6, seed=3, parts=4)
    for step in range(10):  # across epoch boundaries: 4 steps of 24 rows per epoch
        together = torch.cat([parts(step * 4 + j) for j in range(4)])
        assert torch.equal(together, big(step))


def test_epoch_batches_given_to_fit_are_cut_into_parts_too():
    x, y = make_data()
    big = make_model(0.0, seed=1)
    train(big, 32, steps=4)
    given = make_model(0.0, seed=1)
    fit(
        given,
        lambda b: ((given(b[0]) - b[1]) ** 2).mean(),
        EpochBatches((x, y), 8),
        steps=4,
        lr=1e-2,
        warmup_steps=1,
        device="cpu",
        progress=False,
        accumulate=4,
    )
    assert_same_weights(big.state_dict(), given.state_dict())


def test_accumulate_and_batch_errors():
    model = make_model(0.0, seed=1)
    with pytest.raises(ValueError, match="accumulate must be at least 1"):
        train(model, 8, steps=1, accumulate=0)
    with pytest.raises(
        ValueError,
        match=r"One step's batch \(4 parts of batch_size=32\) is larger than the dataset \(96",
    ):
        train(model, 32, steps=1, accumulate=4)


# ---------------------------------------------------------------- DDP


def test_two_gloo_processes_match_one_process_with_twice_the_batch(tmp_path):
    b, steps = 8, 6
    torchrun(str(Path(__file__).parent / "ddp_worker.py"), str(tmp_path), str(b), str(steps))
    result = torch.load(tmp_path / "result.pt")

    single = make_model(0.0, seed=1)  # rank 0's initial weights; rank 1 started from others
    history = train(single, 2 * b, steps)
    assert_same_weights(single.state_dict(), result["plain"])
    # rank 0 logged the mean over both ranks: the loss of the whole batch of 2b
    torch.testing.assert_close(
        [r["loss"] for r in result["plain_history"]], history.get("loss")[1], **CLOSE
    )

    # stopped half-way and resumed under DDP: exactly the uninterrupted run, dropout masks included
    for name, value in result["uninterrupted"].items():
        assert torch.equal(value, result["resumed"][name]), name
    # and not by accident: dropout makes the DDP run differ from the single process
    assert not torch.equal(result["uninterrupted"]["0.weight"], single.state_dict()["0.weight"])

    # a GAN, two objectives: both models stay identical on both ranks, and both ranks log the same means
    ranks = [torch.load(tmp_path / f"gan_rank{r}.pt") for r in (0, 1)]
    for model in ("generator", "discriminator"):
        for name, value in ranks[0][model].items():
            assert torch.equal(value, ranks[1][model][name]), f"{model}.{name}"
    assert ranks[0]["history"] == ranks[1]["history"]
    assert {"disc/loss", "gen/loss"} <= set(ranks[0]["history"][-1])


def test_outside_torchrun_the_world_has_one_process(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    process = distributed.init(torch.device("cpu"))
    assert (process.rank, process.world_size, process.is_main, process.distributed) == (
        0,
        1,
        True,
        False,
    )
    values = torch.tensor([1.0, 2.0])
    assert distributed.mean_over_ranks(values) is values
    assert distributed.gather_objects({"a": 1}) == [{"a": 1}]


def test_each_rank_takes_its_own_gpu_and_one_process_keeps_its_device(monkeypatch):
    """No GPU needed: torch.device("cuda") is only a name, and set_device is recorded, not called."""
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    one = distributed.Process()
    assert distributed.device_for(torch.device("cuda"), one) == torch.device("cuda")
    assert distributed.device_for(torch.device("cpu"), one) == torch.device("cpu")
    assert chosen == []  # a plain "cuda" has no index: set_device would raise on it
    rank_1 = distributed.Process(rank=1, world_size=2, local_rank=1)
    assert distributed.device_for(torch.device("cuda"), rank_1) == torch.device("cuda", 1)
    assert distributed.device_for(torch.device("cpu"), rank_1) == torch.device("cpu")
    assert chosen == [torch.device("cuda", 1)]


WORKER = str(Path(__file__).parent / "ddp_objectives_worker.py")
KINDS = ("vae", "gan", "gpt", "diffusion", "lora")
# Their losses draw no random numbers (no dropout here), so 2 ranks with b rows each take the step one
# process takes with 2b rows. The others draw noise (the VAE's epsilon, the GAN's z, diffusion's t and
# noise): each rank draws its own, so they can match each other but not one process.
SAME_AS_ONE_PROCESS = ("gpt", "lora")


def run_kinds(tmp_path: Path, *flags: str) -> tuple[dict, dict, dict]:
    """Each kind of objective trained on 2 gloo ranks (batch 8 each) and in one process (batch 16)."""
    (tmp_path / "two").mkdir()
    (tmp_path / "one").mkdir()
    torchrun(WORKER, str(tmp_path / "two"), "8", *flags)
    one = subprocess.run(
        [sys.executable, WORKER, str(tmp_path / "one"), "16", *flags],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    load = lambda path: torch.load(path, weights_only=True)  # noqa: E731
    return (
        load(tmp_path / "two/rank0.pt"),
        load(tmp_path / "two/rank1.pt"),
        load(tmp_path / "one/rank0.pt"),
    )


@pytest.mark.parametrize("flags", [(), ("--compile",)], ids=["eager", "compiled"])
def test_every_kind_of_objective_ends_bit_identical_on_every_rank(tmp_path, flags):
    """The VAE's loss calls model.encode and model.decode, never model(x): wrapping the objective covers it."""
    rank0, rank1, one = run_kinds(tmp_path, *flags)
    assert set(rank0) == set(KINDS)
    for kind in KINDS:
        for name, value in rank0[kind].items():
            assert torch.equal(value, rank1[kind][name]), (
                f"{kind}: {name} differs between the ranks"
            )
    for kind in SAME_AS_ONE_PROCESS:
        assert_same_weights(rank0[kind], one[kind])


def test_the_rank_check_fails_when_only_the_model_is_wrapped(tmp_path):
    """The check above can fail: DDP around the model while the loss is called directly syncs nothing."""
    rank0, rank1, _ = run_kinds(tmp_path, "--model-only")
    for kind in KINDS:
        assert any(not torch.equal(v, rank1[kind][k]) for k, v in rank0[kind].items()), kind


# ---------------------------------------------------------------- torch.compile


def test_compile_trains_the_same_model():
    """aot_eager traces the model into a graph as Inductor would, without needing a C++ compiler."""
    torch._dynamo.reset()
    eager = make_model(0.0, seed=1)
    train(eager, 16, steps=4)
    compiled = make_model(0.0, seed=1)
    train(compiled, 16, steps=4, compile="aot_eager")
    assert_same_weights(eager.state_dict(), compiled.state_dict())
    assert "forward" not in compiled.__dict__  # the model is left as it was


def test_compile_failure_falls_back_with_a_clear_warning():
    def broken_backend(graph_module, example_inputs):
        raise RuntimeError("no C++ compiler found (a stand-in for a machine without one)")

    torch._dynamo.reset()
    eager = make_model(0.0, seed=1)
    train(eager, 16, steps=4)
    fallback = make_model(0.0, seed=1)
    with pytest.warns(
        UserWarning,
        match=r"torch.compile failed on the first step .*no C\+\+ compiler.*"
        r"Training continues without it",
    ):
        train(fallback, 16, steps=4, compile=broken_backend)
    assert_same_weights(eager.state_dict(), fallback.state_dict())
    torch._dynamo.reset()


def test_errors_that_are_not_compile_errors_still_raise():
    model = make_model(0.0, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the compile attempt's warning; the error is what matters
        with pytest.raises(ValueError, match="must be a scalar"):
            fit(
                model,
                lambda b: (model(b[0]) - b[1]) ** 2,
                make_data(),
                steps=2,
                batch_size=8,
                device="cpu",
                progress=False,
                compile="aot_eager",
            )
    torch._dynamo.reset()


# ---------------------------------------------------------------- the script


def test_train_gpt_settings_from_the_command_line():
    settings = parse_args(
        [
            "--steps",
            "7",
            "--accumulate",
            "2",
            "--compile",
            "--stop-after",
            "3",
            "--precision",
            "bf16",
        ]
    )
    assert (settings.steps, settings.accumulate, settings.compile, settings.stop_after) == (
        7,
        2,
        True,
        3,
    )
    assert settings.precision == "bf16" and settings.n_layer == GPTRun().n_layer
    assert parse_args([]).progress == "text"
    for bad in (["--precision", "fp8"], ["--corpus", "wikipedia"], ["--steps", "many"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


@pytest.mark.parametrize(
    "bad, said",
    [
        (["--stop-after", "-1"], "--stop-after must be at least 1; got -1"),
        (["--batch-size", "0"], "--batch-size must be at least 1; got 0"),
        (["--log-every", "0"], "--log-every must be at least 1; got 0"),
        (["--lr", "-0.1"], "--lr positive"),
    ],
)
def test_train_gpt_refuses_numbers_that_would_train_nothing_or_crash_later(bad, said, capsys):
    """These used to exit 0 having trained nothing, or die deep inside torch."""
    with pytest.raises(SystemExit):
        parse_args(bad)
    assert said in capsys.readouterr().err


def test_train_gpt_under_torchrun_resumes_from_its_checkpoint(tmp_path):
    common = [
        "-m",
        "genai_lib.train_gpt",
        "--steps",
        "8",
        "--n-layer",
        "1",
        "--n-embd",
        "32",
        "--batch-size",
        "8",
        "--checkpoint",
        str(tmp_path / "gpt.pt"),
        "--log-file",
        str(tmp_path / "log.jsonl"),
        "--log-every",
        "2",
        "--device",
        "cpu",
        "--progress",
        "off",
    ]
    first = torchrun(*common, "--stop-after", "4")
    assert "4 steps on 2 process(es)" in first.stdout
    second = torchrun(*common)
    assert "Resumed from" in second.stdout and "8 steps on 2 process(es)" in second.stdout
    assert second.stdout.count("Resumed from") == 1  # rank 0 speaks; rank 1 is quiet

    records = read_log(tmp_path / "log.jsonl")
    summaries = [r for r in records if r["kind"] == "summary"]
    assert [(s["steps_done"], s["steps_this_run"], s["world_size"]) for s in summaries] == [
        (4, 4, 2),
        (8, 4, 2),
    ]
    train_steps = [r["step"] for r in records if r["kind"] == "history" and r["split"] == "train"]
    assert train_steps == [2, 4, 6, 8]  # each run logged its own steps once

    # the same 8 steps in one go, one process with the batch of both ranks, land on the same weights
    one = run(
        GPTRun(
            steps=8,
            n_layer=1,
            n_embd=32,
            batch_size=16,
            device="cpu",
            progress="off",
            log_every=2,
            checkpoint=str(tmp_path / "single.pt"),
        )
    )
    assert one["world_size"] == 1
    both = ckpt.load_file(tmp_path / "gpt.pt")["models"]["model"]
    single = ckpt.load_file(tmp_path / "single.pt")["models"]["model"]
    assert_same_weights(single, both)


def test_train_gpt_log_file_grows_as_it_trains(tmp_path):
    """A run killed outright keeps the steps it logged: rows are appended as they are logged, not at the end."""
    log = tmp_path / "log.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "genai_lib.train_gpt",
        "--steps",
        "100000",
        "--n-layer",
        "1",
        "--n-embd",
        "16",
        "--batch-size",
        "4",
        "--block-size",
        "16",
        "--log-every",
        "1",
        "--device",
        "cpu",
        "--progress",
        "off",
        "--log-file",
        str(log),
    ]
    worker = subprocess.Popen(
        cmd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            if log.is_file() and sum(1 for r in read_log(log) if r["kind"] == "history") >= 3:
                break
            time.sleep(0.2)
    finally:
        worker.kill()
        _, err = worker.communicate()
    records = read_log(log)
    history = [r for r in records if r["kind"] == "history"]
    assert len(history) >= 3, f"no history rows while training; stderr:\n{err[-2000:]}"
    assert [r["step"] for r in history[:3]] == [1, 2, 3]
    assert not any(r["kind"] == "summary" for r in records)  # killed long before the end
