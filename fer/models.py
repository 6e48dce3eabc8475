"""Model registry: the homework's CNNs, ResNet-18 and a FER-style VGG.

Every model takes grayscale images of shape (B, 1, H, W) and returns logits
of shape (B, num_classes). The flatten size of each linear classifier follows
``image_size``, so the same model works on FER2013's 48x48 images and on the
course's 64x64 images.

A new model is one function decorated with ``@register_model(name, ...)``.
"""

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from fer.constants import NUM_CLASSES
from fer.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_CHANNEL_NUM = 64

# Four max-pool stages halve 16 pixels down to 1, so the deepest models need
# at least 16 pixels per side.
MIN_IMAGE_SIDE = 16

# Negative slope of the homework's LeakyReLU.
LEAKY_RELU_SLOPE = 0.05

ModelBuilder = Callable[[int, int, tuple[int, int]], nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder, its report description and whether it uses ``channel_num``."""

    builder: ModelBuilder
    description: str
    uses_channel_num: bool
    min_channel_num: int


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str, *, description: str, uses_channel_num: bool = True, min_channel_num: int = 1
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register ``builder(num_classes, channel_num, image_size)`` under ``name``.

    ``min_channel_num`` is the smallest ``channel_num`` for which every layer
    keeps at least one channel.
    """

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"Model name {name!r} is already registered.")
        _REGISTRY[name] = ModelEntry(builder, description, uses_channel_num, min_channel_num)
        return builder

    return decorator


# ---------------------------------------------------------------------------
# Shared layers
# ---------------------------------------------------------------------------


def homework_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Build the homework's ``Block(i, o)``: 3x3 conv, batch norm, LeakyReLU(0.05), 2x2 max-pool."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(LEAKY_RELU_SLOPE),
        nn.MaxPool2d(2),
    )


def pooled_size(image_size: tuple[int, int], num_pools: int) -> tuple[int, int]:
    """Return the (height, width) left after ``num_pools`` 2x2 max-pools, which round down."""
    height, width = image_size
    return height // 2**num_pools, width // 2**num_pools


def _flattened_features(channels: int, image_size: tuple[int, int], num_pools: int) -> int:
    height, width = pooled_size(image_size, num_pools)
    return channels * height * width


# ---------------------------------------------------------------------------
# Homework CNNs
# ---------------------------------------------------------------------------


@register_model(
    "cnn1",
    description="One homework block with 64 channels and a linear classifier (the homework's 'Original' baseline).",
    uses_channel_num=False,
)
def build_cnn1(num_classes: int, channel_num: int, image_size: tuple[int, int]) -> nn.Module:
    """Build Block(1, 64) and a linear classifier.

    The width is fixed at 64 channels as in the homework, so ``channel_num``
    is ignored.
    """
    width = DEFAULT_CHANNEL_NUM
    return nn.Sequential(
        homework_block(1, width),
        nn.Flatten(),
        nn.Linear(_flattened_features(width, image_size, num_pools=1), num_classes),
    )


