"""An exponential moving average (EMA) of a model's weights.

Diffusion models (and GANs) sample better from a running average of the
weights than from the last ones: the average smooths out the noise of the
last optimizer steps. After each step,

    ema_weights <- d * ema_weights + (1 - d) * weights

so the average remembers about ``1 / (1 - d)`` steps (1,000 for d = 0.999).

:class:`EMA` is an ``nn.Module`` holding its own copy of the model.
:meth:`EMA.callback` is what :func:`genai_lib.train.fit` needs: it updates
the average after every step, and checkpoints save and restore it with the
run, so a resumed run continues the same average::

    ema = EMA(model, decay=0.999)
    fit(model, loss_fn, data, steps=..., callbacks=[ema.callback(model)])
    samples = ddim_sample(ema.model, ...)
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from genai_lib import distributed
from genai_lib.callbacks import Callback


class EMA(nn.Module):
    """A frozen copy of ``model`` whose weights follow ``model``'s as an exponential moving average.

    ``decay``: ``d`` above, in [0, 1). With ``warmup=True`` the decay of the
    n-th update (from 0) is ``min(decay, (1 + n) / (10 + n))``: early on, when
    the model changes fast and its first weights are random, the average
    forgets quickly; it reaches ``decay`` after a few thousand updates for
    0.999. The number of updates is a buffer, so it is checkpointed too.
    Calling the EMA calls its copy of the model.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1); got {decay}.")
        self.decay, self.warmup = decay, warmup
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        n = int(self.updates)
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights: ``ema = d * ema + (1 - d) * weights``.

        Floating-point buffers (such as batch-norm statistics) are averaged the
        same way; other buffers (counters) are copied.
        """
        d = self.current_decay()
        ours, theirs = self.model.state_dict(), model.state_dict()
        if ours.keys() != theirs.keys():
            raise ValueError(
                "EMA.update() needs the model the EMA was made from; the parameter names differ."
            )
        for name, avg in ours.items():
            new = theirs[name].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(new.to(avg.dtype), alpha=1 - d)
            else:
                avg.copy_(new)
        self.updates += 1

    def callback(self, model: nn.Module, every: int = 1, key: str = "ema") -> UpdateEMA:
        """A callback for :func:`genai_lib.train.fit`: ``update(model)`` after every ``every``-th step.

        Checkpoints keep the average under ``key`` (give several EMAs different keys).
        """
        return UpdateEMA(self, model, every, key)

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # samplers read attributes such as n_classes: look them up on the averaged model
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("model"), name)


class UpdateEMA(Callback):
    """Moves ``ema`` towards ``model`` after every ``every``-th step; its state is the EMA's weights."""

    def __init__(self, ema: EMA, model: nn.Module, every: int = 1, key: str = "ema"):
        if every < 1:
            raise ValueError(f"every must be at least 1; got {every}.")
        self.ema, self.model, self.every, self.key = ema, model, every, key

    def on_start(self, state: Any) -> None:
        self.ema.to(next(self.model.parameters()).device)
        # under torchrun, every rank averages from rank 0's start
        distributed.broadcast_module(self.ema)

    def after_step(self, state: Any, metrics: Any) -> None:
        if state.step % self.every == 0:
            self.ema.update(self.model)

    def state_dict(self) -> dict[str, Tensor]:
        return self.ema.state_dict()

    def load_state_dict(self, saved: dict[str, Tensor]) -> None:
        self.ema.load_state_dict(saved)
