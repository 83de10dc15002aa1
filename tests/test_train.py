"""The shared training loop: learning, schedules, clipping, precision, checkpoints and resume."""

import re

import pytest
import torch
from torch import nn

from genai_lib import checkpoint as ckpt
from genai_lib.data import load_digits
from genai_lib.train import (
    EpochBatches,
    History,
    Objective,
    TrainingDivergedError,
    choose_precision,
    fit,
    lr_factor,
)


def regression_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
    return x, y


class Net(nn.Module):
    """Small, with dropout, so that resuming must restore the random state too."""

    def __init__(self, hidden=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(4, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 1)
        )

    def forward(self, x):
        return self.body(x).squeeze(-1)


def mse(model):
    def loss_fn(batch):
        x, y = batch
        noise = 0.01 * torch.randn_like(y)  # draws from the global RNG inside the step
        pred = model(x)
        return {"loss": ((pred - y - noise) ** 2).mean(), "mae": (pred - y).abs().mean()}

    return loss_fn


def make_net(seed=0):
    torch.manual_seed(seed)
    return Net()


def test_fit_learns_a_regression():
    model = make_net()
    data = regression_data()
    history = fit(model, mse(model), data, steps=300, batch_size=32, lr=1e-2, progress=False)
    first, last = history.get("loss")[1][0], history.last("loss")
    assert last < 0.1 * first, (first, last)
    assert {"loss", "mae", "lr", "grad_norm"} <= history.keys()


def params(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    data = regression_data()
    kwargs = dict(steps=40, batch_size=24, lr=1e-2, warmup_steps=5, log_every=3, progress=False)

    torch.manual_seed(123)  # the global RNG feeds dropout and the loss's noise
    straight = make_net()
    h_straight = fit(straight, mse(straight), data, **kwargs)

    path = tmp_path / "run.pt"
    torch.manual_seed(123)
    first = make_net()
    fit(first, mse(first), data, checkpoint_path=path, stop_after=17, **kwargs)
    torch.manual_seed(999)  # a different process state: the checkpoint must restore it
    resumed = make_net(seed=5)  # different initial weights, overwritten by the checkpoint
    h_resumed = fit(resumed, mse(resumed), data, checkpoint_path=path, **kwargs)

    for key, value in params(straight).items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert h_straight.rows == h_resumed.rows


def test_one_objective_with_two_optimizers_steps_both_and_resumes_exactly(tmp_path):
    """Muon for the matrices and AdamW for the rest, say: each optimizer, schedule and state is saved and restored."""

    def run(path=None, stop_after=None, seed=0):
        model = make_net(seed)
        matrices = [p for p in model.parameters() if p.dim() == 2]
        vectors = [p for p in model.parameters() if p.dim() < 2]
        optimizers = [
            torch.optim.SGD(matrices, lr=0.05, momentum=0.9),
            torch.optim.AdamW(vectors, lr=1e-2),
        ]
        history = fit(
            [Objective("model", model, mse(model), optimizers)],
            data=regression_data(),
            steps=12,
            batch_size=16,
            warmup_steps=3,
            log_every=4,
            progress=False,
            checkpoint_path=path,
            stop_after=stop_after,
        )
        return model, optimizers, history

    torch.manual_seed(7)
    straight, optimizers, h_straight = run()
    assert all(opt.state for opt in optimizers)  # both stepped
    # both decayed
    assert optimizers[0].param_groups[0]["lr"] < 0.05 and optimizers[1].param_groups[0]["lr"] < 1e-2
    torch.manual_seed(7)
    run(tmp_path / "run.pt", stop_after=5)
    resumed, _, h_resumed = run(tmp_path / "run.pt", seed=3)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert h_straight.rows == h_resumed.rows


def test_resume_is_exact_with_two_objectives_and_function_data(tmp_path):
    """The GAN shape: two models, two optimizers, each stepped on the same batch."""

    def build():
        torch.manual_seed(0)
        a, b = nn.Linear(3, 3), nn.Linear(3, 1)

        def loss_a(x):
            return (b(a(x)) ** 2).mean()

        def loss_b(x):
            return ((b(a(x).detach()) - 1) ** 2).mean()

        return a, b, [Objective("b", b, loss_b), Objective("a", a, loss_a, every=2)]

    def batches(step):
        return torch.randn(8, 3, generator=torch.Generator().manual_seed(step))

    kwargs = dict(steps=20, lr=1e-2, progress=False, log_every=1)
    a1, b1, objs = build()
    fit(objs, data=batches, **kwargs)
    path = tmp_path / "gan.pt"
    a2, b2, objs = build()
    fit(objs, data=batches, checkpoint_path=path, stop_after=7, **kwargs)
    a3, b3, objs = build()
    fit(objs, data=batches, checkpoint_path=path, **kwargs)
    assert torch.equal(a1.weight, a3.weight) and torch.equal(b1.weight, b3.weight)


def test_an_objective_updates_only_its_own_model():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 3), nn.Linear(3, 1)
    b_before = params(b)
    fit(
        [Objective("a", a, lambda x: b(a(x)).pow(2).mean())],
        data=torch.randn(64, 3),
        steps=5,
        batch_size=16,
        progress=False,
    )
    for key, value in b_before.items():
        assert torch.equal(value, b.state_dict()[key])
    # b did see gradients, it just wasn't stepped
    assert all(p.grad is not None for p in b.parameters())


