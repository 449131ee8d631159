"""WGAN-GP: the gradient penalty on critics with a known gradient norm, and the critic-ratio step."""

import pytest
import torch
from torch import nn

from nbhelpers.models.dcgan import Discriminator, Generator
from nbhelpers.training.wgan import gradient_penalty, wgan_gp_step


class Linear(nn.Module):
    """C(x) = <w, x> (+ <v_y, x> when labelled): its gradient is w (+ v_y) everywhere."""

    def __init__(self, w: torch.Tensor, v: torch.Tensor | None = None):
        super().__init__()
        self.w = nn.Parameter(w)
        self.v = v

    def forward(self, x, labels=None):
        w = self.w.flatten() if labels is None else self.w.flatten() + self.v[labels]
        return (x.flatten(1) * w).sum(1)


def test_penalty_of_a_linear_critic_is_known():
    torch.manual_seed(0)
    w = torch.zeros(3, 4, 4)
    w[0, 0, 0], w[1, 2, 3] = 3.0, 4.0  # ||w|| = 5
    real, fake = torch.randn(8, 3, 4, 4), torch.randn(8, 3, 4, 4)
    critic = Linear(w)
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2)
    # The penalty is differentiable in the critic's weights: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
    gp.backward()
    torch.testing.assert_close(critic.w.grad, 2 * 4.0 * w / 5.0)


def test_penalty_is_zero_for_a_unit_gradient_and_uses_labels():
    w = torch.zeros(1, 2, 2)
    w[0, 0, 0] = 1.0
    assert gradient_penalty(Linear(w), torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)).item() == 0
    v = torch.zeros(2, 4)
    v[1, 3] = 2.0  # class 1's gradient is w + v_1 with norm sqrt(1 + 4)
    labels = torch.tensor([0, 1, 0, 1])
    gp = gradient_penalty(Linear(w, v), torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2), labels)
    assert gp.item() == pytest.approx((0 + (5**0.5 - 1) ** 2) / 2)


def test_step_makes_n_critic_updates_per_generator_update():
    torch.manual_seed(0)
    G = Generator(latent_dim=8, image_size=28, width=4)
    C = Discriminator(image_size=28, width=4, norm="layer")
    counts = {"c": 0, "g": 0}
    opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.9))
    opt_c = torch.optim.Adam(C.parameters(), 1e-4, betas=(0.0, 0.9))
    opt_g.register_step_post_hook(lambda *_: counts.__setitem__("g", counts["g"] + 1))
    opt_c.register_step_post_hook(lambda *_: counts.__setitem__("c", counts["c"] + 1))
    g0 = [p.clone() for p in G.parameters()]
    logs = wgan_gp_step(G, C, opt_g, opt_c, torch.rand(12, 3, 28, 28) * 2 - 1, latent_dim=8, n_critic=5)
    assert counts == {"c": 5, "g": 1}
    assert set(logs) == {"loss_c", "loss_g", "gp", "wasserstein"}
    assert all(isinstance(v, float) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters(), strict=True))
    with pytest.raises(ValueError, match="n_critic=5"):
        wgan_gp_step(G, C, opt_g, opt_c, torch.rand(3, 3, 28, 28), latent_dim=8, n_critic=5)


def test_conditional_step_runs():
    G = Generator(latent_dim=8, image_size=28, width=4, n_classes=3)
    C = Discriminator(image_size=28, width=4, n_classes=3, norm="none")
    opt_g, opt_c = (torch.optim.Adam(m.parameters(), 1e-4) for m in (G, C))
    logs = wgan_gp_step(G, C, opt_g, opt_c, torch.rand(6, 3, 28, 28), latent_dim=8, n_critic=2,
                        labels=torch.tensor([0, 1, 2, 0, 1, 2]))
    assert logs["gp"] >= 0
