"""pix2pix: U-Net skip shapes, the PatchGAN's output size and 70x70 field, the step, TensorBoard logs.

The step runs on notebook 04's own generator loss (exercise 4.4).
"""

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import TensorDataset

from nbhelpers.editions import taught
from nbhelpers.models.pix2pix import PatchDiscriminator, UNetGenerator
from nbhelpers.training.loop import fit
from nbhelpers.training.pix2pix import (
    LOSS_KEYS,
    make_optimizers,
    pix2pix_step,
    translate_pairs,
    translation_scores,
)
from nbhelpers.training.tensorboard import TensorBoardLog

generator_loss = taught("04", "generator_loss")

# (channels, side) of each encoder output: C64-C128-C256-C512-C512-... down to 1x1.
SKIPS = {
    128: [(64, 64), (128, 32), (256, 16), (512, 8), (512, 4), (512, 2), (512, 1)],
    256: [(64, 128), (128, 64), (256, 32), (512, 16), (512, 8), (512, 4), (512, 2), (512, 1)],
}


@pytest.mark.parametrize("size", [128, 256])
def test_unet_skip_shapes(size):
    G = UNetGenerator(size)
    x = torch.rand(1, 3, size, size) * 2 - 1
    assert [(s.shape[1], s.shape[2]) for s in G.skips(x)] == SKIPS[size]
    # Each decoder layer's output is concatenated with the encoder output of the same size.
    seen = []
    for layer in G.up:
        layer.register_forward_hook(lambda m, inp, out: seen.append(tuple(out.shape[1:])))
    out = G(x)
    assert seen == [(c, s, s) for c, s in SKIPS[size][-2::-1]]
    assert G.last[0].in_channels == 2 * 64
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1


def test_unet_refuses_wrong_sizes():
    with pytest.raises(ValueError, match="power-of-two"):
        UNetGenerator(100)
    with pytest.raises(ValueError, match="size=64"):
        UNetGenerator(128)(torch.zeros(1, 3, 64, 64))


@pytest.mark.parametrize(("size", "side"), [(256, 30), (128, 14), (64, 6)])
def test_patchgan_output_size(size, side):
    x = torch.zeros(2, 3, size, size)
    assert PatchDiscriminator()(x, x).shape == (2, 1, side, side)


def test_patchgan_receptive_field_is_70():
    D = PatchDiscriminator(base=8)
    for block in D.net:  # instance norm mixes the whole image, which would hide the local field
        if isinstance(block, nn.Sequential):
            for i, m in enumerate(block):
                if isinstance(m, nn.InstanceNorm2d):
                    block[i] = nn.Identity()
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    D(x, torch.randn(1, 3, 128, 128))[0, 0, 7, 7].backward()
    rows = x.grad.abs().sum((0, 1, 3)).nonzero()
    cols = x.grad.abs().sum((0, 1, 2)).nonzero()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def _tiny(seed=0):
    torch.manual_seed(seed)
    G, D = UNetGenerator(32, base=8, max_channels=32), PatchDiscriminator(base=8)
    return G, D, *make_optimizers(G, D)


def test_step_logs_and_updates():
    G, D, opt_g, opt_d = _tiny()
    assert opt_g.param_groups[0]["betas"] == (0.5, 0.999) and opt_g.param_groups[0]["lr"] == 2e-4
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    d_before = [p.clone() for p in D.parameters()]
    logs = pix2pix_step(G, D, opt_g, opt_d, x, y, generator_loss=generator_loss)
    assert set(logs) == set(LOSS_KEYS)
    assert logs["gen_total_loss"] == pytest.approx(logs["gen_gan_loss"] + 100 * logs["gen_l1_loss"], rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, D.parameters()))
    with pytest.raises(ValueError, match="l1_only"):
        pix2pix_step(G, None, opt_g, None, x, y, generator_loss=generator_loss)


