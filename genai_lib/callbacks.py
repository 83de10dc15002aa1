"""What happens around the training loop's steps, one object per job.

The loop (:func:`genai_lib.train.train_loop`) only steps the objectives; it
tells each callback what happened, and the callbacks do the rest:

- ``on_start(state)``: before the first step of this call;
- ``after_step(state, metrics)``: after each step (``state.step`` counts
  completed steps, from 1; ``metrics`` holds this step's values per objective);
- ``on_end(state)``: after the last step;
- ``on_interrupt(state, between_steps)``: on Ctrl-C, before it propagates;
- ``close()``: always, last (even after an error).

A callback that holds something a resumed run needs (the EMA weights, the
metric sums of an unfinished logging window) returns it from ``state_dict()``
and names a ``key``; checkpoints save it and resume gives it back through
``load_state_dict()``. :func:`~genai_lib.train.fit` assembles the usual ones:
:class:`LogMetrics`, :class:`Evaluate`, :class:`SaveCheckpoints`,
:class:`ProgressBar` and :class:`StopOnCtrlC`; pass your own in ``callbacks``.
"""

from __future__ import annotations

import math
import signal
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm as tqdm_auto
from tqdm.std import tqdm as tqdm_text

from genai_lib import checkpoint as ckpt
from genai_lib import config, distributed
from genai_lib.training_state import TrainingState

Metrics = dict[str, dict[str, Tensor]]  # objective name -> this step's metrics


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


class Callback:
    """Override the events you need. ``key``: where ``state_dict()`` is saved in a checkpoint (None: nothing)."""

    key: str | None = None

    def on_start(self, state: TrainingState) -> None: ...

    def after_step(self, state: TrainingState, metrics: Metrics) -> None: ...

    def on_end(self, state: TrainingState) -> None: ...

    def on_interrupt(self, state: TrainingState, between_steps: bool) -> None: ...

    def close(self) -> None: ...

    def state_dict(self) -> Any:
        return None

    def load_state_dict(self, saved: Any) -> None: ...


class EveryStep(Callback):
    """A plain function ``fn(step)`` called after every step, as :func:`~genai_lib.train.fit` takes them."""

    def __init__(self, fn: Callable[[int], None]):
        self.fn = fn

    def after_step(self, state: TrainingState, metrics: Metrics) -> None:
        self.fn(state.step)


class LogMetrics(Callback):
    """Averages the metrics over each window of ``every`` steps, checks the losses are finite, logs them.

    One objective's metrics are logged as they are named (``loss``, ``grad_norm``,
    ``lr``); several objectives' as ``disc/loss``, ``gen/loss``... Values stay
    on the device until a window closes: one host sync per logged step, not
    one per step. Under torchrun each logged value is the mean over the ranks.
    """

    key = "window"

    def __init__(self, every: int, device: torch.device, checkpoint_path: str | Path | None = None):
        self.every, self.device, self.checkpoint_path = every, device, checkpoint_path
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def after_step(self, state: TrainingState, metrics: Metrics) -> None:
        several = len(state.optimizers) > 1
        for name, values in metrics.items():
            for k, v in values.items():
                key = f"{name}/{k}" if several else k
                self.sums[key] = self.sums.get(key, 0.0) + v.detach().float()
                self.counts[key] = self.counts.get(key, 0) + 1
        if state.step % self.every == 0 or state.step == state.total_steps:
            sums = _mean_over_ranks(self.sums, self.device)
            means = {k: sums[k].item() / self.counts[k] for k in sums}
            self.sums, self.counts = {}, {}
            self._check_finite(means, state.step)
            state.history.log(state.step, "train", means)

    def state_dict(self) -> dict[str, Any]:
        return {"sums": _mean_over_ranks(self.sums, self.device), "counts": dict(self.counts)}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.sums = {k: torch.as_tensor(v).to(self.device) for k, v in saved["sums"].items()}
        self.counts = dict(saved["counts"])

    def _check_finite(self, means: dict[str, float], step: int) -> None:
        bad = {k: v for k, v in means.items() if k.endswith("loss") and not math.isfinite(v)}
        if not bad:
            return
        path = self.checkpoint_path
        where = (
            f" The last checkpoint, from before it diverged, is {path}."
            if path is not None and Path(path).exists()
            else ""
        )
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


