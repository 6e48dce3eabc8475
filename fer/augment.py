"""Batched training augmentations and ten-crop prediction on image tensors.

The augmentations work on a whole batch of float images (B, C, H, W) with
values in [0, 1], before normalization, on whatever device the batch is on.
Each sample gets its own random parameters, drawn only from the
``torch.Generator`` passed in, so one seed reproduces a batch exactly. Samples
are grouped by operation where the operations differ, so no Python loop runs
over the batch.

Registered policies (``build_augmentation``):

- ``none``: the batch unchanged.
- ``homework``: the course homework's "Ver. 1", see ``HomeworkAugmentation``.
- ``standard``: the recipe of the best published FER2013 models, see
  ``StandardAugmentation``.
"""

import difflib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as TF

from fer.errors import ConfigError

logger = logging.getLogger(__name__)

Augmentation = Callable[[Tensor, torch.Generator], Tensor]

AUGMENTATION_NAMES: tuple[str, ...] = ("none", "homework", "standard")

# torchvision's RandomErasing gives up on a sample after this many rectangles
# that do not fit in the image, and leaves the sample unchanged.
ERASING_ATTEMPTS = 10


# ---------------------------------------------------------------------------
# Checks and random numbers
# ---------------------------------------------------------------------------


def _check_batch(images: Tensor, generator: torch.Generator) -> None:
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"Expected a float image batch of shape (B, C, H, W), got dtype {images.dtype}"
            f" and shape {tuple(images.shape)}."
        )
    if generator.device.type != images.device.type:
        raise ValueError(
            f"The generator is on {generator.device} but the images are on {images.device}."
            f" Create the generator with torch.Generator(device={str(images.device)!r})."
        )


def _uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float, device: torch.device) -> Tensor:
    """Draw float32 values uniform in [low, high) from ``generator``."""
    return torch.rand(shape, generator=generator, device=device) * (high - low) + low


def _bernoulli(generator: torch.Generator, batch_size: int, p: float, device: torch.device) -> Tensor:
    """Draw one boolean per sample that is True with probability ``p``."""
    return torch.rand(batch_size, generator=generator, device=device) < p


def _per_sample(values: Tensor, images: Tensor) -> Tensor:
    """Reshape one value per sample to (B, 1, 1, 1) in the dtype of ``images``."""
    return values.to(images.dtype).view(-1, 1, 1, 1)


# ---------------------------------------------------------------------------
# Kernels with given per-sample parameters
# ---------------------------------------------------------------------------


def flip_where(images: Tensor, flip: Tensor) -> Tensor:
    """Flip horizontally the samples where the boolean vector ``flip`` is True."""
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def adjust_brightness_contrast(images: Tensor, brightness: Tensor, contrast: Tensor, contrast_first: Tensor) -> Tensor:
    """Scale brightness and contrast by per-sample factors, in a per-sample order.

    The formulas are torchvision's ``adjust_brightness`` and
    ``adjust_contrast`` (blend with black, or with the image mean, then clamp
    to [0, 1]). ``ColorJitter`` applies them in a random order, which
    ``contrast_first`` reproduces.
    """
    brightness = _per_sample(brightness, images)
    contrast = _per_sample(contrast, images)

    def scale_brightness(batch: Tensor) -> Tensor:
        return (batch * brightness).clamp(0.0, 1.0)

    def scale_contrast(batch: Tensor) -> Tensor:
        mean = batch.mean(dim=(-3, -2, -1), keepdim=True)
        return (contrast * batch + (1.0 - contrast) * mean).clamp(0.0, 1.0)

    brightness_then_contrast = scale_contrast(scale_brightness(images))
    contrast_then_brightness = scale_brightness(scale_contrast(images))
    return torch.where(contrast_first.view(-1, 1, 1, 1), contrast_then_brightness, brightness_then_contrast)