def test_gradient_clipping_bounds_the_update():
    # loss = 1000 * sum(w): the gradient is 1000 in every coordinate, its norm 2000 for 4 weights.
    # With SGD(lr=1) and clipping at 0.5, the weights must move by a vector of norm exactly 0.5.
    w = nn.Linear(4, 1, bias=False)
    before = w.weight.detach().clone()
    opt = torch.optim.SGD(w.parameters(), lr=1.0)
    history = fit(
        [Objective("w", w, lambda x: 1000 * w.weight.sum() + 0 * x.sum(), optimizer=opt)],
        data=torch.zeros(4, 1),
        batch_size=4,
        steps=1,
        grad_clip=0.5,
        schedule="constant",
        progress=False,
        log_every=1,
    )
    moved = (w.weight.detach() - before).norm().item()
    assert moved == pytest.approx(0.5, rel=1e-5)
    assert history.last("grad_norm") == pytest.approx(2000.0, rel=1e-5)  # logged before clipping


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    f = [lr_factor(s, total_steps=100, warmup_steps=10, min_lr_ratio=0.1) for s in range(101)]
    assert f[0] == pytest.approx(1 / 11) and f[9] == pytest.approx(10 / 11)
    assert f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert f[55] == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the cosine
    assert f[100] == pytest.approx(0.1)
    assert lr_factor(50, total_steps=100, warmup_steps=10, schedule="constant") == 1.0
    with pytest.raises(ValueError, match="Unknown schedule"):
        lr_factor(50, total_steps=100, schedule="linear")


def test_the_optimizer_follows_the_schedule():
    model = make_net()
    history = fit(
        model,
        mse(model),
        regression_data(),
        steps=20,
        lr=0.1,
        warmup_steps=4,
        min_lr_ratio=0.0,
        log_every=1,
        progress=False,
    )
    lrs = history.get("lr")[1]
    expected = [
        0.1 * lr_factor(s, total_steps=20, warmup_steps=4, min_lr_ratio=0.0) for s in range(20)
    ]
    assert lrs == pytest.approx(expected)