class Evaluate(Callback):
    """``eval_fn()`` every ``every`` steps and after the last one, logged as the ``"val"`` split of the history.

    The models are in eval mode and gradients off while it runs; under
    torchrun each value is the mean over the ranks.
    """

    def __init__(self, eval_fn: Callable[[], dict[str, float]], every: int, device: torch.device):
        self.eval_fn, self.every, self.device = eval_fn, every, device

    def after_step(self, state: TrainingState, metrics: Metrics) -> None:
        if (self.every and state.step % self.every == 0) or state.step == state.total_steps:
            state.history.log(state.step, "val", self.evaluate(state))

    @torch.no_grad()
    def evaluate(self, state: TrainingState) -> dict[str, float]:
        modes = {name: m.training for name, m in state.models.items()}
        for m in state.models.values():
            m.eval()
        try:
            results = {k: float(v) for k, v in self.eval_fn().items()}
        finally:
            for name, m in state.models.items():
                m.train(modes[name])
        return {k: float(v) for k, v in _mean_over_ranks(results, self.device).items()}


class SaveCheckpoints(Callback):
    """Saves the training state, and the state of ``callbacks``, every ``every`` steps, at the end, and on Ctrl-C.

    Every rank takes part in a save (its random state, its metric sums); rank 0
    writes the file, atomically. A Ctrl-C between two steps saves; one in the
    middle of a step keeps the last saved checkpoint (a half-updated model is
    never saved), and so does any Ctrl-C under torchrun, where saving would
    wait for ranks that may be gone.
    """

    def __init__(
        self, path: str | Path, every: int, callbacks: list[Callback], process: distributed.Process
    ):
        self.path, self.every, self.callbacks, self.process = Path(path), every, callbacks, process

    def save(self, state: TrainingState) -> None:
        saved = state.state_dict()
        saved["callbacks"] = {cb.key: cb.state_dict() for cb in self.callbacks if cb.key}
        if self.process.is_main:
            ckpt.atomic_save(saved, self.path)
        distributed.barrier()  # nobody reads the checkpoint before it is written

    def after_step(self, state: TrainingState, metrics: Metrics) -> None:
        if self.every and state.step % self.every == 0:
            self.save(state)

    def on_end(self, state: TrainingState) -> None:
        self.save(state)

    def on_interrupt(self, state: TrainingState, between_steps: bool) -> None:
        if between_steps and not self.process.distributed:
            self.save(state)
            print(
                f"Interrupted after step {state.step}; saved {self.path} at step {state.step}. "
                f"Run the same cell to resume."
            )
        elif self.process.is_main:
            held = (
                f"it holds step {ckpt.read_checkpoint(self.path)['step']}"
                if self.path.is_file()
                else "none was written yet"
            )
            print(
                f"Interrupted during step {state.step + 1}; kept the last periodic checkpoint, {self.path}: "
                f"{held}."
            )


