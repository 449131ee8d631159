"""PixelDA: the three networks' shapes and ranges, the noise input, the training step, digit preparation.

The losses and the pseudo-labels are notebook 01's exercises: the tests take the notebook's own.
"""

import pytest
import torch

from nbhelpers.data.core import DataSource, TensorImageDataset
from nbhelpers.data.mnistm import prepare_digits, to_tanh_rgb
from nbhelpers.editions import taught
from nbhelpers.latent import sample_noise
from nbhelpers.models.pixelda import Discriminator, Generator, TaskClassifier
from nbhelpers.training.pixelda import (
    PixelDAStep,
    epochs_for,
    pixelda_step,
    random_shift,
    self_train,
    train_task_classifier,
    translate,
    translations,
)


def sample_z(n: int, **kwargs) -> torch.Tensor:
    return sample_noise(n, 10, uniform=True, **kwargs)


def losses() -> dict:
    """The notebook's three losses, as ``pixelda_step`` and ``PixelDAStep`` take them."""
    return {name: taught("01", name) for name in ("discriminator_loss", "task_loss", "generator_loss")}


def small_models(size: int = 32):
    torch.manual_seed(0)
    return (Generator(image_size=size, width=8, n_blocks=1), Discriminator(image_size=size, width=8),
            TaskClassifier(image_size=size))


def _optimisers(G, D, T, lr=1e-3):
    return (torch.optim.Adam([*D.parameters(), *T.parameters()], lr, betas=(0.5, 0.999)),
            torch.optim.Adam(G.parameters(), lr, betas=(0.5, 0.999)))


def _digits(images: torch.Tensor) -> TensorImageDataset:
    return TensorImageDataset(images=images, labels=torch.zeros(len(images), dtype=torch.long),
                              classes=[str(d) for d in range(10)], source=DataSource("x", "standin", "test"))


@pytest.mark.parametrize("size", [28, 32])
def test_shapes_of_generator_discriminator_and_classifier(size):
    G, D, T = small_models(size)
    x, z = torch.rand(5, 3, size, size) * 2 - 1, sample_z(5)
    assert G(x, z).shape == (5, 3, size, size)
    assert D(x).shape == (5,)
    assert T(x).shape == (5, 10)
    assert T.features(x).shape == (5, 100)
    grey = Generator(channels=1, image_size=size, width=8, n_blocks=2)
    assert grey(x[:, :1], z).shape == (5, 3, size, size)  # a grey source, a colour target


def test_generator_refuses_the_wrong_image_size():
    G, _, _ = small_models(32)
    with pytest.raises(ValueError, match="32x32"):
        G(torch.zeros(2, 3, 28, 28), sample_z(2))


def test_generator_output_is_tanh_bounded_and_reaches_both_ends():
    G, _, _ = small_models()
    with torch.no_grad():
        G.out[0].weight.mul_(1000)  # drive the output layer into saturation
    y = G(torch.randn(8, 3, 32, 32) * 5, sample_z(8))
    assert y.min() >= -1 and y.max() <= 1
    assert y.min() < -0.99 and y.max() > 0.99  # tanh, not a sigmoid's [0, 1]


def test_noise_input_changes_the_output_and_a_fixed_z_repeats():
    G, _, _ = small_models()
    G.eval()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    z1, z2 = sample_z(4, generator=torch.Generator().manual_seed(1)), sample_z(4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b, a_again = G(x, z1), G(x, z2), G(x, z1)
    assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # every image changes with z
    torch.testing.assert_close(a, a_again)


def test_uniform_noise_is_uniform_on_minus_one_one():
    z = sample_z(4000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 10)
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.99 and z.max() > 0.99
    assert z.mean().abs() < 0.02 and (z.var() - 1 / 3).abs() < 0.01  # U(-1, 1): mean 0, variance 1/3


def test_discriminator_noise_and_dropout_act_only_in_training():
    _, D, _ = small_models()
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    D.train()
    assert not torch.equal(D(x), D(x))
    D.eval()
    torch.testing.assert_close(D(x), D(x))


def test_a_few_steps_on_a_tiny_batch_reduce_the_task_loss():
    G, D, T = small_models()
    opt_dt, opt_g = _optimisers(G, D, T)
    g = torch.Generator().manual_seed(0)
    source, target = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1, torch.rand(8, 3, 32, 32, generator=g) * 2 - 1
    labels = torch.arange(8) % 10
    g_before = [p.detach().clone() for p in G.parameters()]
    logs = [pixelda_step(G, D, T, opt_dt, opt_g, source, labels, target, **losses()) for _ in range(25)]
    assert set(logs[0]) == {"loss_d", "loss_g", "loss_task", "d_real", "d_fake", "acc_adapted"}
    assert logs[0]["loss_task"] > 2 * 2.0  # two cross-entropies near ln 10 = 2.3 at the start
    assert logs[-1]["loss_task"] < 0.5 * logs[0]["loss_task"]
    assert any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters(), strict=True))