def test_precision_choice(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_precision("auto", cpu) == "fp32"
    assert choose_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_precision("auto", cuda) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert choose_precision("auto", cuda) == "fp16"
    with pytest.raises(ValueError, match="Unknown precision"):
        choose_precision("fp8", cpu)


def test_bf16_autocast_trains_on_cpu():
    model = make_net()
    history = fit(
        model, mse(model), regression_data(), steps=100, lr=1e-2, precision="bf16", progress=False
    )
    assert history.last("loss") < 0.5 * history.get("loss")[1][0]


def test_a_nan_loss_stops_training_and_names_likely_causes():
    model = make_net()
    with pytest.raises(TrainingDivergedError, match=r"(?s)diverged.*learning rate.*fp16"):
        fit(
            model,
            lambda b: model(b[0]).mean() * float("nan"),
            regression_data(),
            steps=5,
            log_every=1,
            progress=False,
        )


def test_a_non_scalar_loss_is_a_clear_error():
    model = make_net()
    with pytest.raises(ValueError, match="must be a scalar"):
        fit(model, lambda b: model(b[0]), regression_data(), steps=1, progress=False)


def test_eval_fn_runs_in_eval_mode_without_gradients():
    model = make_net()
    seen = []

    def evaluate():
        seen.append((model.training, torch.is_grad_enabled()))
        return {"val_loss": 1.0}

    history = fit(
        model,
        mse(model),
        regression_data(),
        steps=10,
        eval_fn=evaluate,
        eval_every=5,
        progress=False,
    )
    assert seen == [(False, False), (False, False)]
    assert history.get("val_loss", split="val") == ([5, 10], [1.0, 1.0])


def test_epoch_batches_cover_each_row_once_per_epoch():
    x = torch.arange(10)
    batches = EpochBatches(x, batch_size=3, seed=1)
    epoch0 = torch.cat([batches(s) for s in range(3)])
    assert len(set(epoch0.tolist())) == 9  # 3 full batches; one row left out this epoch
    assert torch.equal(batches(4), EpochBatches(x, 3, seed=1)(4))  # a function of the step alone
    with pytest.raises(ValueError, match="same length"):
        EpochBatches((torch.zeros(3), torch.zeros(4)), batch_size=2)


# ---------------------------------------------------------------- bad checkpoints


def trained_checkpoint(tmp_path):
    model = make_net()
    path = tmp_path / "model.pt"
    fit(model, mse(model), regression_data(), steps=3, checkpoint_path=path, progress=False)
    return path


def test_a_truncated_checkpoint_is_refused_clearly(tmp_path):
    path = trained_checkpoint(tmp_path)
    path.write_bytes(path.read_bytes()[:300])
    model = make_net()
    with pytest.raises(ckpt.CheckpointError, match="truncated, corrupt, or not a checkpoint"):
        fit(model, mse(model), regression_data(), steps=5, checkpoint_path=path, progress=False)


def test_garbage_and_foreign_files_are_refused_clearly(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="cannot be read"):
        ckpt.read_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ckpt.CheckpointError, match="not a genai_lib training checkpoint"):
        ckpt.read_checkpoint(foreign)


def test_a_checkpoint_from_another_model_is_refused_with_the_differences(tmp_path):
    path = trained_checkpoint(tmp_path)
    torch.manual_seed(0)
    other = Net(hidden=32)
    with pytest.raises(
        ckpt.CheckpointMismatchError,
        match=r"body.0.weight has shape \[16, 4\] in the checkpoint but \[32, 4\] here",
    ):
        fit(other, mse(other), regression_data(), steps=5, checkpoint_path=path, progress=False)


