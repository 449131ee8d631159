"""An exponential moving average of a network's weights.

Averaging the iterates of a noisy optimiser (Polyak & Juditsky, SIAM J. Control Optim. 1992)
gives weights that sit nearer the middle of the region the optimiser wanders in than its last
step does. PixelDA's classifier chases a generator that keeps changing, so its accuracy swings
from one evaluation to the next; the average swings less. The same average is the mean teacher
of the self-training extension (Tarvainen & Valpola, NeurIPS 2017).
"""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """Keeps ``average``'s weights at an exponential moving average of ``model``'s.

    ``update(decay)`` sets every floating-point parameter and buffer to
    ``decay * average + (1 - decay) * model``; integer buffers (BatchNorm's batch counter) are
    copied. ``average`` is a module of the same architecture (start it as a copy of ``model``) and
    is what gets evaluated; put it in ``fit``'s state to checkpoint it. The (average, model) tensor
    pairs are built once: ``state_dict()`` shares the parameters' storage, and ``fit``'s resume
    loads weights in place, so the pairs stay valid.
    """

    def __init__(self, average: nn.Module, model: nn.Module):
        self.pairs = list(zip(average.state_dict().values(), model.state_dict().values(), strict=True))

    @torch.no_grad()
    def update(self, decay: float) -> None:
        for mean, current in self.pairs:
            if mean.is_floating_point():
                mean.lerp_(current, 1 - decay)
            else:
                mean.copy_(current)


def warmed_up_decay(decay: float, steps: int) -> float:
    """``min(decay, (1 + steps) / (10 + steps))``: the decay after ``steps`` updates.

    TensorFlow's ExponentialMovingAverage with ``num_updates`` uses this ramp, so that an average
    started from untrained weights forgets them within tens of steps instead of ``1 / (1 - decay)``.
    """
    return min(decay, (1 + steps) / (10 + steps))