def affine_resample(
    images: Tensor,
    angles_degrees: Tensor,
    shifts: Tensor | None = None,
    flip: Tensor | None = None,
) -> Tensor:
    """Shift, flip and rotate each sample in one bilinear resampling, filling with zeros.

    Output pixel ``p`` (centred pixel coordinates) reads input pixel
    ``flip(rotate(p)) + shift``. That is the result of shifting the sample by
    ``-shift`` pixels (``shifts`` is (B, 2) as (x, y)), then flipping it, then
    rotating it by its angle, like torchvision's ``RandomCrop``, ``hflip`` and
    ``rotate`` in that order. A positive angle turns the image
    counter-clockwise, as ``rotate`` does. Pixels that come from outside the
    image are 0.
    """
    batch_size, _, height, width = images.shape
    angles = torch.deg2rad(angles_degrees.to(torch.float32))
    cos, sin = torch.cos(angles), torch.sin(angles)

    # affine_grid works in coordinates normalized to [-1, 1] on each axis, so
    # a rotation of a non-square image needs the aspect ratio in its terms.
    theta = torch.zeros(batch_size, 2, 3, device=images.device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * height / width
    theta[:, 1, 0] = sin * width / height
    theta[:, 1, 1] = cos

    if flip is not None:
        theta[:, 0, :2] *= torch.where(flip, -1.0, 1.0).unsqueeze(1)
    if shifts is not None:
        theta[:, 0, 2] = 2.0 * shifts[:, 0].to(torch.float32) / width
        theta[:, 1, 2] = 2.0 * shifts[:, 1].to(torch.float32) / height

    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def centre_crop_box(size: int, crop: int) -> tuple[int, int]:
    """Return the [start, stop) range of a centred crop, placed as torchvision's ``center_crop`` places it."""
    start = int(round((size - crop) / 2.0))
    return start, start + crop


def zero_border(images: Tensor, crop_size: tuple[int, int]) -> Tensor:
    """Keep the centred ``crop_size`` window and set everything around it to 0.

    This equals a centre crop followed by zero padding back to the input size,
    without moving the kept pixels.
    """
    height, width = images.shape[-2:]
    top, bottom = centre_crop_box(height, crop_size[0])
    left, right = centre_crop_box(width, crop_size[1])

    output = torch.zeros_like(images)
    output[..., top:bottom, left:right] = images[..., top:bottom, left:right]
    return output


def erase_rectangles(images: Tensor, top: Tensor, left: Tensor, height: Tensor, width: Tensor, value: float) -> Tensor:
    """Set one rectangle per sample to ``value``.

    The rectangles come as four integer vectors with one entry per sample. A
    height of 0 erases nothing.
    """
    rows = torch.arange(images.shape[-2], device=images.device)
    cols = torch.arange(images.shape[-1], device=images.device)
    in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    return images.masked_fill(mask[:, None], value)


# ---------------------------------------------------------------------------
# Random operations
# ---------------------------------------------------------------------------


def random_horizontal_flip(images: Tensor, generator: torch.Generator, *, p: float = 0.5) -> Tensor:
    """Flip each sample horizontally with probability ``p``."""
    _check_batch(images, generator)
    flip = _bernoulli(generator, images.shape[0], p, images.device)
    return flip_where(images, flip)


def random_brightness_contrast(
    images: Tensor,
    generator: torch.Generator,
    *,
    brightness_range: tuple[float, float] = (0.0, 5.0),
    contrast_range: tuple[float, float] = (0.0, 5.0),
) -> Tensor:
    """Scale brightness and contrast by factors drawn uniformly per sample, in a random order."""
    _check_batch(images, generator)
    batch_size, device = images.shape[0], images.device
    brightness = _uniform(generator, (batch_size,), *brightness_range, device)
    contrast = _uniform(generator, (batch_size,), *contrast_range, device)
    contrast_first = _bernoulli(generator, batch_size, 0.5, device)
    return adjust_brightness_contrast(images, brightness, contrast, contrast_first)


def random_rotation(images: Tensor, generator: torch.Generator, *, max_degrees: float) -> Tensor:
    """Rotate each sample by an angle uniform in [-max_degrees, max_degrees], filling corners with 0."""
    _check_batch(images, generator)
    angles = _uniform(generator, (images.shape[0],), -max_degrees, max_degrees, images.device)
    return affine_resample(images, angles)


def random_erasing(
    images: Tensor,
    generator: torch.Generator,
    *,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.33),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: float = 0.0,
) -> Tensor:
    """Set a random rectangle of each sample to ``value`` with probability ``p``.

    The rectangle is drawn as torchvision's ``RandomErasing`` draws it: an
    area fraction uniform in ``scale``, an aspect ratio log-uniform in
    ``ratio`` and up to 10 tries to fit inside the image. A sample whose 10
    tries all fail stays unchanged. Here the 10 tries are drawn for every
    sample at once.
    """
    _check_batch(images, generator)
    batch_size, device = images.shape[0], images.device
    image_height, image_width = images.shape[-2:]

    area = _uniform(generator, (batch_size, ERASING_ATTEMPTS), *scale, device) * (image_height * image_width)
    log_aspect = _uniform(generator, (batch_size, ERASING_ATTEMPTS), math.log(ratio[0]), math.log(ratio[1]), device)
    heights = torch.sqrt(area * torch.exp(log_aspect)).round().long()
    widths = torch.sqrt(area / torch.exp(log_aspect)).round().long()

    # Keep the first try that fits, as torchvision's loop does.
    fits = (heights < image_height) & (widths < image_width)
    first_fit = fits.int().argmax(dim=1, keepdim=True)
    height = heights.gather(1, first_fit).squeeze(1)
    width = widths.gather(1, first_fit).squeeze(1)

    erase = _bernoulli(generator, batch_size, p, device) & fits.any(dim=1)
    height = torch.where(erase, height, 0)

    top = (torch.rand(batch_size, generator=generator, device=device) * (image_height - height + 1)).long()
    left = (torch.rand(batch_size, generator=generator, device=device) * (image_width - width + 1)).long()
    return erase_rectangles(images, top, left, height, width, value)


