"""The exponential moving average of weights, against hand-computed values."""

import pytest
import torch
from torch import nn

from nbhelpers.training.average import WeightAverage, warmed_up_decay


def _net(value: float) -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)
    return net


def test_update_mixes_floating_weights_and_copies_integer_buffers():
    model, average = _net(1.0), _net(0.0)
    model[1].num_batches_tracked.fill_(7)
    with torch.no_grad():
        model[1].running_mean.fill_(2.0)  # a floating buffer is averaged like a weight
    ema = WeightAverage(average, model)
    ema.update(0.75)
    assert all(torch.equal(p, torch.full_like(p, 0.25)) for p in average.parameters())
    assert torch.equal(average[1].running_mean, torch.full((2,), 0.5))  # 0.75 * 0 + 0.25 * 2
    assert average[1].num_batches_tracked.item() == 7
    ema.update(0.5)  # 0.5 * 0.25 + 0.5 * 1
    assert all(torch.equal(p, torch.full_like(p, 0.625)) for p in average.parameters())


def test_pairs_follow_weights_loaded_in_place_after_they_were_built():
    model, average = _net(0.0), _net(0.0)
    ema = WeightAverage(average, model)
    model.load_state_dict(_net(4.0).state_dict())  # what fit's resume does
    ema.update(0.5)
    assert all(torch.equal(p, torch.full_like(p, 2.0)) for p in average.parameters())


def test_update_refuses_mismatched_architectures():
    with pytest.raises(ValueError):
        WeightAverage(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))


@pytest.mark.parametrize(("steps", "expected"), [(0, 0.1), (8, 0.5), (90, 0.91), (10_000, 0.998)])
def test_warmed_up_decay_ramps_to_the_decay(steps, expected):
    assert warmed_up_decay(0.998, steps) == pytest.approx(expected)
