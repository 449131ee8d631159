"""Corruptions keep the batch shape and the [0, 1] range, repeat with a seed, and do what they say."""

import pytest
import torch

from nbhelpers.corruptions import gaussian_noise, invert, occlusion, rotate

# Each corruption at its default strength, as a function of (images, seed).
CORRUPTIONS = {
    "gaussian_noise": lambda x, seed: gaussian_noise(x, seed=seed),
    "occlusion": lambda x, seed: occlusion(x, seed=seed),
    "inverted": lambda x, seed: invert(x),
    "rotated": lambda x, seed: rotate(x, seed=seed),
}
RANDOM = ["gaussian_noise", "occlusion", "rotated"]


def corrupt(x, kind, seed=0):
    return CORRUPTIONS[kind](x, seed)


@pytest.fixture
def digits() -> torch.Tensor:
    # A stroke-like pattern on a black background, like MNIST: mostly 0, some 1, some grey.
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(6, 1, 28, 28)
    x[:, :, 6:22, 12:16] = torch.rand(6, 1, 16, 4, generator=g)
    x[:, :, 10:12, 8:20] = 1.0
    return x


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_shape_range_dtype_and_input_untouched(kind, digits):
    before = digits.clone()
    out = corrupt(digits, kind, seed=1)
    assert out.shape == digits.shape and out.dtype == digits.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, digits), "a corruption must change the images"
    assert torch.equal(digits, before), "the input batch must not be modified in place"


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_seeded(kind, digits):
    assert torch.equal(corrupt(digits, kind, seed=3), corrupt(digits, kind, seed=3))


@pytest.mark.parametrize("kind", RANDOM)
def test_seed_changes_random_corruptions(kind, digits):
    assert not torch.equal(corrupt(digits, kind, seed=3), corrupt(digits, kind, seed=4))


def test_global_rng_untouched(digits):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    for kind in CORRUPTIONS:
        corrupt(digits, kind, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_gaussian_noise_has_the_asked_spread():
    grey = torch.full((4, 1, 28, 28), 0.5)
    out = gaussian_noise(grey, std=0.1, seed=0)  # 5 sigma from the clip: no clipping
    assert (out - grey).mean().abs() < 0.01
    assert (out - grey).std().item() == pytest.approx(0.1, rel=0.05)


def test_occlusion_and_rotation_refuse_impossible_settings():
    x = torch.zeros(2, 1, 28, 28)
    with pytest.raises(ValueError, match="between 1 and 28"):
        occlusion(x, size=29)
    with pytest.raises(ValueError, match="min_degrees"):
        rotate(x, min_degrees=90, max_degrees=45)
    with pytest.raises(ValueError, match="square"):
        rotate(torch.zeros(2, 1, 28, 20))


def test_occlusion_paints_one_square_per_image():
    out = occlusion(torch.zeros(8, 1, 28, 28), size=10, value=1.0, seed=2)
    assert torch.equal(out.sum(dim=(1, 2, 3)), torch.full((8,), 100.0))
    rows = out[:, 0].amax(dim=2).sum(dim=1)  # rows the square covers
    assert torch.equal(rows, torch.full((8,), 10.0))


def test_invert_is_an_involution(digits):
    assert torch.equal(invert(invert(digits)), digits)
    assert torch.equal(invert(torch.zeros(1, 1, 2, 2)), torch.ones(1, 1, 2, 2))


def test_rotate_by_180_flips_both_axes(digits):
    out = rotate(digits, min_degrees=180, max_degrees=180, seed=0)
    assert torch.allclose(out, digits.flip(-1, -2), atol=1e-5)


def test_rotate_keeps_the_ink_roughly(digits):
    out = rotate(digits, seed=0)
    # Bilinear resampling blurs a little and corners are cut, but a centred digit keeps its ink.
    assert torch.allclose(out.sum(dim=(1, 2, 3)), digits.sum(dim=(1, 2, 3)), rtol=0.15)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(28, 28), "shape"),
        (torch.zeros(1, 1, 28, 28, dtype=torch.uint8), "float"),
        (torch.full((1, 1, 28, 28), -1.0), "normalisation"),
    ],
)
def test_bad_input_is_refused_clearly(bad, message):
    for fn in (gaussian_noise, occlusion, invert, rotate):
        with pytest.raises(ValueError, match=message):
            fn(bad)

