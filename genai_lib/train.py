"""The one training loop of the course.

Every chapter trains through :func:`fit`. A training step is a list of
*objectives*: each has a model, an optimizer and a loss. A VAE or a GPT has one
objective; a GAN has two (the discriminator's, then the generator's), stepped
one after the other on the same batch. For each objective, every step does:

    zero the gradients -> forward under autocast -> backward (scaled in fp16)
    -> clip the gradient norm -> optimizer step -> learning-rate schedule step

Around that, :func:`fit` adds what real training needs: device placement,
mixed precision, a warmup + cosine learning-rate schedule, a progress bar,
a history of metrics, periodic evaluation, divergence detection, and
checkpoints that resume exactly where they stopped. To scale up, the same
call takes gradient accumulation (``accumulate=k``), ``torch.compile``
(``compile=True``), and runs unchanged under ``torchrun`` as N data-parallel
processes (:mod:`genai_lib.distributed`).
"""
from __future__ import annotations

import math
import os
import signal
import tempfile
import threading
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm as tqdm_auto
from tqdm.std import tqdm as tqdm_text

from genai_lib import checkpoint as ckpt
from genai_lib import config
from genai_lib import distributed
from genai_lib.config import get_device

Batch = Any  # a tensor, or a tuple/list/dict of tensors
LossOutput = Union[Tensor, dict[str, Tensor]]
LossFn = Callable[[Batch], LossOutput]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


# ---------------------------------------------------------------- objectives


@dataclass
class Objective:
    """One thing to minimise: ``model``'s parameters, updated by ``optimizer``, to lower ``loss_fn``.

    ``loss_fn(batch)`` returns a scalar loss, or a dict with a ``"loss"`` entry
    and any other scalars to log (``{"loss": ..., "kl": ..., "recon": ...}``).
    ``every=k`` steps this objective only on every k-th step (for example the
    generator of a WGAN, which steps once after every five critic steps); its
    learning-rate schedule still follows the global step.
    ``optimizer=None`` builds AdamW with the learning rate given to :func:`fit`
    and its ``weight_decay`` on the weight matrices (:func:`decay_groups`).
    """

    name: str
    model: nn.Module
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer | None = None
    every: int = 1


# ---------------------------------------------------------------- history


@dataclass
class History:
    """Metrics recorded during training: one row per logged step.

    Each row is ``{"step": int, "split": "train" | "val", name: float, ...}``.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)

    def log(self, step: int, split: str, metrics: dict[str, float]) -> None:
        self.rows.append({"step": step, "split": split, **metrics})

    def get(self, key: str, split: str = "train") -> tuple[list[int], list[float]]:
        """Steps and values of one metric, ready for ``plt.plot(*history.get("loss"))``."""
        pairs = [(r["step"], r[key]) for r in self.rows if r["split"] == split and key in r]
        return [s for s, _ in pairs], [v for _, v in pairs]

    def last(self, key: str, split: str = "train") -> float:
        """The most recent value of a metric."""
        values = self.get(key, split)[1]
        if not values:
            raise KeyError(f"No {split} metric named {key!r}; known: {sorted(self.keys(split))}")
        return values[-1]

    def keys(self, split: str = "train") -> set[str]:
        return {k for r in self.rows if r["split"] == split for k in r} - {"step", "split"}

    def __len__(self) -> int:
        return len(self.rows)


# ---------------------------------------------------------------- learning rate


def lr_factor(step: int, *, total_steps: int, warmup_steps: int = 0,
              min_lr_ratio: float = 0.1, schedule: str = "cosine") -> float:
    """Multiplier of the base learning rate at ``step`` (0-based).

    Linear warmup over ``warmup_steps``, then a cosine decay that reaches
    ``min_lr_ratio`` at ``total_steps`` (``schedule="cosine"``), or a constant
    rate after warmup (``schedule="constant"``).
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"Unknown schedule {schedule!r}; use 'cosine' or 'constant'.")
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return min_lr_ratio + (1.0 - min_lr_ratio) * cosine


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on matrices (linear, conv, embedding weights) only.

    Biases and normalisation gains are left undecayed: shrinking them towards
    zero does not make the function simpler, it only shifts or rescales it.
    Tied weights appear once, as ``model.parameters()`` lists them once.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def adamw(params: Any, lr: float, betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0,
          device: torch.device | None = None) -> torch.optim.AdamW:
    """AdamW, with the fused implementation on CPUs and CUDA GPUs (one kernel for all parameters).

    Same update as the default implementation; on a laptop CPU it takes about
    0.5 ms per step for a 1M-parameter model instead of about 2 ms.
    """
    fused = device is not None and device.type in ("cpu", "cuda")
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused or None)