# ---------------------------------------------------------------------------
# Policies
# ---------------------------------------------------------------------------


def no_augmentation(images: Tensor, generator: torch.Generator) -> Tensor:
    """Return ``images`` unchanged (the ``none`` policy)."""
    return images


def _check_image_size(images: Tensor, image_size: tuple[int, int], policy: str) -> None:
    if tuple(images.shape[-2:]) != tuple(image_size):
        raise ValueError(
            f"The {policy!r} augmentation was built for {image_size[0]}x{image_size[1]} images,"
            f" got a batch of {images.shape[-2]}x{images.shape[-1]}."
        )


@dataclass(frozen=True)
class HomeworkAugmentation:
    """The course homework's augmentation "Ver. 1", batched.

    Each sample gets exactly one of three operations, chosen uniformly: a
    horizontal flip with probability ``flip_p``, a colour jitter (brightness
    and contrast factors uniform in [0, 5], clamped to [0, 1]) or a rotation
    uniform in ±30°. Then every sample is centre-cropped and zero-padded back.
    There is no vertical flip, because upside-down faces are not faces.

    The homework cropped its 64x64 images to 48 and padded back to 64, which
    keeps the central 75 % of each side. On 48x48 FER2013 images the same
    fraction keeps the central 36x36 and zeroes a 6-pixel border.
    """

    image_size: tuple[int, int]
    flip_p: float = 0.5
    brightness_range: tuple[float, float] = (0.0, 5.0)
    contrast_range: tuple[float, float] = (0.0, 5.0)
    max_degrees: float = 30.0
    crop_fraction: float = 0.75

    @property
    def crop_size(self) -> tuple[int, int]:
        """Size of the centred window that survives the crop and zero padding."""
        return round(self.image_size[0] * self.crop_fraction), round(self.image_size[1] * self.crop_fraction)

    def _operations(self) -> tuple[Augmentation, ...]:
        return (
            lambda batch, generator: random_horizontal_flip(batch, generator, p=self.flip_p),
            lambda batch, generator: random_brightness_contrast(
                batch, generator, brightness_range=self.brightness_range, contrast_range=self.contrast_range
            ),
            lambda batch, generator: random_rotation(batch, generator, max_degrees=self.max_degrees),
        )

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        _check_batch(images, generator)
        _check_image_size(images, self.image_size, "homework")

        operations = self._operations()
        choice = torch.randint(len(operations), (images.shape[0],), generator=generator, device=images.device)

        # One call per operation on the samples that drew it, so the work
        # is batched and the loop runs three times whatever the batch size.
        output = images.clone()
        for index, operation in enumerate(operations):
            selected = torch.nonzero(choice == index).squeeze(1)
            if selected.numel() > 0:
                output[selected] = operation(images[selected], generator)

        return zero_border(output, self.crop_size)