def test_a_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    ckpt.atomic_save({"v": torch.ones(1)}, path)

    def broken_save(obj, f):
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt.atomic_save({"v": torch.zeros(1)}, path)
    monkeypatch.undo()
    assert torch.equal(ckpt.load_file(path)["v"], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_history_helpers():
    h = History()
    h.log(1, "train", {"loss": 2.0})
    h.log(2, "train", {"loss": 1.0})
    assert h.get("loss") == ([1, 2], [2.0, 1.0]) and h.last("loss") == 1.0
    with pytest.raises(KeyError, match="known"):
        h.last("kl")


def test_text_progress_leaves_a_final_record(capsys):
    model = make_net()
    fit(model, mse(model), regression_data(), steps=12, progress="text", desc="tiny run")
    err = capsys.readouterr().err
    assert "tiny run" in err and "12/12" in err


def test_summary_progress_is_one_line_per_run_and_no_bar(tmp_path, capsys):
    # What a saved notebook shows (python -m genai_lib run sets GENAI_PROGRESS=summary).
    model = make_net()
    ckpt_path = tmp_path / "run.pt"
    fit(
        model,
        mse(model),
        regression_data(),
        steps=12,
        stop_after=5,
        progress="summary",
        desc="tiny run",
        checkpoint_path=ckpt_path,
        log_every=1,
    )
    out, err = capsys.readouterr()
    assert (
        out.count("\n") == 1 and out.startswith("tiny run: 5 steps in ") and "; last loss " in out
    )
    assert err == ""  # no bar fragments on stderr
    fit(
        model,
        mse(model),
        regression_data(),
        steps=12,
        progress="summary",
        desc="tiny run",
        checkpoint_path=ckpt_path,
        log_every=1,
    )
    last = capsys.readouterr().out.splitlines()[-1]  # after "Resumed from ... at step 5."
    assert last.startswith("tiny run: 7 steps in ") and "(resumed at step 5)" in last
    fit(
        model,
        mse(model),
        regression_data(),
        steps=12,
        progress="summary",
        desc="tiny run",
        checkpoint_path=ckpt_path,
    )
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == "tiny run: already trained (12 steps, from the checkpoint)"
    )


def test_an_unknown_progress_style_is_a_clear_error():
    model = make_net()
    with pytest.raises(ValueError, match="progress must be"):
        fit(model, mse(model), regression_data(), steps=2, progress="fancy")