# ---------------------------------------------------------------- precision


def choose_precision(requested: str, device: torch.device) -> str:
    """Resolve ``"auto"`` to ``"bf16"``, ``"fp16"`` or ``"fp32"`` for ``device``.

    - CUDA with bf16 (Ampere and newer): bf16 autocast, no scaler needed.
    - CUDA without bf16 (a T4, say): fp16 autocast with a gradient scaler.
    - CPU and MPS: fp32. bf16 autocast on a CPU is allowed when asked for, but
      it is slower than fp32 on most laptop CPUs, so it is not the default.
    """
    if requested not in {"auto", "fp32", "bf16", "fp16"}:
        raise ValueError(f"Unknown precision {requested!r}; use 'auto', 'fp32', 'bf16' or 'fp16'.")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


# ---------------------------------------------------------------- data


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move a tensor, or a tuple/list/dict of tensors, to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


class EpochBatches:
    """Shuffled mini-batches from in-memory tensors, as a function of the batch index.

    Epoch ``e`` uses a permutation seeded by ``(seed, e)``, so the batch at any
    step can be recomputed: that is what lets a resumed run see exactly the
    batches the uninterrupted run would have seen. The last incomplete batch of
    an epoch is dropped, so every batch has ``batch_size`` rows.

    With ``parts=k``, each optimizer step's batch of ``k * batch_size`` rows is
    cut into k parts of ``batch_size`` (micro-batches, or the shares of the
    ranks), and index ``step * k + j`` gives part j of that step. The k parts
    together are exactly the rows one batch of ``k * batch_size`` would hold.
    """

    def __init__(self, tensors: Tensor | Sequence[Tensor], batch_size: int, seed: int = 0, parts: int = 1):
        self.single = isinstance(tensors, Tensor)
        self.tensors = [tensors] if self.single else list(tensors)
        n = len(self.tensors[0])
        if any(len(t) != n for t in self.tensors):
            raise ValueError(f"All data tensors need the same length; got {[len(t) for t in self.tensors]}.")
        if n < batch_size * parts:
            whole = f"batch_size={batch_size}" if parts == 1 else \
                f"One step's batch ({parts} parts of batch_size={batch_size})"
            raise ValueError(f"{whole} is larger than the dataset ({n} rows).")
        self.n, self.batch_size, self.seed, self.parts = n, batch_size, seed, parts
        self.per_epoch = n // (batch_size * parts)  # optimizer steps per epoch
        self._epoch, self._perm = -1, None

    def with_parts(self, parts: int) -> "EpochBatches":
        """The same batches, each step's drawn ``parts`` times larger and handed out in parts (see :func:`fit`)."""
        return EpochBatches(self.tensors[0] if self.single else self.tensors, self.batch_size, self.seed, parts)

    def to(self, device: torch.device) -> "EpochBatches":
        self.tensors = [t.to(device) for t in self.tensors]
        return self

    def __call__(self, index: int) -> Batch:
        step, part = divmod(index, self.parts)
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.n, generator=g).to(self.tensors[0].device)
            self._epoch = epoch
        first = (i * self.parts + part) * self.batch_size
        idx = self._perm[first:first + self.batch_size]
        rows = [t[idx] for t in self.tensors]
        return rows[0] if self.single else tuple(rows)


# ---------------------------------------------------------------- the loop


