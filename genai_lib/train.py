"""The one training loop of the course.

A training run is three things, each in its own module:

- **objectives** (:mod:`genai_lib.objective`): what to minimise. An
  :class:`Objective` is a module whose ``forward(batch)`` returns the loss, with
  its optimizer. A VAE or a GPT has one; a GAN has two (the discriminator's,
  then the generator's), stepped one after the other on the same batch.
- **a training state** (:mod:`genai_lib.training_state`): models, optimizers,
  schedules, scalers, step and history; what a checkpoint holds.
- **callbacks** (:mod:`genai_lib.callbacks`): everything around the steps, such as
  logging, evaluation, checkpoints, the progress bar, Ctrl-C, an EMA, a timer.

:func:`train_loop` is the loop itself, and :func:`fit` assembles the usual
pieces for it: device, mixed precision, AdamW with a warmup + cosine
learning-rate schedule, gradient clipping, batches, resume. To scale up, the
same call takes gradient accumulation (``accumulate=k``), ``torch.compile``
(``compile=True``), and runs unchanged under ``torchrun`` as N data-parallel
processes (:mod:`genai_lib.distributed`).
"""

from __future__ import annotations

import numbers
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genai_lib import checkpoint as ckpt
from genai_lib import config, distributed
from genai_lib.callbacks import (
    Callback,
    Evaluate,
    EveryStep,
    LogMetrics,
    ProgressBar,
    SaveCheckpoints,
    StopOnCtrlC,
    TrainingDivergedError,
)
from genai_lib.config import get_device
from genai_lib.data.batches import Batch, EpochBatches, StepBatches
from genai_lib.objective import LossFn, Objective, ObjectiveStep
from genai_lib.optim import adamw, decay_groups, lr_factor
from genai_lib.precision import autocast, choose_precision, grad_scaler
from genai_lib.training_state import History, TrainingState

__all__ = [
    "fit",
    "train_loop",
    "Objective",
    "History",
    "TrainingState",
    "EpochBatches",
    "TrainingDivergedError",
    "lr_factor",
    "decay_groups",
    "adamw",
    "choose_precision",
    "autocast",
    "to_device",
]


def train_loop(
    state: TrainingState,
    objective_steps: Sequence[ObjectiveStep],
    micro_batches: Callable[[int], list[Batch]],
    callbacks: Sequence[Callback],
    *,
    end: int,
) -> None:
    """Step every objective until ``state.step == end``; the callbacks do everything else.

    ``micro_batches(step)`` gives the step's micro-batches (one, without
    accumulation), already on the device.
    """
    between_steps = True  # False while the models may be half-updated
    try:
        for cb in callbacks:
            cb.on_start(state)
        while state.step < end:
            between_steps = False
            batches = micro_batches(state.step)
            metrics = {}
            for objective_step in objective_steps:
                if objective_step.due(state.step):
                    metrics[objective_step.objective.name] = objective_step(batches)
            state.step += 1
            between_steps = True
            for cb in callbacks:
                cb.after_step(state, metrics)
        for cb in callbacks:
            cb.on_end(state)
    except KeyboardInterrupt:
        for cb in callbacks:
            cb.on_interrupt(state, between_steps)
        raise
    finally:
        for cb in callbacks:
            cb.close()


