"""Tests of the batched augmentations and ten-crop prediction in fer.augment."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.transforms.v2 import functional as TF

from fer.augment import (
    AUGMENTATION_NAMES,
    HomeworkAugmentation,
    StandardAugmentation,
    adjust_brightness_contrast,
    affine_resample,
    build_augmentation,
    random_brightness_contrast,
    random_erasing,
    random_horizontal_flip,
    random_rotation,
    ten_crop_predict,
    zero_border,
)
from fer.constants import NUM_CLASSES
from fer.errors import ConfigError

FER2013_TRAIN = Path(__file__).resolve().parents[1] / "data" / "fer2013" / "train"
SIZE = (48, 48)


def make_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_images(batch_size: int = 64, size: tuple[int, int] = SIZE, low: float = 0.1, high: float = 0.9) -> torch.Tensor:
    return torch.rand(batch_size, 1, *size, generator=make_generator(1234)) * (high - low) + low


def matches_per_sample(output: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> torch.Tensor:
    """Return one boolean per sample: whether ``output`` equals ``expected`` there."""
    return ((output - expected).abs() <= atol).flatten(1).all(dim=1)


# ---------------------------------------------------------------------------
# Every policy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", AUGMENTATION_NAMES)
def test_policy_keeps_shape_dtype_range(name, dtype):
    images = make_images().to(dtype)
    original = images.clone()

    output = build_augmentation(name, SIZE)(images, make_generator(0))

    assert output.shape == images.shape
    assert output.dtype == dtype
    assert output.device == images.device
    assert output.min() >= 0.0
    assert output.max() <= 1.0
    torch.testing.assert_close(images, original, rtol=0, atol=0)


@pytest.mark.parametrize("name", AUGMENTATION_NAMES)
def test_policy_same_seed_same_output(name):
    augment = build_augmentation(name, SIZE)
    images = make_images()

    first = augment(images, make_generator(7))
    second = augment(images, make_generator(7))

    assert torch.equal(first, second)


@pytest.mark.parametrize("name", ["homework", "standard"])
def test_policy_different_seed_differs(name):
    augment = build_augmentation(name, SIZE)
    images = make_images()

    first = augment(images, make_generator(7))
    second = augment(images, make_generator(8))

    assert not torch.equal(first, second)


@pytest.mark.parametrize("name", ["homework", "standard"])
def test_policy_changes_most_samples(name):
    images = make_images(batch_size=128)

    output = build_augmentation(name, SIZE)(images, make_generator(0))

    unchanged = matches_per_sample(output, images)
    assert unchanged.float().mean() < 0.1


def test_none_is_identity():
    images = make_images()

    output = build_augmentation("none", SIZE)(images, make_generator(0))

    assert torch.equal(output, images)


def test_unknown_policy_names_key():
    with pytest.raises(ConfigError) as error:
        build_augmentation("homwork", SIZE)

    message = str(error.value)
    assert "'augmentation'" in message
    assert "'homwork'" in message
    assert "Did you mean 'homework'?" in message
    for name in AUGMENTATION_NAMES:
        assert name in message


def test_invalid_image_size_names_key():
    with pytest.raises(ConfigError, match="'image_size'"):
        build_augmentation("standard", (48, 0))


@pytest.mark.parametrize("name", ["homework", "standard"])
def test_wrong_image_size_raises(name):
    augment = build_augmentation(name, SIZE)

    with pytest.raises(ValueError, match="built for 48x48"):
        augment(make_images(size=(64, 64)), make_generator(0))


def test_integer_images_raise():
    images = torch.zeros(2, 1, 48, 48, dtype=torch.uint8)

    with pytest.raises(ValueError, match="float image batch"):
        build_augmentation("homework", SIZE)(images, make_generator(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["homework", "standard"])
def test_cuda_matches_device_and_seed(name):
    augment = build_augmentation(name, SIZE)
    images = make_images().cuda()

    first = augment(images, torch.Generator(device="cuda").manual_seed(3))
    second = augment(images, torch.Generator(device="cuda").manual_seed(3))

    assert first.device == images.device
    assert torch.equal(first, second)
    with pytest.raises(ValueError, match="generator is on cpu"):
        augment(images, make_generator(3))


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------


def test_flip_probability_one_flips_all():
    images = make_images()

    output = random_horizontal_flip(images, make_generator(0), p=1.0)

    assert torch.equal(output, images.flip(-1))


def test_flip_probability_zero_keeps_all():
    images = make_images()

    output = random_horizontal_flip(images, make_generator(0), p=0.0)

    assert torch.equal(output, images)


def test_flip_half_flips_whole_samples():
    images = make_images(batch_size=400)

    output = random_horizontal_flip(images, make_generator(0), p=0.5)

    flipped = matches_per_sample(output, images.flip(-1), atol=0)
    unchanged = matches_per_sample(output, images, atol=0)
    assert (flipped ^ unchanged).all()
    assert 0.4 < flipped.float().mean() < 0.6


def test_brightness_contrast_matches_torchvision():
    images = make_images(batch_size=4, low=0.0, high=1.0)
    brightness = torch.tensor([0.0, 0.5, 2.0, 4.5])
    contrast = torch.tensor([3.0, 0.0, 1.5, 0.2])
    contrast_first = torch.tensor([False, True, False, True])

    output = adjust_brightness_contrast(images, brightness, contrast, contrast_first)

    for index in range(4):
        image = images[index]
        b, c = brightness[index].item(), contrast[index].item()
        if contrast_first[index]:
            expected = TF.adjust_brightness(TF.adjust_contrast(image, c), b)
        else:
            expected = TF.adjust_contrast(TF.adjust_brightness(image, b), c)
        torch.testing.assert_close(output[index], expected)


def test_brightness_fixed_factor_scales_and_clamps():
    images = make_images()

    output = random_brightness_contrast(
        images, make_generator(0), brightness_range=(2.0, 2.0), contrast_range=(1.0, 1.0)
    )

    torch.testing.assert_close(output, (2 * images).clamp(0, 1))


def test_rotation_zero_degrees_is_identity():
    images = make_images()

    output = random_rotation(images, make_generator(0), max_degrees=0.0)

    torch.testing.assert_close(output, images, rtol=0, atol=1e-5)


def test_rotation_matches_torchvision_direction():
    images = make_images(batch_size=4)
    angles = torch.tensor([-30.0, -5.0, 12.0, 30.0])

    output = affine_resample(images, angles)

    for index, angle in enumerate(angles.tolist()):
        expected = TF.rotate(images[index], angle, interpolation=TF.InterpolationMode.BILINEAR)
        torch.testing.assert_close(output[index], expected, rtol=0, atol=1e-4)


def test_rotation_quarter_turn_of_non_square():
    # A quarter turn of a 2:1 image about its centre keeps the middle square.
    images = make_images(batch_size=2, size=(32, 64))

    output = affine_resample(images, torch.full((2,), 90.0))

    middle = images[..., :, 16:48]
    torch.testing.assert_close(output[..., :, 16:48], torch.rot90(middle, 1, (-2, -1)), rtol=0, atol=1e-4)


def test_shift_moves_by_whole_pixels():
    images = make_images(batch_size=1)

    # Output pixel (row, col) reads input pixel (row - 3, col + 2).
    output = affine_resample(images, torch.zeros(1), shifts=torch.tensor([[2, -3]]))

    expected = torch.zeros_like(images)
    expected[..., 3:, :46] = images[..., :45, 2:]
    torch.testing.assert_close(output, expected, rtol=0, atol=1e-5)


def test_erasing_probability_one_erases_rectangles():
    images = torch.ones(300, 1, 48, 48)

    output = random_erasing(images, make_generator(0), p=1.0)

    erased = output[:, 0] == 0
    rows, cols = erased.any(dim=2), erased.any(dim=1)
    fractions = erased.flatten(1).float().mean(dim=1)
    has_rectangle = fractions > 0
    # A sample may keep no rectangle when none of its 10 tries fit.
    assert has_rectangle.float().mean() > 0.9
    for index in torch.nonzero(has_rectangle).squeeze(1).tolist():
        bounding_box = rows[index][:, None] & cols[index][None, :]
        assert torch.equal(erased[index], bounding_box)
    # Rounding the side lengths moves the area a little outside 2-33 %.
    assert fractions[has_rectangle].min() >= 0.015
    assert fractions[has_rectangle].max() <= 0.36


def test_erasing_without_fitting_rectangle_keeps_all():
    # Every try draws a rectangle taller than the image, so all 10 fail.
    images = make_images()

    output = random_erasing(images, make_generator(0), p=1.0, scale=(0.9, 0.95), ratio=(3.0, 3.3))

    assert torch.equal(output, images)


def test_erasing_probability_zero_keeps_all():
    images = make_images()

    output = random_erasing(images, make_generator(0), p=0.0)

    assert torch.equal(output, images)


def test_zero_border_keeps_centre_window():
    images = make_images()

    output = zero_border(images, (36, 36))

    border = torch.ones(48, 48, dtype=torch.bool)
    border[6:42, 6:42] = False
    assert torch.equal(output[..., 6:42, 6:42], images[..., 6:42, 6:42])
    assert (output[..., border] == 0).all()


# ---------------------------------------------------------------------------
# homework policy
# ---------------------------------------------------------------------------


def test_homework_border_is_zero():
    images = make_images(batch_size=256, low=0.2, high=1.0)

    output = build_augmentation("homework", SIZE)(images, make_generator(0))

    border = torch.ones(48, 48, dtype=torch.bool)
    border[6:42, 6:42] = False
    assert (output[..., border] == 0).all()

    # Flipped and untouched samples keep a zero-free centre, so their zero
    # fraction is exactly that of the 6-pixel border.
    border_fraction = 1 - (36 * 36) / (48 * 48)
    zero_fractions = (output == 0).flatten(1).float().mean(dim=1)
    exactly_border = torch.isclose(zero_fractions, torch.tensor(border_fraction))
    assert exactly_border.float().mean() > 0.25


def test_homework_crop_follows_image_size():
    augment = HomeworkAugmentation((64, 64))
    images = make_images(batch_size=32, size=(64, 64), low=0.2, high=1.0)

    output = augment(images, make_generator(0))

    assert augment.crop_size == (48, 48)
    assert (output[..., :8, :] == 0).all()
    assert (output[..., 56:, :] == 0).all()
    assert (output[..., :, :8] == 0).all()
    assert (output[..., :, 56:] == 0).all()


def test_homework_picks_one_operation_per_sample():
    images = make_images(batch_size=600)
    augment = HomeworkAugmentation(SIZE, flip_p=1.0)

    output = augment(images, make_generator(0))

    flipped = matches_per_sample(output, zero_border(images.flip(-1), augment.crop_size))
    unchanged = matches_per_sample(output, zero_border(images, augment.crop_size))
    # With flip_p = 1 the flip branch always flips, and the other two
    # branches change the image, so about a third of the samples are flips.
    assert 0.25 < flipped.float().mean() < 0.42
    assert unchanged.float().mean() < 0.02


def test_homework_never_flips_vertically():
    # Rows darken from top to bottom and every column is the same, so only
    # a vertical flip (or a turn far beyond 30 degrees) darkens the top half.
    ramp = torch.linspace(1.0, 0.0, 48).view(1, 1, 48, 1).expand(512, 1, 48, 48).contiguous()

    output = build_augmentation("homework", SIZE)(ramp, make_generator(0))

    top = output[..., :24, :].flatten(1).mean(dim=1)
    bottom = output[..., 24:, :].flatten(1).mean(dim=1)
    assert (top >= bottom - 1e-6).all()
    # Brightness or contrast factors near 0 flatten an image, so a few
    # samples may have equal halves.
    assert (top > bottom).float().mean() > 0.9
    flipped_top = ramp.flip(-2)[..., :24, :].flatten(1).mean(dim=1)
    flipped_bottom = ramp.flip(-2)[..., 24:, :].flatten(1).mean(dim=1)
    assert (flipped_top < flipped_bottom).all()


# ---------------------------------------------------------------------------
# standard policy
# ---------------------------------------------------------------------------


def test_standard_crop_shifts_within_padding():
    images = make_images(batch_size=16)
    augment = StandardAugmentation(SIZE, flip_p=0.0, max_degrees=0.0, erasing_p=0.0)

    output = augment(images, make_generator(0))

    padded = nn.functional.pad(images, (4, 4, 4, 4))
    found = torch.zeros(16, dtype=torch.bool)
    shifts_seen = set()
    for top in range(9):
        for left in range(9):
            crop = padded[..., top : top + 48, left : left + 48]
            match = matches_per_sample(output, crop)
            found |= match
            if match.any():
                shifts_seen.add((top, left))
    assert found.all()
    assert len(shifts_seen) > 4


def test_standard_erasing_erases_half():
    images = torch.ones(400, 1, 48, 48)
    augment = StandardAugmentation(SIZE, padding=0, flip_p=0.0, max_degrees=0.0)

    output = augment(images, make_generator(0))

    erased = (output == 0).flatten(1).any(dim=1)
    assert 0.38 < erased.float().mean() < 0.6


def test_standard_flips_about_half():
    # Only the left half is bright, so a flipped sample is bright on the right.
    images = torch.zeros(400, 1, 48, 48)
    images[..., :24] = 1.0
    augment = StandardAugmentation(SIZE, padding=0, max_degrees=0.0, erasing_p=0.0)

    output = augment(images, make_generator(0))

    right_brighter = output[..., 24:].flatten(1).mean(1) > output[..., :24].flatten(1).mean(1)
    assert 0.4 < right_brighter.float().mean() < 0.6


# ---------------------------------------------------------------------------
# ten_crop_predict
# ---------------------------------------------------------------------------


class PixelClassifier(nn.Module):
    """Tiny model whose logits depend on pixel positions, so crops change them."""

    def __init__(self, side: int = 48):
        super().__init__()
        self.linear = nn.Linear(side * side, NUM_CLASSES)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(images.flatten(1))


def test_ten_crop_returns_log_mean_probabilities():
    torch.manual_seed(0)
    model = PixelClassifier().eval()
    images = make_images(batch_size=5)

    output = ten_crop_predict(model, images, crop_fraction=0.875)

    probabilities = torch.stack(
        [torch.softmax(model(TF.resize(crop, [48, 48], antialias=True)), dim=1) for crop in TF.ten_crop(images, [42, 42])]
    ).mean(dim=0)
    assert output.shape == model(images).shape == (5, NUM_CLASSES)
    assert not output.requires_grad
    torch.testing.assert_close(output.exp(), probabilities)
    torch.testing.assert_close(output.exp().sum(dim=1), torch.ones(5))


def test_ten_crop_full_fraction_averages_flip():
    torch.manual_seed(0)
    model = PixelClassifier().eval()
    images = make_images(batch_size=3)

    output = ten_crop_predict(model, images, crop_fraction=1.0)

    expected = (torch.softmax(model(images), dim=1) + torch.softmax(model(images.flip(-1)), dim=1)) / 2
    torch.testing.assert_close(output.exp(), expected)


@pytest.mark.parametrize("crop_fraction", [0.0, 1.5])
def test_ten_crop_invalid_fraction_raises(crop_fraction):
    with pytest.raises(ConfigError, match="'crop_fraction'"):
        ten_crop_predict(PixelClassifier(), make_images(batch_size=2), crop_fraction=crop_fraction)


# ---------------------------------------------------------------------------
# Real FER2013 images
# ---------------------------------------------------------------------------


@pytest.mark.fer2013
@pytest.mark.skipif(not FER2013_TRAIN.is_dir(), reason="FER2013 image folders not found under data/fer2013")
@pytest.mark.parametrize("name", AUGMENTATION_NAMES)
def test_policy_on_real_faces(name):
    paths = sorted((FER2013_TRAIN / "happy").glob("*.jpg"))[:64]
    pixels = np.stack([np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255 for path in paths])
    images = torch.from_numpy(pixels).unsqueeze(1)

    output = build_augmentation(name, SIZE)(images, make_generator(0))

    assert output.shape == (len(paths), 1, 48, 48)
    assert output.min() >= 0.0
    assert output.max() <= 1.0