class ProgressBar(Callback):
    """Shows how training goes, in one of :data:`genai_lib.config.PROGRESS_STYLES`.

    ``"auto"``: a tqdm bar (a widget in a notebook) with the latest losses;
    ``"text"``: a plain-text bar that redraws rarely (for terminals and logs);
    ``"summary"``: no bar, one line when the run ends (steps, time, last losses),
    so a saved notebook records each run in a line a reader can use;
    ``"off"``: nothing.
    """

    def __init__(self, style: str, end: int, desc: str, enabled: bool = True):
        if style not in config.PROGRESS_STYLES:
            raise ValueError(
                f"progress must be True, False or one of {config.PROGRESS_STYLES}; got {style!r}."
            )
        self.style, self.end, self.desc, self.enabled, self.bar = style, end, desc, enabled, None
        self.first_step, self.started = 0, 0.0

    def on_start(self, state: TrainingState) -> None:
        self.first_step, self.started = state.step, time.perf_counter()
        if self.style == "summary":
            if self.enabled and state.step >= self.end:
                print(
                    f"{self.desc}: already trained ({state.step:,} steps, from the checkpoint)",
                    flush=True,
                )
            return
        kwargs = dict(
            total=self.end,
            initial=state.step,
            desc=self.desc,
            disable=self.style == "off" or not self.enabled or state.step >= self.end,
        )
        if self.style == "text":
            self.bar = tqdm_text(mininterval=10.0, ascii=True, **kwargs)
        else:
            self.bar = tqdm_auto(dynamic_ncols=True, **kwargs)

    def after_step(self, state: TrainingState, metrics: Metrics) -> None:
        if self.bar is None:
            return
        losses = self._last_losses(state)
        if losses:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)
        self.bar.update(1)

    def on_end(self, state: TrainingState) -> None:
        steps = state.step - self.first_step
        if self.style != "summary" or not self.enabled or steps <= 0:
            return
        seconds = time.perf_counter() - self.started
        resumed = f" (resumed at step {self.first_step:,})" if self.first_step else ""
        losses = ", ".join(f"{k} {v:.4g}" for k, v in self._last_losses(state).items())
        print(
            f"{self.desc}: {steps:,} steps in {seconds:.1f} s ({steps / seconds:.0f} steps/s){resumed}"
            + (f"; last {losses}" if losses else ""),
            flush=True,
        )

    @staticmethod
    def _last_losses(state: TrainingState) -> dict[str, float]:
        """The most recent logged training losses (at most three), or {} if none was logged yet."""
        train_rows = [row for row in state.history.rows[-4:] if row.get("split") == "train"]
        if not train_rows:
            return {}
        last = train_rows[-1]
        return {k: last[k] for k in [k for k in last if k.endswith("loss")][:3]}

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class StopOnCtrlC(Callback):
    """While training, the first Ctrl-C (or Jupyter's stop button) only asks to stop after the step under way.

    A step interrupted half-way leaves weights and optimizer states half-updated,
    which no checkpoint should hold; so the loop finishes the step, the other
    callbacks see it (and save), and then this raises KeyboardInterrupt. A
    second Ctrl-C stops at once. Only the main thread can handle signals;
    elsewhere this does nothing. Keep it last among the callbacks.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self.previous: Any = None

    def _ask(self, signum: int, frame: Any) -> None:
        if self.requested:  # asked twice: stop now
            self.close()
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nStopping after this step, once its checkpoint is saved (Ctrl-C again to stop at once).",
            flush=True,
        )

    def on_start(self, state: TrainingState) -> None:
        if self.enabled and self.previous is None:
            self.previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._ask)

    def after_step(self, state: TrainingState, metrics: Metrics) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def close(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


class StepTimer(Callback):
    """Wall-clock time of every step of this call: ``timer.step_seconds``, and ``timer.median(skip=...)``."""

    def __init__(self):
        self.started: float | None = None
        self.step_ends: list[float] = []

    def on_start(self, state: TrainingState) -> None:
        self.started, self.step_ends = time.perf_counter(), []

    def after_step(self, state: TrainingState, metrics: Metrics) -> None:
        self.step_ends.append(time.perf_counter())

    @property
    def step_seconds(self) -> list[float]:
        """Seconds each step of this call took (the first includes any warm-up and compiling)."""
        if self.started is None:
            return []
        return [b - a for a, b in zip([self.started, *self.step_ends], self.step_ends)]

    def median(self, skip: int = 0) -> float | None:
        """Median seconds per step after the first ``skip`` steps (None when there are none)."""
        times = self.step_seconds[skip:]
        return statistics.median(times) if times else None


def _mean_over_ranks(sums: dict[str, Tensor | float], device: torch.device) -> dict[str, Tensor]:
    """Metric sums averaged over the ranks (the sums themselves in a single process)."""
    keys = sorted(sums)  # the same order on every rank
    if not keys:
        return {}
    stacked = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32).to(device) for k in keys])
    return dict(zip(keys, distributed.mean_over_ranks(stacked).cpu()))