def fit(
    model: nn.Module | Sequence[Objective],
    loss_fn: LossFn | None = None,
    data: Tensor | Sequence[Tensor] | StepBatches | Callable[[int], Batch] | None = None,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    warmup_steps: int = 0,
    schedule: str = "cosine",
    min_lr_ratio: float = 0.1,
    grad_clip: float | None = 1.0,
    precision: str = "auto",
    device: str | torch.device | None = None,
    log_every: int = 10,
    eval_fn: Callable[[], dict[str, float]] | None = None,
    eval_every: int = 0,
    callbacks: Sequence[Callback | Callable[[int], None]] = (),
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = True,
    stop_after: int | None = None,
    extra_modules: dict[str, nn.Module] | None = None,
    seed: int = 0,
    progress: bool | str = True,
    desc: str = "training",
    accumulate: int = 1,
    compile: bool | str | Callable = False,
) -> History:
    """Train for ``steps`` optimizer steps and return the :class:`History`.

    One model: ``fit(model, loss_fn, data, steps=...)``. Several (a GAN):
    ``fit([Objective("disc", D, d_loss), Objective("gen", G, g_loss)], data=..., steps=...)``.

    ``data`` is a tensor or a tuple of tensors held in memory (shuffled into
    batches of ``batch_size`` each epoch), a
    :class:`~genai_lib.data.batches.StepBatches` (such as
    :class:`~genai_lib.data.TokenWindows`), or a function ``index -> batch``.
    Each batch is moved to ``device`` and passed to the objectives.

    Scaling up, the same call:

    - ``accumulate=k`` adds up the gradients of k micro-batches before each
      optimizer step: the update of a batch k times larger, in the memory of one.
    - Under ``torchrun --nproc_per_node=N``, each of the N processes trains
      on its own share of every step, and DistributedDataParallel averages
      the gradients (gloo on CPUs, NCCL on GPUs). ``batch_size`` is per process and per
      micro-batch: one step sees ``batch_size * accumulate * N`` examples.
      Only rank 0 shows progress and writes checkpoints; logged metrics and
      ``eval_fn`` results are means over the ranks. Each *objective* is
      wrapped in DDP, so whatever its loss calls (``model.encode``, two
      networks) has its gradients averaged; a GAN's two objectives get one
      wrapper each.
    - Either way, the micro-batches of one step are parts of what one process
      would draw with a batch ``accumulate * N`` times larger, so the updates
      match. A function ``data`` is called with the micro-batch's index,
      ``(step * N + rank) * accumulate + j`` (the step itself in one process
      without accumulation); a ``StepBatches`` is asked to cut each step's
      batch into k = ``accumulate * N`` parts.
    - ``compile=True`` runs the objectives through ``torch.compile`` (a backend
      name such as ``"aot_eager"`` picks that backend). If compiling fails,
      a warning says why and training continues without it.

    ``eval_fn()`` is called every ``eval_every`` steps and at the end, with the
    models in eval mode and gradients off; it returns ``{name: value}``.
    ``callbacks``: :class:`~genai_lib.callbacks.Callback` objects (events
    before, after each step, at the end; state saved in checkpoints), or plain
    functions called as ``cb(step)`` after every step (``step`` counts
    completed steps, from 1). They run before logging, evaluation and saving.

    With ``checkpoint_path``, the full training state is saved every
    ``checkpoint_every`` steps, at the end, and on Ctrl-C: the first Ctrl-C
    (or Jupyter's stop button) lets the step under way finish, saves, then
    raises KeyboardInterrupt; a second one stops at once. With ``resume=True``
    an existing checkpoint there is loaded and training continues from its
    step, exactly as if it had not stopped; a checkpoint saved with other
    settings (learning rate, weight decay, batch, schedule...) is refused with
    the list of differences, since resuming would quietly keep its own.
    ``stop_after=k`` ends this call after step k (the schedule still
    spans ``steps``), so a long run can be split into sessions.
    ``extra_modules`` are saved and restored with the models.

    ``progress``: ``True`` shows a tqdm bar in the style of ``GENAI_PROGRESS``
    (a widget in notebooks), ``False`` none, or ``"auto"``/``"text"``/``"off"``.

    Metrics are averaged over each window of ``log_every`` steps. With one
    objective they are named ``loss``, ``grad_norm``, ``lr`` (and whatever
    else the loss returns); with several, ``disc/loss``, ``gen/loss``...
    """
    objectives = _as_objectives(model, loss_fn)
    device = get_device(str(device)) if device is not None else get_device()
    process = distributed.init(device)  # rank 0 of 1, unless torchrun started several processes
    device = distributed.device_for(device, process)
    precision = choose_precision(precision, device)
    _check_arguments(data, steps, accumulate, batch_size, log_every, stop_after)
    if checkpoint_path is not None and process.is_main:  # rank 0 writes the checkpoints
        _check_writable(Path(checkpoint_path))  # now, not after the last step

    models = {o.name: o.model for o in objectives} | dict(extra_modules or {})
    for m in models.values():
        m.to(device)
        distributed.broadcast_module(m)  # every rank starts from rank 0's weights (the EMA's too)
    optimizers = {o.name: _optimizers_of(o, lr, betas, weight_decay, device) for o in objectives}
    schedulers = {}
    for o in objectives:
        # an objective stepped every k steps has taken j updates by global step j * k
        factor = lambda j, every=o.every: lr_factor(
            j * every,
            total_steps=steps,
            warmup_steps=warmup_steps,
            min_lr_ratio=min_lr_ratio,
            schedule=schedule,
        )
        schedulers[o.name] = [
            torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in optimizers[o.name]
        ]
    settings = {
        "batch_size": getattr(data, "batch_size", None) or batch_size,
        "accumulate": accumulate,
        "warmup_steps": warmup_steps,
        "schedule": schedule,
        "min_lr_ratio": min_lr_ratio,
        "grad_clip": grad_clip,
        "precision": precision,
        "seed": seed,
    }
    state = TrainingState(
        models,
        optimizers,
        schedulers,
        {o.name: grad_scaler(device, precision) for o in objectives},
        total_steps=steps,
        settings=settings,
    )

    end = min(steps, stop_after) if stop_after is not None else steps
    style = config.PROGRESS if progress is True else ("off" if progress is False else progress)
    everything = [cb if isinstance(cb, Callback) else EveryStep(cb) for cb in callbacks]
    everything.append(LogMetrics(log_every, device, checkpoint_path))
    if eval_fn is not None:
        everything.append(Evaluate(eval_fn, eval_every, device))
    if checkpoint_path is not None:
        everything.append(
            SaveCheckpoints(checkpoint_path, checkpoint_every, list(everything), process)
        )
    everything.append(ProgressBar(style, end, desc, enabled=process.is_main))
    everything.append(StopOnCtrlC(enabled=checkpoint_path is not None and not process.distributed))
    keys = [cb.key for cb in everything if cb.key]
    if len(set(keys)) != len(keys):
        raise ValueError(f"Callbacks that keep state need different keys; got {keys}.")
    if checkpoint_path is not None and resume and Path(checkpoint_path).exists():
        _resume(state, everything, checkpoint_path, process)

    objective_steps = [
        ObjectiveStep(
            o,
            optimizers[o.name],
            schedulers[o.name],
            state.scalers[o.name],
            device=device,
            process=process,
            precision=precision,
            grad_clip=grad_clip,
            compile=compile,
        )
        for o in objectives
    ]
    for m in models.values():
        m.train()
    train_loop(
        state,
        objective_steps,
        _micro_batches(data, batch_size, seed, accumulate, process, device),
        everything,
        end=end,
    )
    for m in models.values():
        m.eval()
    return state.history


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move a tensor, or a tuple/list/dict of tensors, to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def _micro_batches(
    data: Any,
    batch_size: int,
    seed: int,
    accumulate: int,
    process: distributed.Process,
    device: torch.device,
) -> Callable[[int], list[Batch]]:
    """``step -> this process's micro-batches of that step``: parts of one batch ``accumulate * N`` times larger."""
    parts = accumulate * process.world_size
    if isinstance(data, StepBatches):
        source = data.with_parts(parts)
    elif callable(data) and not isinstance(data, Tensor):
        source = data  # a function of the part's index; it draws the parts itself
    else:
        source = EpochBatches(data, batch_size, seed, parts=parts).to(device)

    def micro_batches(step: int) -> list[Batch]:
        first = (step * process.world_size + process.rank) * accumulate
        return [to_device(source(first + j), device) for j in range(accumulate)]

    return micro_batches