def fit(
    model: nn.Module | Sequence[Objective],
    loss_fn: LossFn | None = None,
    data: Tensor | Sequence[Tensor] | Callable[[int], Batch] | None = None,
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
    callbacks: Sequence[Callable[[int], None]] = (),
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
    batches of ``batch_size`` each epoch), or a function ``index -> batch``.
    Each batch is moved to ``device`` and passed to the loss functions.

    Scaling up, the same call:

    - ``accumulate=k`` adds up the gradients of k micro-batches before each
      optimizer step: the update of a batch k times larger, in the memory of one.
    - Under ``torchrun --nproc_per_node=N``, each of the N processes wraps the
      models in DistributedDataParallel and trains on its own share of every
      step (gloo on CPUs, NCCL on GPUs). ``batch_size`` is per process and per
      micro-batch: one step sees ``batch_size * accumulate * N`` examples.
      Only rank 0 shows progress and writes checkpoints; logged metrics and
      ``eval_fn`` results are means over the ranks. Each objective's model
      gets its own DDP wrapper (a GAN's two networks stay in step on every rank).
    - Either way, the micro-batches of one step are parts of what one process
      would draw with a batch ``accumulate * N`` times larger, so the updates
      match. A function ``data`` is called with the micro-batch's index,
      ``(step * N + rank) * accumulate + j`` (the step itself in one process
      without accumulation); an object with a ``with_parts(k)`` method, such
      as :class:`~genai_lib.data.TokenWindows`, is asked to cut each step's
      batch into k = ``accumulate * N`` parts.
    - ``compile=True`` runs the models through ``torch.compile`` (a backend
      name such as ``"aot_eager"`` picks that backend). If compiling fails,
      a warning says why and training continues without it.

    ``eval_fn()`` is called every ``eval_every`` steps and at the end, with the
    models in eval mode and gradients off; it returns ``{name: value}``.
    ``callbacks`` are called as ``cb(step)`` after every step (``step`` counts
    completed steps, from 1).

    With ``checkpoint_path``, the full training state is saved every
    ``checkpoint_every`` steps, at the end, and on Ctrl-C: the first Ctrl-C
    (or Jupyter's stop button) lets the step under way finish, saves, then
    raises KeyboardInterrupt; a second one stops at once. With ``resume=True``
    an existing checkpoint there is loaded and training continues from its
    step, exactly as if it had not stopped; a checkpoint saved with other
    settings (learning rate, weight decay, batch, schedule...) is refused with
    the list of differences, since resuming would quietly keep its own; ``stop_after=k`` ends this call after step k (the schedule still
    spans ``steps``), so a long run can be split into sessions.
    ``extra_modules`` are saved and restored with the models (an EMA copy, say).

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
    if data is None:
        raise ValueError("fit() needs data: a tensor, a tuple of tensors, or a function index -> batch.")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    if accumulate < 1:
        raise ValueError(f"accumulate must be at least 1 (micro-batches per optimizer step), got {accumulate}.")
    for name, value in (("batch_size", batch_size), ("log_every", log_every)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}.")
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"stop_after must be a step of at least 1 (or None, to train all {steps} steps); "
                         f"got {stop_after}, which would train nothing.")
    if checkpoint_path is not None and process.is_main:  # rank 0 writes the checkpoints
        _check_writable(Path(checkpoint_path))  # now, not after the last step

    modules: dict[str, nn.Module] = {o.name: o.model for o in objectives}
    modules.update(extra_modules or {})
    for m in modules.values():
        m.to(device)
    optimizers = [o.optimizer or adamw(decay_groups(o.model, weight_decay), lr=lr, betas=betas, device=device)
                  for o in objectives]
    def schedule_for(every: int) -> Callable[[int], float]:
        # an objective stepped every k steps has taken j updates by global step j * k
        return lambda j: lr_factor(j * every, total_steps=steps, warmup_steps=warmup_steps,
                                   min_lr_ratio=min_lr_ratio, schedule=schedule)
    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, schedule_for(o.every))
                  for o, opt in zip(objectives, optimizers)]
    scalers = [torch.amp.GradScaler(device.type, enabled=precision == "fp16") for _ in objectives]
    # One optimizer step takes `parts` micro-batches: `accumulate` on each of the ranks.
    parts = accumulate * process.world_size
    if hasattr(data, "with_parts"):  # it can cut each step's batch into parts itself (TokenWindows)
        get_batch = data.with_parts(parts)
    elif callable(data) and not isinstance(data, Tensor):
        get_batch = data
    else:
        get_batch = EpochBatches(data, batch_size, seed, parts=parts).to(device)
    def micro_batches(step: int) -> list[Batch]:
        first = (step * process.world_size + process.rank) * accumulate
        return [to_device(get_batch(first + j), device) for j in range(accumulate)]

    settings = {"batch_size": getattr(data, "batch_size", batch_size), "accumulate": accumulate,
                "warmup_steps": warmup_steps, "schedule": schedule, "min_lr_ratio": min_lr_ratio,
                "grad_clip": grad_clip, "precision": precision, "seed": seed}
    history, start = History(), 0
    window: dict[str, Tensor] = {}  # metric sums since the last log, and how many steps they hold
    window_count: dict[str, int] = {}
    if checkpoint_path is not None and resume and Path(checkpoint_path).exists():
        state = ckpt.read_checkpoint(checkpoint_path)
        ckpt.check_models_match(checkpoint_path, state, modules)
        _check_same_settings(checkpoint_path, state, settings, objectives, optimizers)
        start = _restore(state, modules, objectives, optimizers, schedulers, scalers, history, process)
        window.update(state["window"]["sums"])
        window_count.update(state["window"]["counts"])
        if state.get("total_steps") != steps:
            warnings.warn(f"Resuming a run planned for {state.get('total_steps')} steps with steps={steps}: "
                          f"the learning-rate schedule changes from here on.", stacklevel=2)
        if process.is_main:
            print(f"Resumed from {checkpoint_path} at step {start}.")

    # What each objective's loss function calls: the model itself, or the model
    # wrapped by DDP and torch.compile, which the loss functions reach through
    # distributed.RoutedCalls.
    plain = [o.model for o in objectives]
    routes = [distributed.RoutedCalls(m, _wrap(m, device, process, compile)) for m in plain]

    def save(step: int) -> None:
        if checkpoint_path is None:
            return
        # every rank takes part (its random state, its metric sums); rank 0 writes the file
        state = _state(step, steps, modules, objectives, optimizers, schedulers, scalers, history)
        state["settings"] = settings
        state["rng_per_rank"] = distributed.gather_objects(state["rng"])
        state["window"] = {"sums": _mean_over_ranks(window, device), "counts": dict(window_count)}
        if process.is_main:
            ckpt.atomic_save(state, checkpoint_path)
        distributed.barrier()  # nobody reads the checkpoint before it is written

    end = min(steps, stop_after) if stop_after is not None else steps
    multi = len(objectives) > 1
    for m in modules.values():
        m.train()
    bar = _progress_bar(progress, total=end, initial=start, desc=desc,
                        disable=start >= end or not process.is_main)
    step = start
    mid_step = False  # True while models may be half-updated (one objective stepped, not the next)
    # Ctrl-C (or Jupyter's stop button) while a checkpoint is kept: finish the step under way, save, stop.
    stop = _StopAfterThisStep(enabled=checkpoint_path is not None and not process.distributed)
    stop.install()
    try:
        while step < end:
            mid_step = True
            batches = micro_batches(step)
            for i, (obj, opt, sched, scaler) in enumerate(zip(objectives, optimizers, schedulers, scalers)):
                if (step + 1) % obj.every:  # every k-th step, after the first k - 1 of the others
                    continue
                try:
                    metrics = _train_step(obj, routes[i], opt, scaler, batches, device, precision, grad_clip)
                except Exception as err:
                    if not compile or step != start:
                        raise
                    _warn_compile_failed(err, device)
                    routes[i] = distributed.RoutedCalls(plain[i], _wrap(plain[i], device, process, compile=False))
                    metrics = _train_step(obj, routes[i], opt, scaler, batches, device, precision, grad_clip)
                metrics["lr"] = torch.tensor(opt.param_groups[0]["lr"])
                sched.step()
                for k, v in metrics.items():
                    key = f"{obj.name}/{k}" if multi else k
                    window[key] = window.get(key, 0.0) + v.detach().float()
                    window_count[key] = window_count.get(key, 0) + 1
            step += 1
            mid_step = False
            for cb in callbacks:
                cb(step)
            if step % log_every == 0 or step == steps:
                sums = _mean_over_ranks(window, device)
                means = {k: sums[k].item() / window_count[k] for k in sums}
                window.clear(), window_count.clear()
                _check_finite(means, step, checkpoint_path)
                history.log(step, "train", means)
                loss_keys = [k for k in means if k.endswith("loss")]
                bar.set_postfix({k: f"{means[k]:.4g}" for k in loss_keys[:3]}, refresh=False)
            if eval_fn is not None and ((eval_every and step % eval_every == 0) or step == steps):
                history.log(step, "val", _evaluate(eval_fn, modules, device))
            if checkpoint_every and step % checkpoint_every == 0:
                save(step)
            bar.update(1)
            if stop.requested:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        stop.remove()
        bar.close()
        if checkpoint_path is not None and not mid_step and not process.distributed:
            save(step)
            print(f"Interrupted after step {step}; saved {checkpoint_path} at step {step}. "
                  f"Run the same cell to resume.")
        elif checkpoint_path is not None and process.is_main:
            # (a second Ctrl-C mid-step; or several processes, where saving would wait for ranks that may be gone)
            kept = Path(checkpoint_path)
            held = f"it holds step {ckpt.read_checkpoint(kept)['step']}" if kept.is_file() else "none was written yet"
            print(f"Interrupted during step {step + 1}; kept the last periodic checkpoint, {checkpoint_path}: "
                  f"{held}.")
        raise
    finally:
        stop.remove()
    bar.close()
    save(step)
    for m in modules.values():
        m.eval()
    return history


