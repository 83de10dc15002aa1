"""An exponential moving average (EMA) of a model's weights.

Diffusion models (and GANs) sample better from a running average of the
weights than from the last ones: the average smooths out the noise of the
last optimizer steps. After each step,

    ema_weights <- d * ema_weights + (1 - d) * weights

so the average remembers about ``1 / (1 - d)`` steps (1,000 for d = 0.999).

:class:`EMA` is an ``nn.Module`` holding its own copy of the model, so it can
be passed to :func:`genai_lib.train.fit` in ``extra_modules`` and is then
saved in and restored from checkpoints with the model it follows::

    ema = EMA(model, decay=0.999)
    fit(model, loss_fn, data, steps=..., callbacks=[ema.callback(model)], extra_modules={"ema": ema})
    samples = ddim_sample(ema.model, ...)
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import Tensor, nn


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
            raise ValueError("EMA.update() needs the model the EMA was made from; the parameter names differ.")
        for name, avg in ours.items():
            new = theirs[name].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(new.to(avg.dtype), alpha=1 - d)
            else:
                avg.copy_(new)
        self.updates += 1

    def callback(self, model: nn.Module, every: int = 1) -> Callable[[int], None]:
        """A callback for :func:`genai_lib.train.fit`: ``update(model)`` after every ``every``-th step."""
        if every < 1:
            raise ValueError(f"every must be at least 1; got {every}.")

        def update_ema(step: int) -> None:
            if step % every == 0:
                self.update(model)

        return update_ema

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # samplers read attributes such as n_classes: look them up on the averaged model
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("model"), name)
