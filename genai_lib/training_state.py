"""Everything a training run is, at one step: what a checkpoint saves and resume loads.

:class:`TrainingState` holds the models, each objective's optimizers,
learning-rate schedules and gradient scaler, the step, the settings of the
run and its :class:`History`. ``state_dict()`` adds every random number
generator; ``load_state_dict()`` puts all of it back, so that a resumed run
continues exactly as the uninterrupted one would have. It refuses a
checkpoint saved by another model or with other settings, saying what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from genai_lib import checkpoint as ckpt
from genai_lib import distributed


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


# optimizer hyperparameters that a checkpoint's optimizer state would quietly bring back on resume
_HYPERPARAMETERS = (
    "initial_lr",
    "betas",
    "eps",
    "weight_decay",
    "momentum",
    "nesterov",
    "dampening",
)


@dataclass
class TrainingState:
    """The state of a run: models, optimizers, schedules, scalers, step, settings, history (and the RNGs).

    ``optimizers``, ``schedulers`` and ``scalers`` are keyed by objective name;
    an objective may have several optimizers (and one schedule each).
    ``settings`` are the choices a resumed run must share (batch, schedule,
    clipping, precision, seed); ``total_steps`` may change on resume.
    """

    models: dict[str, nn.Module]
    optimizers: dict[str, list[torch.optim.Optimizer]]
    schedulers: dict[str, list[torch.optim.lr_scheduler.LRScheduler]]
    scalers: dict[str, torch.amp.GradScaler]
    total_steps: int
    settings: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    history: History = field(default_factory=History)

    def state_dict(self) -> dict[str, Any]:
        """Everything, as tensors and plain types. Under torchrun every rank must call it (it gathers the RNGs)."""
        rng = ckpt.rng_state()
        return {
            "format": ckpt.FORMAT,
            "step": self.step,
            "total_steps": self.total_steps,
            "settings": dict(self.settings),
            "models": {name: m.state_dict() for name, m in self.models.items()},
            "fingerprints": {name: ckpt.fingerprint(m) for name, m in self.models.items()},
            "optimizers": {
                name: _one_or_list([o.state_dict() for o in opts])
                for name, opts in self.optimizers.items()
            },
            "schedulers": {
                name: _one_or_list([s.state_dict() for s in sch])
                for name, sch in self.schedulers.items()
            },
            "scalers": {name: s.state_dict() for name, s in self.scalers.items()},
            "rng": rng,
            # each rank continues its own random stream
            "rng_per_rank": distributed.gather_objects(rng),
            "history": [dict(row) for row in self.history.rows],
        }

    def load_state_dict(self, state: dict[str, Any], path: str = "the checkpoint") -> None:
        """Put a saved state back, after checking it came from these models and settings.

        Raises :class:`~genai_lib.checkpoint.CheckpointMismatchError` listing the
        differences otherwise; nothing is changed then.
        """
        ckpt.check_models_match(path, state, self.models)
        self._check_same_settings(state, path)
        for name, m in self.models.items():
            m.load_state_dict(state["models"][name])
        for name, opts in self.optimizers.items():
            for opt, saved in zip(opts, _as_list(state["optimizers"][name])):
                try:
                    opt.load_state_dict(saved)
                except (
                    ValueError
                ) as err:  # e.g. other parameter groups: the optimizer was set up differently
                    raise ckpt.CheckpointMismatchError(
                        f"The optimizer state of '{name}' in {path} does not fit this run's optimizer ({err}). "
                        f"It was saved with other optimizer settings or by another version of genai_lib; "
                        f"delete the checkpoint to start afresh."
                    ) from None
            for sched, saved in zip(self.schedulers[name], _as_list(state["schedulers"][name])):
                sched.load_state_dict(saved)
            if state["scalers"][name]:
                self.scalers[name].load_state_dict(state["scalers"][name])
        process = distributed.current()
        per_rank = state.get("rng_per_rank") or [state["rng"]]
        # each rank continues its own stream when the world has the size it had when saved
        ckpt.set_rng_state(
            per_rank[process.rank] if len(per_rank) == process.world_size else state["rng"]
        )
        self.history.rows[:] = [dict(row) for row in state["history"]]
        self.step = int(state["step"])

    def _check_same_settings(self, state: dict[str, Any], path: str) -> None:
        """Refuse a checkpoint whose settings differ from this run's: loading it would quietly keep its own.

        Loading an optimizer's state brings back its saved learning rate and
        weight decay, so a run resumed with new ones would train with the old.
        Compared: each optimizer's hyperparameters (per parameter group) and
        ``settings``. Checkpoints from before settings were recorded have none.
        """
        differences = []
        saved_settings = state.get("settings", {})
        for key, now in self.settings.items():
            then = saved_settings.get(key, now)
            if then != now:
                differences.append(f"{key}: {then!r} in the checkpoint, {now!r} now")
        several = len(self.optimizers) > 1
        for name, opts in self.optimizers.items():
            if name not in state["optimizers"]:
                raise ckpt.CheckpointMismatchError(
                    f"The checkpoint {path} has no optimizer state for objective '{name}'."
                )
            saved_opts = _as_list(state["optimizers"][name])
            if len(saved_opts) != len(opts):
                differences.append(
                    f"{name}: {len(saved_opts)} optimizer(s) in the checkpoint, {len(opts)} now"
                )
                continue
            for saved, opt in zip(saved_opts, opts):
                for i, (then, now) in enumerate(
                    zip(saved.get("param_groups", []), opt.param_groups)
                ):
                    for key in _HYPERPARAMETERS:
                        if key not in then or key not in now:
                            continue
                        a, b = then[key], now[key]
                        a, b = (tuple(a), tuple(b)) if isinstance(a, (list, tuple)) else (a, b)
                        if a != b:
                            where = f"{name} " if several else ""
                            label = "lr" if key == "initial_lr" else key
                            differences.append(
                                f"{where}{label} (parameter group {i}): {a!r} in the checkpoint, "
                                f"{b!r} now"
                            )
        if differences:
            listed = "\n  - ".join(dict.fromkeys(differences))
            raise ckpt.CheckpointMismatchError(
                f"The checkpoint {path} was saved by a run with other settings:\n  - {listed}\n"
                f"Resuming would quietly keep the checkpoint's. To continue that run, use its settings; to start "
                f"a new run with these, delete the file or give another checkpoint_path (--checkpoint)."
            )


def _one_or_list(items: list[Any]) -> Any:
    # one optimizer per objective is saved as itself, as checkpoints always held it
    return items[0] if len(items) == 1 else items


def _as_list(saved: Any) -> list[Any]:
    return saved if isinstance(saved, list) else [saved]