def _optimizers_of(
    objective: Objective,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    device: torch.device,
) -> list[torch.optim.Optimizer]:
    given = objective.optimizer
    if given is None:
        if not any(p.requires_grad for p in objective.model.parameters()):
            raise ValueError(
                f"Objective '{objective.name}' has no trainable parameters: every parameter of its "
                f"model is frozen (requires_grad=False). A frozen model (freeze_all_but?), or an "
                f"inject_lora call that raised after freezing? Unfreeze what should train."
            )
        return [
            adamw(decay_groups(objective.model, weight_decay), lr=lr, betas=betas, device=device)
        ]
    return [given] if isinstance(given, torch.optim.Optimizer) else list(given)


def _resume(
    state: TrainingState, callbacks: list[Callback], path: str | Path, process: distributed.Process
) -> None:
    saved = ckpt.read_checkpoint(path)
    state.load_state_dict(saved, str(path))
    if saved.get("total_steps") != state.total_steps:
        warnings.warn(
            f"Resuming a run planned for {saved.get('total_steps')} steps with steps={state.total_steps}: "
            f"the learning-rate schedule changes from here on.",
            stacklevel=3,
        )
    # checkpoints from before callbacks kept state held only the metric window
    kept = saved.get("callbacks", {"window": saved.get("window")})
    for cb in callbacks:
        if cb.key is None:
            continue
        if kept.get(cb.key) is None:
            if "callbacks" in saved:
                raise ckpt.CheckpointMismatchError(
                    f"The checkpoint {path} holds no state for the callback "
                    f"'{cb.key}' of this run; it was saved by a run without it."
                )
            continue
        try:
            cb.load_state_dict(kept[cb.key])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ckpt.CheckpointMismatchError(
                f"The checkpoint {path} holds a state for the callback '{cb.key}' "
                f"that does not fit this run's: {str(err)[:300]}"
            ) from None
    if process.is_main:
        print(f"Resumed from {path} at step {state.step}.")