class _StopAfterThisStep:
    """While installed, the first Ctrl-C (SIGINT) only asks the loop to stop after the step under way.

    A step interrupted half-way leaves weights and optimizer states half-updated,
    which no checkpoint should hold; so the loop finishes the step, saves, and
    then raises KeyboardInterrupt itself. A second Ctrl-C stops at once. Only
    the main thread can handle signals; elsewhere this does nothing.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self.previous: Any = None

    def _ask(self, signum: int, frame: Any) -> None:
        if self.requested:  # asked twice: stop now
            self.remove()
            raise KeyboardInterrupt
        self.requested = True
        print("\nStopping after this step, once its checkpoint is saved (Ctrl-C again to stop at once).",
              flush=True)

    def install(self) -> None:
        if self.enabled and self.previous is None:
            self.previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._ask)

    def remove(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def _check_writable(path: Path) -> None:
    """Fail before training, not after it, if the checkpoint cannot be written where asked."""
    if path.is_dir():
        raise ValueError(f"checkpoint_path {path} is a folder; give a file name, e.g. {path / 'run.pt'}.")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".write-test", dir=folder)  # a unique name
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(f"Cannot write the checkpoint {path}: {err.strerror or err}. Choose a folder you "
                              f"can write to (checkpoint_path=...).") from None


_HYPERPARAMETERS = ("initial_lr", "betas", "eps", "weight_decay", "momentum", "nesterov", "dampening")


def _check_same_settings(path: str | Path, state: dict[str, Any], settings: dict[str, Any],
                         objectives: list[Objective], optimizers: list) -> None:
    """Refuse to resume a checkpoint with settings that differ from the run that saved it.

    Loading an optimizer's state brings back its saved learning rate and
    weight decay, so a run resumed with new ones would quietly train with the
    old. Compared: each optimizer's hyperparameters (per parameter group) and
    ``settings`` (batch, schedule, clipping, precision, seed). ``steps`` may
    change (with a warning): that is how a finished run is trained longer.
    """
    differences = []
    saved_settings = state.get("settings", {})  # checkpoints from before this check record none
    for key, now in settings.items():
        then = saved_settings.get(key, now)
        if then != now:
            differences.append(f"{key}: {then!r} in the checkpoint, {now!r} now")
    for o, opt in zip(objectives, optimizers):
        saved_groups = state["optimizers"].get(o.name, {}).get("param_groups", [])
        for i, (then, now) in enumerate(zip(saved_groups, opt.param_groups)):
            for key in _HYPERPARAMETERS:
                if key not in then or key not in now:
                    continue
                a, b = then[key], now[key]
                a, b = (tuple(a), tuple(b)) if isinstance(a, (list, tuple)) else (a, b)
                if a != b:
                    where = f"{o.name} " if len(objectives) > 1 else ""
                    name = "lr" if key == "initial_lr" else key
                    differences.append(f"{where}{name} (parameter group {i}): {a!r} in the checkpoint, {b!r} now")
    if differences:
        listed = "\n  - ".join(dict.fromkeys(differences))
        raise ckpt.CheckpointMismatchError(
            f"The checkpoint {path} was saved by a run with other settings:\n  - {listed}\n"
            f"Resuming would quietly keep the checkpoint's. To continue that run, use its settings; to start "
            f"a new run with these, delete the file or give another checkpoint_path (--checkpoint).")


def _wrap(model: nn.Module, device: torch.device, process: distributed.Process,
          compile: bool | str | Callable) -> nn.Module:
    """The model as a training step should call it: compiled and/or wrapped in DDP, or itself."""
    wrapped = model
    if process.distributed and any(p.requires_grad for p in model.parameters()):
        wrapped = distributed.wrap(model, device)
    if compile:
        backend = "inductor" if compile is True else compile  # or another backend, by name or function
        wrapped = torch.compile(wrapped, backend=backend)  # compiles lazily, at the first call
    return wrapped


def _find_ddp(wrapper: nn.Module) -> nn.parallel.DistributedDataParallel | None:
    """The DDP object inside a (possibly compiled) wrapper, or None."""
    inner = getattr(wrapper, "_orig_mod", wrapper)  # torch.compile's wrapper keeps the original
    return inner if isinstance(inner, nn.parallel.DistributedDataParallel) else None


def _warn_compile_failed(err: Exception, device: torch.device) -> None:
    root = err
    while getattr(root, "inner_exception", None) or root.__cause__:  # the backend's own error, wrapped
        root = getattr(root, "inner_exception", None) or root.__cause__
    reason = f"{type(root).__name__}: {(str(root).strip().splitlines() or [''])[0][:300]}"
    if root is not err:
        reason = f"{type(err).__name__}, because {reason}"
    hint = (" On a CPU, torch.compile's default backend (Inductor) writes C++ and needs a C++ compiler "
            "(g++ or clang on Linux and macOS, the MSVC build tools on Windows)." if device.type == "cpu" else "")
    warnings.warn(f"torch.compile failed on the first step ({reason}). "
                  f"Training continues without it: the same results, only slower.{hint} "
                  f"Pass compile=False to skip the attempt.", stacklevel=3)


def _mean_over_ranks(sums: dict[str, Tensor | float], device: torch.device) -> dict[str, Tensor]:
    """Metric sums averaged over the ranks (the sums themselves in a single process)."""
    keys = sorted(sums)  # the same order on every rank
    if not keys:
        return {}
    stacked = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32).to(device) for k in keys])
    return dict(zip(keys, distributed.mean_over_ranks(stacked).cpu()))


def _progress_bar(progress: bool | str, **kwargs: Any):
    """A tqdm bar in the chosen style: ``True`` follows ``config.PROGRESS``; or "auto", "text", "off"."""
    style = config.PROGRESS if progress is True else ("off" if progress is False else progress)
    if style not in config.PROGRESS_STYLES:
        raise ValueError(f"progress must be True, False or one of {config.PROGRESS_STYLES}; got {progress!r}.")
    if style == "off":
        kwargs["disable"] = True
    if style == "text":
        # Few updates, so a notebook saved with its output keeps a short record of the run
        return tqdm_text(mininterval=10.0, ascii=True, **kwargs)
    return tqdm_auto(dynamic_ncols=True, **kwargs)


def _as_objectives(model: nn.Module | Sequence[Objective], loss_fn: LossFn | None) -> list[Objective]:
    if isinstance(model, nn.Module):
        if loss_fn is None:
            raise ValueError("fit(model, loss_fn, data, ...) needs a loss_fn when given a single model.")
        return [Objective("model", model, loss_fn)]
    objectives = list(model)
    if not objectives or not all(isinstance(o, Objective) for o in objectives):
        raise TypeError("fit() takes an nn.Module and a loss_fn, or a list of Objective(...).")
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ValueError(f"Objective names must be unique; got {names}.")
    if loss_fn is not None:
        raise ValueError("With a list of objectives, each Objective carries its own loss_fn.")
    return objectives


def _train_step(obj: Objective, route: distributed.RoutedCalls, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                batches: list[Batch], device: torch.device, precision: str,
                grad_clip: float | None) -> dict[str, Tensor]:
    """One optimizer update of one objective, from the gradients of its micro-batches.

    Each micro-batch's loss is divided by their number k before backward, so
    the summed gradients are those of the mean loss over all k micro-batches:
    the gradient of one batch k times larger. Under DDP, ranks average their
    gradients only in the last backward (``no_sync`` before it), once per step.
    Returns the metrics averaged over the micro-batches (tensors, not yet synced).
    """
    opt.zero_grad(set_to_none=True)
    sums: dict[str, Tensor] = {}
    for j, batch in enumerate(batches):
        last = j == len(batches) - 1
        ddp = _find_ddp(route.wrapper)
        sync = nullcontext() if last or ddp is None else ddp.no_sync()
        with sync:
            with route, autocast(device, precision):
                out = obj.loss_fn(batch)
            if isinstance(out, Tensor):
                out = {"loss": out}
            if "loss" not in out:
                raise ValueError(f"The loss function of '{obj.name}' returned a dict without a 'loss' entry: "
                                 f"{list(out)}.")
            loss = out["loss"]
            if loss.dim() != 0:
                raise ValueError(f"The loss of '{obj.name}' must be a scalar; it has shape {tuple(loss.shape)}. "
                                 f"Did you forget a .mean()?")
            scaler.scale(loss / len(batches)).backward()
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + v.detach().float()
    metrics = {k: v / len(batches) for k, v in sums.items()}
    if grad_clip is not None:
        scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
        params = [p for g in opt.param_groups for p in g["params"]]
        metrics["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(opt)
    scaler.update()
    return metrics


def _check_finite(means: dict[str, float], step: int, checkpoint_path: str | Path | None) -> None:
    bad = {k: v for k, v in means.items() if k.endswith("loss") and not math.isfinite(v)}
    if not bad:
        return
    where = (f" The last checkpoint, from before it diverged, is {checkpoint_path}."
             if checkpoint_path is not None and Path(checkpoint_path).exists() else "")
    raise TrainingDivergedError(
        f"Training diverged: {', '.join(f'{k}={v}' for k, v in bad.items())} at or before step {step}.\n"
        f"Likely causes:\n"
        f"  - the learning rate is too high (try lr / 10, or a warmup);\n"
        f"  - gradient clipping is off (grad_clip=None);\n"
        f"  - the loss takes log(0) or divides by zero: use the *with_logits* losses on raw logits,\n"
        f"    not a log or BCE on sigmoid outputs;\n"
        f"  - fp16 overflow: try precision='bf16' or 'fp32';\n"
        f"  - NaN or infinite values in the input data." + where
    )


@torch.no_grad()
def _evaluate(eval_fn: Callable[[], dict[str, float]], modules: dict[str, nn.Module],
              device: torch.device) -> dict[str, float]:
    """``eval_fn()`` with the models in eval mode; under torchrun, each value is the mean over the ranks."""
    modes = {name: m.training for name, m in modules.items()}
    for m in modules.values():
        m.eval()
    try:
        results = {k: float(v) for k, v in eval_fn().items()}
    finally:
        for name, m in modules.items():
            m.train(modes[name])
    return {k: float(v) for k, v in _mean_over_ranks(results, device).items()}


def _state(step: int, total_steps: int, modules: dict[str, nn.Module], objectives: list[Objective],
           optimizers: list, schedulers: list, scalers: list, history: History) -> dict[str, Any]:
    return {
        "format": ckpt.FORMAT,
        "step": step,
        "total_steps": total_steps,
        "models": {name: m.state_dict() for name, m in modules.items()},
        "fingerprints": {name: ckpt.fingerprint(m) for name, m in modules.items()},
        "optimizers": {o.name: opt.state_dict() for o, opt in zip(objectives, optimizers)},
        "schedulers": {o.name: s.state_dict() for o, s in zip(objectives, schedulers)},
        "scalers": {o.name: s.state_dict() for o, s in zip(objectives, scalers)},
        "rng": ckpt.rng_state(),
        "history": history.rows,
    }


def _restore(state: dict[str, Any], modules: dict[str, nn.Module], objectives: list[Objective],
             optimizers: list, schedulers: list, scalers: list, history: History,
             process: distributed.Process) -> int:
    for name, m in modules.items():
        m.load_state_dict(state["models"][name])
    for o, opt, sched, scaler in zip(objectives, optimizers, schedulers, scalers):
        if o.name not in state["optimizers"]:
            raise ckpt.CheckpointMismatchError(f"The checkpoint has no optimizer state for objective '{o.name}'.")
        try:
            opt.load_state_dict(state["optimizers"][o.name])
        except ValueError as err:  # e.g. other parameter groups: the checkpoint's optimizer was set up differently
            raise ckpt.CheckpointMismatchError(
                f"The optimizer state of '{o.name}' in the checkpoint does not fit this run's optimizer "
                f"({err}). It was saved with other optimizer settings or by another version of "
                f"genai_lib; delete the checkpoint to start afresh.") from None
        sched.load_state_dict(state["schedulers"][o.name])
        if state["scalers"][o.name]:
            scaler.load_state_dict(state["scalers"][o.name])
    # each rank continues its own random stream when the world has the same size as when saved
    per_rank = state.get("rng_per_rank") or [state["rng"]]
    ckpt.set_rng_state(per_rank[process.rank] if len(per_rank) == process.world_size else state["rng"])
    history.rows[:] = state["history"]
    return int(state["step"])