@dataclass(frozen=True)
class StandardAugmentation:
    """The augmentation of the best published FER2013 models, batched.

    In order: a random crop after zero-padding each side by ``padding``
    pixels, a horizontal flip with probability ``flip_p``, a rotation uniform
    in ±10°, then random erasing (probability 0.5, area 2–33 %, aspect ratio
    0.3–3.3). The crop, flip and rotation are one bilinear resampling.

    The erased value is 0 (black), because this runs before normalization.
    Recipes that erase after normalization fill with the dataset mean.
    """

    image_size: tuple[int, int]
    padding: int = 4
    flip_p: float = 0.5
    max_degrees: float = 10.0
    erasing_p: float = 0.5
    erasing_scale: tuple[float, float] = (0.02, 0.33)
    erasing_ratio: tuple[float, float] = (0.3, 3.3)

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        _check_batch(images, generator)
        _check_image_size(images, self.image_size, "standard")
        batch_size, device = images.shape[0], images.device

        # A crop of the padded image at offset o reads input pixel p + o - padding.
        shifts = torch.randint(-self.padding, self.padding + 1, (batch_size, 2), generator=generator, device=device)
        flip = _bernoulli(generator, batch_size, self.flip_p, device)
        angles = _uniform(generator, (batch_size,), -self.max_degrees, self.max_degrees, device)
        output = affine_resample(images, angles, shifts=shifts, flip=flip)

        return random_erasing(
            output, generator, p=self.erasing_p, scale=self.erasing_scale, ratio=self.erasing_ratio, value=0.0
        )


def build_augmentation(name: str, image_size: tuple[int, int]) -> Augmentation:
    """Build the augmentation policy ``name`` for images of ``image_size`` (height, width).

    The result is called as ``augment(images, generator)`` on float images in
    [0, 1] and returns a new batch of the same shape, dtype and device.
    """
    if name not in AUGMENTATION_NAMES:
        close = difflib.get_close_matches(str(name), AUGMENTATION_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"Config key 'augmentation': unknown policy {name!r}.{hint}"
            f" Use one of: {', '.join(AUGMENTATION_NAMES)}."
        )

    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size,)
    if len(size) != 2 or not all(isinstance(side, int) and side > 0 for side in size):
        raise ConfigError(
            f"Config key 'image_size': invalid value {image_size!r}. Use (height, width) in pixels."
        )

    if name == "none":
        return no_augmentation
    if name == "homework":
        return HomeworkAugmentation(size)
    return StandardAugmentation(size)


# ---------------------------------------------------------------------------
# Test-time augmentation
# ---------------------------------------------------------------------------


@torch.no_grad()
def ten_crop_predict(model: nn.Module, images: Tensor, crop_fraction: float = 0.875) -> Tensor:
    """Average the model's class probabilities over ten crops of each image.

    The crops are the four corners and the centre, each ``crop_fraction`` of
    the side, and the same five of the flipped image. Each crop is resized
    back to the input size, so any model accepts it. Returns the log of the
    mean softmax probabilities, shape (B, num_classes) in float32. Softmax of
    the result gives the mean probabilities, and argmax or cross-entropy work
    on it as on logits. The model's train/eval mode is left as it is, so call
    ``model.eval()`` first.
    """
    if not 0.0 < crop_fraction <= 1.0:
        raise ConfigError(
            f"Config key 'crop_fraction': invalid value {crop_fraction!r}. Use a fraction in (0, 1]."
        )

    height, width = images.shape[-2:]
    crop_size = [max(1, round(height * crop_fraction)), max(1, round(width * crop_fraction))]

    log_probabilities = []
    for crop in TF.ten_crop(images, crop_size):
        resized = TF.resize(crop, [height, width], antialias=True)
        log_probabilities.append(torch.log_softmax(model(resized).float(), dim=1))

    # log(mean(p)) computed from log(p) without underflow.
    stacked = torch.stack(log_probabilities)
    return torch.logsumexp(stacked, dim=0) - math.log(len(log_probabilities))


__all__ = [
    "AUGMENTATION_NAMES",
    "Augmentation",
    "HomeworkAugmentation",
    "StandardAugmentation",
    "build_augmentation",
    "random_brightness_contrast",
    "random_erasing",
    "random_horizontal_flip",
    "random_rotation",
    "ten_crop_predict",
]