@register_model(
    "cnn3",
    description="Three homework blocks narrowing from C to C/4 channels and a linear classifier.",
    min_channel_num=4,
)
def build_cnn3(num_classes: int, channel_num: int, image_size: tuple[int, int]) -> nn.Module:
    """Build Block(1, C), Block(C, C/2), Block(C/2, C/4) and a linear classifier.

    C/2 and C/4 round down when C is not a multiple of 4.
    """
    c = channel_num
    return nn.Sequential(
        homework_block(1, c),
        homework_block(c, c // 2),
        homework_block(c // 2, c // 4),
        nn.Flatten(),
        nn.Linear(_flattened_features(c // 4, image_size, num_pools=3), num_classes),
    )


@register_model(
    "cnn4",
    description="Four homework blocks with C, 2C, 4C and 2C channels and a linear classifier.",
)
def build_cnn4(num_classes: int, channel_num: int, image_size: tuple[int, int]) -> nn.Module:
    """Build Block(1, C), Block(C, 2C), Block(2C, 4C), Block(4C, 2C) and a linear classifier."""
    c = channel_num
    return nn.Sequential(
        homework_block(1, c),
        homework_block(c, 2 * c),
        homework_block(2 * c, 4 * c),
        homework_block(4 * c, 2 * c),
        nn.Flatten(),
        nn.Linear(_flattened_features(2 * c, image_size, num_pools=4), num_classes),
    )


@register_model(
    "cnn4new",
    description=(
        "Four homework blocks widening from C to 16C channels and two linear layers,"
        " with almost all parameters in the first linear layer."
    ),
)
def build_cnn4new(num_classes: int, channel_num: int, image_size: tuple[int, int]) -> nn.Module:
    """Build Block(1, C), Block(C, 4C), Block(4C, 8C), Block(8C, 16C) and two linear layers.

    The first linear layer maps 16C·h·w features to 4C·h·w, where h x w is the
    map left after four pools. As in the homework, no activation separates the
    two linear layers, so together they compute one linear map of rank at
    most 4C·h·w.
    """
    c = channel_num
    hidden = _flattened_features(4 * c, image_size, num_pools=4)
    return nn.Sequential(
        homework_block(1, c),
        homework_block(c, 4 * c),
        homework_block(4 * c, 8 * c),
        homework_block(8 * c, 16 * c),
        nn.Flatten(),
        nn.Linear(_flattened_features(16 * c, image_size, num_pools=4), hidden),
        nn.Linear(hidden, num_classes),
    )


# ---------------------------------------------------------------------------
# Ready-made architectures
# ---------------------------------------------------------------------------


@register_model(
    "resnet18",
    description="torchvision ResNet-18 trained from scratch, with a one-channel 7x7 stride-2 stem.",
    uses_channel_num=False,
)
def build_resnet18(num_classes: int, channel_num: int, image_size: tuple[int, int]) -> nn.Module:
    """Build torchvision's ResNet-18 without pretrained weights for grayscale input.

    Its global average pool accepts any input size, and its widths are fixed
    by torchvision, so ``channel_num`` and ``image_size`` are not used.
    """
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)

    # The replaced stem needs the He initialization (fan_out, ReLU) that
    # torchvision 0.29's ResNet gives its other convolutions.
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


# Dropout after each hidden linear layer of the VGG, from the VGG of
# Khaireddin & Chen (2021), github.com/usef-kh/fer, models/vgg.py.
VGG_DROPOUT = 0.2


def _vgg_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for stage_in in (in_channels, out_channels):
        layers += [
            nn.Conv2d(stage_in, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


@register_model(
    "vgg",
    description=(
        "FER-style VGG (Khaireddin & Chen 2021): four stages of two 3x3 conv + batch norm + ReLU"
        " with C, 2C, 4C and 8C channels, then two 64C-wide linear layers with dropout."
    ),
)
def build_vgg(num_classes: int, channel_num: int, image_size: tuple[int, int]) -> nn.Module:
    """Build the FER-style VGG of Khaireddin & Chen (2021).

    At the default C = 64 the stages have 64/128/256/512 channels and the two
    hidden linear layers 4096 units, as in the authors' code
    (github.com/usef-kh/fer, models/vgg.py). Both scale in proportion to C
    (the hidden width is 64·C).
    """
    c = channel_num
    hidden = 64 * c
    stage_widths = (c, 2 * c, 4 * c, 8 * c)

    stages = []
    in_channels = 1
    for width in stage_widths:
        stages.append(_vgg_stage(in_channels, width))
        in_channels = width

    classifier = nn.Sequential(
        nn.Flatten(),
        nn.Linear(_flattened_features(8 * c, image_size, num_pools=4), hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(VGG_DROPOUT),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(VGG_DROPOUT),
        nn.Linear(hidden, num_classes),
    )
    return nn.Sequential(*stages, classifier)


# Names of the models defined in this module. build_model also accepts
# models registered later by other modules.
MODEL_NAMES: tuple[str, ...] = tuple(_REGISTRY)


# ---------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------


def _get_entry(name: str) -> ModelEntry:
    if name in _REGISTRY:
        return _REGISTRY[name]

    allowed = ", ".join(_REGISTRY)
    close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"Config key 'architectures': unknown model {name!r}.{hint} Use one of: {allowed}."
    )


def _check_build_arguments(
    name: str, entry: ModelEntry, num_classes: int, channel_num: int, image_size: tuple[int, int]
) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(
            f"Config key 'num_classes': invalid value {num_classes!r}. Use an integer of at least 2."
        )

    if isinstance(channel_num, bool) or not isinstance(channel_num, int) or channel_num < entry.min_channel_num:
        raise ConfigError(
            f"Config key 'channel_num': invalid value {channel_num!r} for model {name!r}."
            f" Use an integer of at least {entry.min_channel_num}."
        )

    if (
        len(image_size) != 2
        or not all(isinstance(side, int) and not isinstance(side, bool) for side in image_size)
        or min(image_size) < MIN_IMAGE_SIDE
    ):
        raise ConfigError(
            f"Config key 'image_size': invalid value {image_size!r}."
            f" Use (height, width) with both sides at least {MIN_IMAGE_SIDE} pixels."
        )


def build_model(
    name: str,
    *,
    num_classes: int = NUM_CLASSES,
    channel_num: int = DEFAULT_CHANNEL_NUM,
    image_size: tuple[int, int] = (48, 48),
) -> nn.Module:
    """Build the registered model ``name`` for grayscale images of ``image_size`` (height, width).

    Raises ConfigError for an unknown name, a ``channel_num`` below the
    model's minimum, fewer than 2 classes or a side under 16 pixels.
    """
    entry = _get_entry(name)
    image_size = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size,)
    _check_build_arguments(name, entry, num_classes, channel_num, image_size)

    if not entry.uses_channel_num and channel_num != DEFAULT_CHANNEL_NUM:
        logger.warning(
            "Model %r has fixed widths and ignores channel_num=%d.", name, channel_num
        )

    model = entry.builder(num_classes, channel_num, image_size)
    logger.debug(
        "Built %s (channel_num=%d, image_size=%s) with %d parameters.",
        name,
        channel_num,
        image_size,
        count_parameters(model),
    )
    return model


def count_parameters(model: nn.Module) -> int:
    """Count the trainable parameters of ``model`` (batch-norm running statistics are buffers and not counted)."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def describe_model(name: str) -> str:
    """Return the one-sentence report description of the registered model ``name``."""
    return _get_entry(name).description


def model_uses_channel_num(name: str) -> bool:
    """Return whether the width of model ``name`` follows ``channel_num``."""
    return _get_entry(name).uses_channel_num


__all__ = [
    "MODEL_NAMES",
    "build_model",
    "count_parameters",
    "describe_model",
    "model_uses_channel_num",
    "register_model",
]