def test_a_flipped_byte_in_a_checkpoints_tensors_is_refused(tmp_path):
    """A checkpoint carries the SHA-256 of its contents: one changed byte and nothing is loaded from it."""
    path = trained_checkpoint(tmp_path)
    raw = bytearray(path.read_bytes())
    # the sealed contents
    inner = ckpt.torch.load(path, weights_only=True)["payload"].numpy().tobytes()
    # somewhere inside the tensors' bytes
    start = raw.find(inner[len(inner) // 2 : len(inner) // 2 + 64])
    assert start > 0
    raw[start + 10] ^= 0x40
    path.write_bytes(bytes(raw))
    model = make_net()
    with pytest.raises(
        ckpt.CheckpointError, match="damaged: its contents do not match the SHA-256"
    ):
        fit(model, mse(model), regression_data(), steps=5, checkpoint_path=path, progress=False)


def test_empty_files_and_folders_as_checkpoints_get_clear_errors(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ckpt.CheckpointError, match=r"cannot be read \(0 bytes\)"):
        ckpt.read_checkpoint(empty)
    with pytest.raises(ckpt.CheckpointError, match="is a folder, not a file"):
        ckpt.read_checkpoint(tmp_path)
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        ckpt.atomic_save({"v": 1}, tmp_path)


def test_a_killed_saves_temporary_files_are_removed_by_the_next_save(tmp_path):
    """SIGKILL during a save leaves model.pt.XXXX.tmp (no cleanup code runs); the next save removes it."""
    orphans = [tmp_path / "model.pt.a1b2c3.tmp", tmp_path / "model.pt.zz9.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a checkpoint")
    keep = tmp_path / "other.pt.a1b2c3.tmp"  # another file's save: not ours to remove
    keep.write_bytes(b"x")
    trained_checkpoint(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "other.pt.a1b2c3.tmp"]


# ---------------------------------------------------------------- interrupted and changed runs


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_bitwise(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_ctrl_c_mid_step_finishes_the_step_saves_it_and_resumes_bitwise(tmp_path, capsys):
    """SIGINT lands inside a step (here: in the loss); fit ends that step, saves it, and says which step."""
    import os
    import signal

    reference = make_net()
    fit(reference, mse(reference), regression_data(), steps=12, batch_size=32, progress=False)

    path = tmp_path / "run.pt"
    model = make_net()
    loss_fn, calls = mse(model), []

    def interrupted_loss(batch):
        calls.append(1)
        if len(calls) == 5:  # during step 5, before its optimizer step: as a real Ctrl-C would
            os.kill(os.getpid(), signal.SIGINT)
        return loss_fn(batch)

    with pytest.raises(KeyboardInterrupt):
        fit(
            model,
            interrupted_loss,
            regression_data(),
            steps=12,
            batch_size=32,
            checkpoint_path=path,
            progress=False,
        )
    out = capsys.readouterr().out
    assert "Stopping after this step" in out and f"saved {path} at step 5" in out
    assert ckpt.read_checkpoint(path)["step"] == 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # fit put the handler back
    resumed = make_net(seed=1)  # other initial weights: everything must come from the checkpoint
    fit(
        resumed,
        mse(resumed),
        regression_data(),
        steps=12,
        batch_size=32,
        checkpoint_path=path,
        progress=False,
    )
    _assert_bitwise(_weights(resumed), _weights(reference))


@pytest.mark.parametrize("kill_at", [1, 4, 7])
def test_a_run_killed_outright_resumes_bitwise_from_its_last_checkpoint(tmp_path, kill_at):
    """SIGKILL (no cleanup code runs) after step kill_at; the same command again ends where an
    uninterrupted run ends, bit for bit."""
    import subprocess
    import sys
    from pathlib import Path

    worker = [sys.executable, str(Path(__file__).parent / "interrupt_worker.py")]
    reference = tmp_path / "reference.pt"
    subprocess.run(
        [*worker, str(tmp_path / "ref-ckpt.pt"), "10", str(reference)], check=True, timeout=120
    )
    path, out = tmp_path / "run.pt", tmp_path / "final.pt"
    child = subprocess.Popen(
        [*worker, str(path), "10", str(out)], stdout=subprocess.PIPE, text=True
    )
    for line in child.stdout:
        if line.strip() == f"step {kill_at}":
            child.kill()
            break
    child.wait(timeout=60)
    assert child.returncode == -9 and not out.exists()
    done = subprocess.run(
        [*worker, str(path), "10", str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # checkpoints every 2 steps: none before step 2
    assert "Resumed from" in done.stdout or kill_at < 2
    _assert_bitwise(torch.load(out, weights_only=True), torch.load(reference, weights_only=True))


def test_resuming_with_other_settings_is_refused_with_the_differences(tmp_path):
    path = tmp_path / "run.pt"
    model = make_net()
    fit(
        model, mse(model), regression_data(), steps=6, lr=3e-3, checkpoint_path=path, progress=False
    )
    for changes, said in [
        (dict(lr=0.5), "lr (parameter group 0): 0.003 in the checkpoint, 0.5 now"),
        (dict(weight_decay=0.9), "weight_decay (parameter group 0): 0.0 in the checkpoint, 0.9"),
        (dict(batch_size=8), "batch_size: 64 in the checkpoint, 8 now"),
        (dict(grad_clip=None), "grad_clip: 1.0 in the checkpoint, None now"),
    ]:
        other = make_net()
        settings = dict(lr=3e-3) | changes
        with pytest.raises(
            ckpt.CheckpointMismatchError, match=re.escape(said) + "(.|\n)*delete the file"
        ):
            fit(
                other,
                mse(other),
                regression_data(),
                steps=6,
                checkpoint_path=path,
                progress=False,
                **settings,
            )
    # more steps with the same settings is how a finished run is trained longer: allowed, with a warning
    longer = make_net()
    with pytest.warns(UserWarning, match="learning-rate schedule changes"):
        fit(
            longer,
            mse(longer),
            regression_data(),
            steps=8,
            lr=3e-3,
            checkpoint_path=path,
            progress=False,
        )


@pytest.mark.parametrize(
    "changes, said",
    [
        (dict(stop_after=-5), "stop_after must be a step of at least 1"),
        (dict(stop_after=0), "which would train nothing"),
        (dict(batch_size=0), "batch_size must be at least 1"),
        (dict(log_every=0), "log_every must be at least 1"),
    ],
)
def test_settings_that_would_train_nothing_or_crash_later_are_refused(changes, said):
    model = make_net()
    with pytest.raises(ValueError, match=said):
        fit(model, mse(model), regression_data(), steps=5, progress=False, **changes)


def test_an_unwritable_checkpoint_path_fails_before_the_first_step(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    model, before = make_net(), None
    before = _weights(model)
    with pytest.raises(PermissionError, match="Cannot write the checkpoint"):
        fit(
            model,
            mse(model),
            regression_data(),
            steps=5,
            checkpoint_path=blocker / "run.pt",
            progress=False,
        )
    _assert_bitwise(_weights(model), before)  # refused before any training


# ---------------------------------------------------------------- nothing to train


def test_a_model_with_every_parameter_frozen_is_refused_by_name():
    model = nn.Linear(2, 1).requires_grad_(False)
    x = torch.randn(16, 2)
    with pytest.raises(ValueError, match="'model' has no trainable parameters.*frozen"):
        fit(
            model, lambda b: model(b).mean(), x, steps=1, batch_size=4, progress=False, device="cpu"
        )


@pytest.mark.parametrize("how", ["detach", "no_grad"])
def test_a_loss_without_a_gradient_names_the_likely_causes(how):
    model = nn.Linear(2, 1)

    def loss_fn(batch):
        if how == "detach":
            return model(batch).mean().detach()
        with torch.no_grad():
            return model(batch).mean()

    with pytest.raises(
        ValueError, match=r"does not depend on any trainable.*unmerge_lora.*no_grad"
    ):
        fit(model, loss_fn, torch.randn(16, 2), steps=1, batch_size=4, progress=False, device="cpu")


# ---------------------------------------------------------------- data in other forms


def test_numpy_data_is_taken_as_tensors():
    model = nn.Linear(4, 1)
    x, y = regression_data(64)
    history = fit(
        model,
        lambda b: ((model(b[0]).squeeze(-1) - b[1]) ** 2).mean(),
        (x.numpy(), y.numpy()),
        steps=2,
        batch_size=8,
        progress=False,
        device="cpu",
    )
    assert history.last("loss") > 0
    assert EpochBatches(x.numpy(), 8)(0).shape == (8, 4)


@pytest.mark.parametrize(
    "make, named",
    [
        (lambda x: list(x), ["list of 64 Tensors", "torch.stack"]),
        (lambda x: [x, "labels"], ["str", "tensors"]),
        (lambda x: load_digits(), ["data.train_images"]),
    ],
    ids=["per-example-list", "not-a-tensor", "image-data"],
)
def test_data_fit_cannot_batch_is_refused_with_the_fix_named(make, named):
    model = nn.Linear(4, 1)
    x, _ = regression_data(64)
    with pytest.raises(TypeError) as err:
        fit(
            model,
            lambda b: model(b).mean(),
            make(x),
            steps=1,
            batch_size=8,
            progress=False,
            device="cpu",
        )
    for part in named:
        assert part in str(err.value), (part, str(err.value))


def test_batch_size_must_be_a_whole_number():
    model = nn.Linear(4, 1)
    x, _ = regression_data(64)
    with pytest.raises(TypeError, match=r"batch_size must be a whole number; got 8.0"):
        fit(
            model,
            lambda b: model(b).mean(),
            x,
            steps=1,
            batch_size=8.0,
            progress=False,
            device="cpu",
        )
