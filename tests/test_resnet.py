"""SmallResNet: shapes, the features/forward relation, and that it can fit a tiny batch."""

import pytest
import torch

from nbhelpers.models.resnet import SmallResNet


@pytest.mark.parametrize(("size", "channels"), [(28, 3), (32, 3), (64, 1)])
def test_shapes(size, channels):
    model = SmallResNet(in_channels=channels, n_classes=8, width=8, blocks=(1, 1, 1))
    x = torch.randn(4, channels, size, size)
    assert model.features(x).shape == (4, 32) == (4, model.feature_dim)
    assert model(x).shape == (4, 8)


def test_logits_are_a_linear_map_of_the_features():
    model = SmallResNet(n_classes=5, width=4, blocks=(1, 1)).eval()
    x = torch.randn(3, 3, 28, 28)
    torch.testing.assert_close(model(x), model.fc(model.features(x)))


def test_learns_a_tiny_batch():
    torch.manual_seed(0)
    model = SmallResNet(n_classes=4, width=8, blocks=(1, 1))
    x, y = torch.randn(16, 3, 28, 28), torch.arange(16) % 4
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (model(x).argmax(1) == y).float().mean() == 1.0
