"""WGAN-GP step: n_critic critic updates per generator update, with notebook 03's losses."""

import pytest
import torch

from nbhelpers.editions import taught
from nbhelpers.models.dcgan import Discriminator, Generator
from nbhelpers.training.wgan import wgan_gp_step


@pytest.fixture(scope="module")
def losses():
    """The WGAN-GP losses as notebook 03 teaches them (exercise 3.3)."""
    return {"critic_loss": taught("03", "wgan_critic_loss"),
            "generator_loss": taught("03", "wgan_generator_loss")}


def test_step_makes_n_critic_updates_per_generator_update(losses):
    torch.manual_seed(0)
    G = Generator(latent_dim=8, image_size=28, width=4)
    C = Discriminator(image_size=28, width=4, norm="layer")
    counts = {"c": 0, "g": 0}
    opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.9))
    opt_c = torch.optim.Adam(C.parameters(), 1e-4, betas=(0.0, 0.9))
    opt_g.register_step_post_hook(lambda *_: counts.__setitem__("g", counts["g"] + 1))
    opt_c.register_step_post_hook(lambda *_: counts.__setitem__("c", counts["c"] + 1))
    g0 = [p.clone() for p in G.parameters()]
    logs = wgan_gp_step(G, C, opt_g, opt_c, torch.rand(12, 3, 28, 28) * 2 - 1, latent_dim=8,
                        n_critic=5, **losses)
    assert counts == {"c": 5, "g": 1}
    assert set(logs) == {"loss_c", "loss_g", "gp", "wasserstein"}
    assert all(isinstance(v, float) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters(), strict=True))
    with pytest.raises(ValueError, match="n_critic=5"):
        wgan_gp_step(G, C, opt_g, opt_c, torch.rand(3, 3, 28, 28), latent_dim=8, n_critic=5,
                     **losses)


def test_step_passes_gp_weight_and_labels_to_the_losses():
    seen = []

    def critic_loss(critic, real, fake, *, gp_weight, labels=None):
        seen.append((gp_weight, labels.tolist(), len(real), len(fake)))
        score = critic(real, labels).mean()
        return -score, score.detach(), torch.tensor(0.5)

    def generator_loss(critic, fake, labels=None):
        seen.append(("G", labels.tolist(), len(fake)))
        return -critic(fake, labels).mean()

    G = Generator(latent_dim=8, image_size=28, width=4, n_classes=3)
    C = Discriminator(image_size=28, width=4, n_classes=3, norm="none")
    opt_g, opt_c = (torch.optim.Adam(m.parameters(), 1e-4) for m in (G, C))
    logs = wgan_gp_step(G, C, opt_g, opt_c, torch.rand(6, 3, 28, 28), latent_dim=8, n_critic=2,
                        gp_weight=3.0, labels=torch.tensor([0, 1, 2, 0, 1, 2]),
                        critic_loss=critic_loss, generator_loss=generator_loss)
    assert seen == [(3.0, [0, 1, 2], 3, 3), (3.0, [0, 1, 2], 3, 3), ("G", [0, 1, 2], 3)]
    assert logs["gp"] == pytest.approx(0.5)
