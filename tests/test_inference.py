"""`evaluating`: eval mode and no gradients inside the block, every module's own mode after it."""

import pytest
import torch
from torch import nn

from nbhelpers.training.inference import evaluating


def net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))


def test_eval_mode_and_no_grad_inside_the_block():
    model = net().train()
    stats = model[1].running_mean.clone()
    with evaluating(model):
        assert not any(m.training for m in model.modules())
        assert not torch.is_grad_enabled()
        out = model(torch.randn(8, 4))
    assert not out.requires_grad
    assert torch.equal(model[1].running_mean, stats)  # BatchNorm used its statistics, never updated them
    assert torch.is_grad_enabled() and all(m.training for m in model.modules())


def test_modes_restored_after_an_error_each_module_and_submodule_its_own():
    training, frozen = net().train(), net().eval()
    training[1].eval()  # a part kept in eval mode on purpose, e.g. frozen BatchNorm statistics
    with pytest.raises(RuntimeError, match="inside"), evaluating(training, frozen):
        raise RuntimeError("inside")
    assert [m.training for m in training.modules()] == [True, True, False, True]
    assert not any(m.training for m in frozen.modules())
    assert torch.is_grad_enabled()
