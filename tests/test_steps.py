"""The shared training steps: VAE terms, the GAN step, the classifier step, latent noise and paths.

The GAN step and slerp are notebook 05's exercises: ``taught`` takes them from its solution cells.
"""

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from nbhelpers.editions import taught
from nbhelpers.latent import lerp, sample_noise
from nbhelpers.training import supervised, vae

gan_step = taught("05", "gan_step")
slerp = taught("05", "slerp")


def test_gaussian_kl_matches_the_closed_form_and_torch():
    mu = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.5, -1.0]])
    logvar = torch.tensor([[0.0, 0.0], [0.0, 0.0], [math.log(4.0), math.log(0.25)]])
    kl = vae.gaussian_kl(mu, logvar)
    assert kl[0] == 0 and kl[1] == pytest.approx(2.5)  # 1/2 (1 + 4)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl, expected)


class HalfDecoder(nn.Module):
    """q(z|x) = N(0, I) and p(x|z) = Bernoulli(0.5): -ELBO = D ln 2 nats exactly."""

    latent_dim = 2

    def encode(self, x):
        return torch.zeros(len(x), 2), torch.zeros(len(x), 2)

    def decode(self, z):
        return torch.full((len(z), 1, 2, 2), 0.5)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(mu), mu, logvar


def test_negative_elbo_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]]).repeat(3, 1, 1, 1)
    torch.testing.assert_close(vae.negative_elbo(HalfDecoder(), x), torch.full((3,), 4 * math.log(2)))
    terms = vae.vae_loss(HalfDecoder(), x, recon="mse", beta=2.0)
    torch.testing.assert_close(terms["recon"], torch.full((3,), 3 * 0.25 + 0.25))


def test_unknown_reconstruction_loss_is_refused():
    with pytest.raises(ValueError, match="bce"):
        vae.reconstruction_loss(torch.zeros(1, 4), torch.zeros(1, 4), "l1")


def test_kl_warmup_rises_linearly_and_resumes():
    w = vae.KLWarmup(steps=4, beta=2.0)
    betas = []
    for _ in range(6):
        betas.append(w.beta())
        w.advance()
    assert betas == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    w2 = vae.KLWarmup(steps=4, beta=2.0)
    w2.load_state_dict(w.state_dict())
    assert w2.beta() == 2.0


def test_gan_step_updates_both_networks_and_reports_probabilities():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    D = nn.Sequential(nn.Linear(4, 1), nn.Flatten(0))
    g0, d0 = [p.clone() for p in G.parameters()], [p.clone() for p in D.parameters()]
    logs = gan_step(G, D, torch.optim.SGD(G.parameters(), 0.1), torch.optim.SGD(D.parameters(), 0.1),
                    torch.rand(8, 4) * 2 - 1, latent_dim=3)
    assert set(logs) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert 0 < logs["d_real"] < 1 and 0 < logs["d_fake"] < 1
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(d0, D.parameters(), strict=True))


def test_classifier_step_learns_a_separable_problem():
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = (x[:, 0] > 0).long()
    model = nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), 0.1)
    first = supervised.classifier_step(model, opt, x, y)
    for _ in range(50):
        last = supervised.classifier_step(model, opt, x, y)
    assert last["loss"] < first["loss"] / 3 and last["acc"] > 0.95
    assert supervised.predict(model, x).shape == (64, 2)


def test_lerp_and_slerp_endpoints_and_norms():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 1.0])
    for path in (lerp(a, b, 5), slerp(a, b, 5)):
        assert path.shape == (5, 2)
        torch.testing.assert_close(path[0], a)
        torch.testing.assert_close(path[-1], b)
    s = slerp(a, b, 3)
    torch.testing.assert_close(s.norm(dim=1), torch.tensor([3.0, 2.0, 1.0]))  # norms interpolate linearly
    torch.testing.assert_close(s[1] / s[1].norm(), torch.tensor([1.0, 1.0]) / math.sqrt(2))  # on the arc
    torch.testing.assert_close(slerp(a, 2 * a, 3), lerp(a, 2 * a, 3))  # parallel: the straight path


def test_sample_noise_normal_or_uniform_repeats_with_a_seed():
    z = sample_noise(4000, 3, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 3) and z.dtype == torch.float32
    assert abs(z.mean().item()) < 0.05 and z.std().item() == pytest.approx(1.0, abs=0.05)
    u = sample_noise(4000, 3, uniform=True, generator=torch.Generator().manual_seed(0))
    assert u.min() >= -1 and u.max() <= 1 and u.var().item() == pytest.approx(1 / 3, abs=0.02)  # U(-1, 1)
    again = sample_noise(4000, 3, uniform=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(u, again)
    assert sample_noise(2, 5, device="meta").device == torch.device("meta")