def _check_arguments(
    data: Any, steps: int, accumulate: int, batch_size: int, log_every: int, stop_after: int | None
) -> None:
    if data is None:
        raise ValueError(
            "fit() needs data: a tensor, a tuple of tensors, or a function index -> batch."
        )
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    if accumulate < 1:
        raise ValueError(
            f"accumulate must be at least 1 (micro-batches per optimizer step), got {accumulate}."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be a whole number; got {batch_size!r}.")
    for name, value in (("batch_size", batch_size), ("log_every", log_every)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}.")
    if stop_after is not None and stop_after < 1:
        raise ValueError(
            f"stop_after must be a step of at least 1 (or None, to train all {steps} steps); "
            f"got {stop_after}, which would train nothing."
        )


def _check_writable(path: Path) -> None:
    """Fail before training, not after it, if the checkpoint cannot be written where asked."""
    if path.is_dir():
        raise ValueError(
            f"checkpoint_path {path} is a folder; give a file name, e.g. {path / 'run.pt'}."
        )
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # a unique name
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".write-test", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(
            f"Cannot write the checkpoint {path}: {err.strerror or err}. Choose a folder you "
            f"can write to (checkpoint_path=...)."
        ) from None


def _as_objectives(
    model: nn.Module | Sequence[Objective], loss_fn: LossFn | None
) -> list[Objective]:
    if isinstance(model, nn.Module) and not isinstance(model, Objective):
        if loss_fn is None:
            raise ValueError(
                "fit(model, loss_fn, data, ...) needs a loss_fn when given a single model."
            )
        return [Objective("model", model, loss_fn)]
    objectives = [model] if isinstance(model, Objective) else list(model)
    if not objectives or not all(isinstance(o, Objective) for o in objectives):
        raise TypeError("fit() takes an nn.Module and a loss_fn, or a list of Objective(...).")
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ValueError(f"Objective names must be unique; got {names}.")
    if loss_fn is not None:
        raise ValueError("With a list of objectives, each Objective carries its own loss_fn.")
    return objectives