def test_translate_batches_and_restores_the_mode():
    G, _, _ = small_models()
    G.train()
    x, z = torch.rand(7, 3, 32, 32) * 2 - 1, sample_z(7)
    out = translate(G, x, z, batch_size=3)
    assert out.shape == (7, 3, 32, 32) and G.training
    G.eval()
    with torch.no_grad():
        torch.testing.assert_close(out, G(x, z))


def test_prepare_digits_pads_like_the_mnistm_release_and_gives_rgb_in_minus_one_one():
    # The release's 32x32 images hold MNIST's 28x28 digits padded by 2, so the digit keeps its size.
    images = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    images[1] = 255
    images[2, 0, 5, 9] = 255  # one white pixel
    ds = _digits(images)
    prepared = prepare_digits(ds, size=32)
    assert prepared.images.shape == (3, 1, 32, 32) and prepared.images.dtype == torch.uint8
    assert ds.images.shape == (3, 1, 28, 28)  # the original is left alone
    x0, x1, x2 = (prepared[i][0] for i in range(3))
    assert x0.shape == (3, 32, 32)
    assert (x0 == -1).all() and (x1 == 1).all()  # the border repeats the edge: white stays white
    assert (x2 == 1).nonzero().tolist() == [[c, 7, 11] for c in range(3)]  # moved by (2, 2), not scaled
    colour = prepare_digits(_digits(torch.full((2, 3, 28, 28), 51, dtype=torch.uint8)))
    torch.testing.assert_close(colour[0][0], torch.full((3, 32, 32), 51 / 255 * 2 - 1))
    release = _digits(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert prepare_digits(release).images.shape == (2, 3, 32, 32)  # already 32x32: unchanged
    with pytest.raises(ValueError, match="cannot pad"):
        prepare_digits(_digits(torch.zeros(1, 1, 29, 29, dtype=torch.uint8)))


def test_to_tanh_rgb_handles_single_images_and_batches():
    torch.testing.assert_close(to_tanh_rgb(torch.ones(1, 4, 4)), torch.ones(3, 4, 4))
    assert to_tanh_rgb(torch.zeros(5, 1, 4, 4)).shape == (5, 3, 4, 4)
    assert (to_tanh_rgb(torch.zeros(5, 3, 4, 4)) == -1).all()


def test_pixelda_step_wrapper_ignores_target_labels_decays_lr_and_resumes_its_count():
    G, D, T = small_models()
    opt_dt, opt_g = _optimisers(G, D, T)
    step = PixelDAStep(G, D, T, opt_dt, opt_g, lr_decay=0.5, lr_decay_steps=2, **losses())
    source, target = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    poisoned = torch.full((4,), 99)  # not a class: any use of the target labels would raise
    lrs = []
    for _ in range(5):
        step(((source, torch.arange(4)), (target, poisoned)))
        lrs.append(opt_g.param_groups[0]["lr"])
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])
    assert opt_dt.param_groups[0]["lr"] == pytest.approx(2.5e-4)
    again = PixelDAStep(G, D, T, opt_dt, opt_g, lr_decay=0.5, lr_decay_steps=2, **losses())
    again.load_state_dict(step.state_dict())
    assert again.steps == 5 and again.seconds == step.seconds