def test_l1_only_fits_one_pair():
    G, _, opt_g, _ = _tiny()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-3)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    y = torch.linspace(-0.8, 0.8, 32).expand(1, 3, 32, 32)  # a smooth target, learnable in a few steps
    first = pix2pix_step(G, None, opt_g, None, x, y, generator_loss=generator_loss, l1_only=True)
    assert set(first) == {"gen_total_loss", "gen_l1_loss"}
    for _ in range(40):
        last = pix2pix_step(G, None, opt_g, None, x, y, generator_loss=generator_loss, l1_only=True)
    assert last["gen_l1_loss"] < 0.3 * first["gen_l1_loss"]


def test_translate_pairs_turns_dropout_off_and_restores_the_mode():
    torch.manual_seed(0)
    G = UNetGenerator(16, base=8)
    pairs = TensorDataset(torch.rand(5, 3, 16, 16) * 2 - 1, torch.rand(5, 3, 16, 16) * 2 - 1)
    xs, ys, first = translate_pairs(G, pairs, batch_size=2)
    _, _, again = translate_pairs(G, pairs, batch_size=3)
    assert torch.equal(xs, pairs.tensors[0]) and torch.equal(ys, pairs.tensors[1])
    # no dropout noise (batches of another size may round differently), and no graph
    assert torch.allclose(first, again, atol=1e-5) and not first.requires_grad
    assert G.training


def test_translation_scores_hand_values():
    y = torch.rand(3, 3, 16, 16) - 0.5  # in [-0.5, 0.5], so +0.2 stays inside [-1, 1]
    scores = translation_scores(inputs=y + 0.5, targets=y, outputs=y + 0.2)
    assert scores["l1"] == pytest.approx(0.2, abs=1e-6)
    assert scores["input_copy_l1"] == pytest.approx(0.5, abs=1e-6)
    assert scores["psnr"] == pytest.approx(20.0, abs=1e-3)  # error 0.1 on [0, 1]: 10 log10(1 / 0.01)
    assert 0 < scores["ssim"] < 1


def _scalars(log_dir, tag):
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return [(e.step, round(e.value, 4)) for e in acc.Scalars(tag)]


def test_tensorboard_event_files_and_purge_on_resume(tmp_path):
    tb = TensorBoardLog(tmp_path)
    for v in range(5):
        tb.log({"disc_loss": float(v)})
    tb.close()
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert _scalars(tmp_path, "disc_loss") == [(s, float(s - 1)) for s in range(1, 6)]
    # Resume from a checkpoint taken after step 3: steps 4 and 5 are logged again, not twice.
    resumed = TensorBoardLog(tmp_path)
    resumed.load_state_dict({"step": 3})
    for v in (40.0, 50.0):
        resumed.log({"disc_loss": v})
    resumed.close()
    assert _scalars(tmp_path, "disc_loss") == [(1, 0.0), (2, 1.0), (3, 2.0), (4, 40.0), (5, 50.0)]


class Interrupt(Exception):
    pass


def _train(tmp_path, run_dir, interrupt_at=None):
    """Two epochs of two steps through ``fit``, optionally killed right after logging a step."""
    G, D, opt_g, opt_d = _tiny()
    tb = TensorBoardLog(tmp_path / run_dir / "runs")
    pairs = TensorDataset(torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1,
                          torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1)

    def step(batch):
        logs = tb.log(pix2pix_step(G, D, opt_g, opt_d, *batch, generator_loss=generator_loss))
        if tb.step == interrupt_at:
            raise Interrupt
        return logs

    try:
        fit("p2p", step, pairs, batch_size=4, epochs=2, config={},
            state={"G": G, "D": D, "opt_g": opt_g, "opt_d": opt_d, "tb": tb})
    finally:
        tb.close()
    return tmp_path / run_dir / "runs"


def test_fit_resume_keeps_tensorboard_curves_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path / "ref"))
    reference = _scalars(_train(tmp_path, "ref"), "gen_l1_loss")
    monkeypatch.setenv("NBH_CHECKPOINT_DIR", str(tmp_path / "cut"))
    with pytest.raises(Interrupt):
        _train(tmp_path, "cut", interrupt_at=3)  # step 3 is logged, but the checkpoint is at step 2
    resumed = _scalars(_train(tmp_path, "cut"), "gen_l1_loss")
    assert [s for s, _ in resumed] == [1, 2, 3, 4]
    assert resumed == reference