def test_pixelda_step_wrapper_keeps_T_average_at_the_warmed_up_moving_average():
    G, D, T = small_models()
    opt_dt, opt_g = _optimisers(G, D, T)
    T_average = TaskClassifier()
    T_average.load_state_dict(T.state_dict())
    step = PixelDAStep(G, D, T, opt_dt, opt_g, T_average=T_average, average_decay=0.998, **losses())
    batch = ((torch.rand(4, 3, 32, 32) * 2 - 1, torch.arange(4)), (torch.rand(4, 3, 32, 32) * 2 - 1, torch.arange(4)))
    t0 = [p.clone() for p in T.parameters()]
    step(batch)  # decay at step 0: min(0.998, 1 / 10) = 0.1
    t1 = [p.clone() for p in T.parameters()]
    mean1 = [0.1 * a + 0.9 * b for a, b in zip(t0, t1, strict=True)]
    step(batch)  # at step 1: 2 / 11
    for m1, t2, avg in zip(mean1, T.parameters(), T_average.parameters(), strict=True):
        torch.testing.assert_close(avg, 2 / 11 * m1 + 9 / 11 * t2)
    assert not torch.equal(t0[0], t1[0])


def test_pixelda_step_wrapper_sums_wall_time_between_calls_across_a_resume(monkeypatch):
    clock = iter([10.0, 12.5, 13.0, 100.0, 101.0])
    monkeypatch.setattr("nbhelpers.training.pixelda.time.perf_counter", lambda: next(clock))
    G, D, T = small_models()
    opt_dt, opt_g = _optimisers(G, D, T)
    batch = ((torch.zeros(2, 3, 32, 32), torch.arange(2)), (torch.zeros(2, 3, 32, 32), torch.arange(2)))
    step = PixelDAStep(G, D, T, opt_dt, opt_g, **losses())
    for _ in range(3):
        step(batch)
    assert step.seconds == pytest.approx(3.0)  # 12.5 - 10 + 13 - 12.5: the first call only starts the clock
    resumed = PixelDAStep(G, D, T, opt_dt, opt_g, **losses())
    resumed.load_state_dict(step.state_dict())
    resumed(batch)  # at 100: the time the process was away does not count
    resumed(batch)
    assert resumed.seconds == pytest.approx(4.0)


def _pattern_digits(n: int, poisoned_labels: bool) -> TensorImageDataset:
    """Digits 0-9 as ten fixed random patterns plus noise; labels 99 when they must never be read."""
    g = torch.Generator().manual_seed(1)
    patterns = torch.rand(10, 3, 32, 32, generator=g)
    y = torch.arange(n) % 10
    x = (patterns[y] * 0.8 + 0.2 * torch.rand(n, 3, 32, 32, generator=g)) * 255
    labels = torch.full((n,), 99) if poisoned_labels else y
    ds = TensorImageDataset(images=x.to(torch.uint8), labels=labels, classes=[str(d) for d in range(10)],
                            source=DataSource("x", "standin", "test"))
    return prepare_digits(ds)


def test_self_train_never_reads_target_labels_trains_only_T_and_resumes():
    G, _, T = small_models()
    source, target = _pattern_digits(64, False), _pattern_digits(64, poisoned_labels=True)
    g_before = [p.clone() for p in G.parameters()]
    t_before = [p.clone() for p in T.parameters()]
    kwargs = dict(pseudo_labels=taught("01", "pseudo_labels"), rounds=2, steps_per_round=3, threshold=0.0,
                  batch_size=16, lr=1e-3)
    rows = self_train("test_selftrain", T, G, source, target, evaluate=lambda: {"probe": 1.0}, **kwargs)
    assert [r["round"] for r in rows] == [1, 2]
    assert all(r["kept"] == 1.0 and 0.1 <= r["confidence"] <= 1 and r["probe"] == 1.0 for r in rows)
    assert all(torch.equal(a, b) for a, b in zip(g_before, G.parameters(), strict=True))  # G fixed
    assert any(not torch.equal(a, b) for a, b in zip(t_before, T.parameters(), strict=True))
    assert G.training  # G's mode is restored
    trained = [p.clone() for p in T.parameters()]
    T2 = TaskClassifier()
    self_train("test_selftrain", T2, G, source, target, **kwargs)  # finished rounds load, not retrain
    for a, b in zip(trained, T2.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_self_train_stops_with_a_message_when_no_image_is_confident(capsys):
    G, _, T = small_models()
    source, target = _pattern_digits(32, False), _pattern_digits(32, True)
    before = [p.clone() for p in T.parameters()]
    rows = self_train("test_selftrain_none", T, G, source, target, pseudo_labels=taught("01", "pseudo_labels"),
                      rounds=3, steps_per_round=1,
                      threshold=1.01, batch_size=16, lr=1e-3, evaluate=lambda: {"probe": 2.0})
    assert len(rows) == 1 and rows[0]["kept"] == 0.0 and rows[0]["probe"] == 2.0
    assert "no target image reaches confidence 1.01" in capsys.readouterr().out
    assert all(torch.equal(a, b) for a, b in zip(before, T.parameters(), strict=True))


def test_random_shift_moves_each_image_by_its_own_offset_within_the_bound():
    torch.manual_seed(0)
    x = torch.zeros(200, 3, 9, 9)
    x[:, :, 4, 4] = torch.arange(1, 4).view(1, 3)  # one bright pixel per channel, in the centre
    moved = random_shift(x, 2)
    assert moved.shape == x.shape
    where = [tuple((img[0] == 1).nonzero()[0].tolist()) for img in moved]
    assert all(2 <= r <= 6 and 2 <= c <= 6 for r, c in where)  # at most 2 pixels off, both axes
    assert len(set(where)) == 25  # all 5 x 5 offsets occur among 200 images
    for img in moved:  # the channels move together and nothing else changes
        assert torch.equal(img, img[:1] * torch.arange(1, 4).view(3, 1, 1))
    ramp = torch.arange(9.0).view(1, 1, 1, 9).expand(4, 1, 9, 9)
    shifted = random_shift(ramp, 3)  # replicated borders: a shifted ramp is clamped, never zero-filled
    offset = shifted[:, 0, 0, 4] - 4
    expected = (torch.arange(9.0).view(1, 1, 1, 9) + offset.view(4, 1, 1, 1)).clamp(0, 8)
    assert torch.equal(shifted, expected.expand_as(shifted))
    assert torch.equal(random_shift(x, 0), x)
    torch.manual_seed(1)
    a = random_shift(x, 2)
    torch.manual_seed(1)
    assert torch.equal(a, random_shift(x, 2))


class _Identity(torch.nn.Module):
    """A stand-in generator that returns its source image: its translations must be the source's."""

    latent_dim = 10

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, z):
        return x


def test_translations_are_G_s_outputs_in_8_bit_with_their_source_labels_and_repeat():
    source = _pattern_digits(40, False)
    pool = translations(_Identity(), source, 16)
    assert len(pool) == 16 and pool.images.dtype == torch.uint8 and pool.images.shape[1:] == (3, 32, 32)
    assert torch.equal(translations(_Identity(), source, 16).images, pool.images)  # seeded: a resume repeats it
    items = [source[i] for i in range(len(source))]
    drawn = set()
    for k in range(len(pool)):
        x, y = pool[k]
        same = [i for i, (xs, _) in enumerate(items) if (xs - x).abs().max() <= 1 / 255 + 1e-6]
        assert len(same) == 1 and items[same[0]][1] == y  # one source image, with its label
        drawn.add(same[0])
    assert len(drawn) == 16  # drawn without replacement


def test_self_train_teacher_is_the_moving_average_of_T():
    G, _, T = small_models()
    source, target = _pattern_digits(64, False), _pattern_digits(64, poisoned_labels=True)
    start = [p.clone() for p in T.parameters()]
    teacher = TaskClassifier()
    teacher.load_state_dict(T.state_dict())
    self_train("test_selftrain_teacher", T, G, source, target, pseudo_labels=taught("01", "pseudo_labels"),
               rounds=1, steps_per_round=1, threshold=0.0, batch_size=16, lr=1e-3, teacher=teacher,
               teacher_decay=0.75, max_shift=2, n_translations=32)
    for t0, t1, mean in zip(start, T.parameters(), teacher.parameters(), strict=True):
        assert not torch.equal(t0, t1)
        torch.testing.assert_close(mean, 0.75 * t0 + 0.25 * t1)


def test_epochs_for_covers_the_requested_steps():
    assert epochs_for(4000, 60000, 32) == 3  # 1,875 batches per epoch
    assert epochs_for(10, 100, 32) == 4 and epochs_for(1, 10, 32) == 1


def test_train_task_classifier_trains_then_loads_the_finished_run():
    g = torch.Generator().manual_seed(0)
    ds = _digits((torch.rand(64, 1, 28, 28, generator=g) * 255).to(torch.uint8))
    T, history = train_task_classifier("test_pixelda_clf", prepare_digits(ds), epochs=2, batch_size=16)
    assert isinstance(T, TaskClassifier) and len(history.steps) == 8
    T2, _ = train_task_classifier("test_pixelda_clf", prepare_digits(ds), epochs=2, batch_size=16)
    for a, b in zip(T.state_dict().values(), T2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
