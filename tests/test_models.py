"""Tests of the model registry in fer.models."""

import logging

import pytest
import torch
from torch import nn

from fer.constants import NUM_CLASSES
from fer.errors import ConfigError
from fer.models import (
    MODEL_NAMES,
    build_model,
    count_parameters,
    describe_model,
    homework_block,
    model_uses_channel_num,
    register_model,
)

IMAGE_SIDES = (48, 64)
BATCH_SIZE = 2

# Parameter counts at C = 64 reported for the homework's models, in millions.
PUBLISHED_MILLIONS = [
    ("cnn4new", 48, 27.3),
    ("cnn4new", 64, 73.2),
    ("cnn4", 48, 0.67),
    ("resnet18", 48, 11.2),
]


@pytest.fixture(autouse=True)
def seed_torch():
    torch.manual_seed(0)


def make_batch(side: int) -> torch.Tensor:
    return torch.rand(BATCH_SIZE, 1, side, side)


def test_registry_lists_homework_models():
    assert MODEL_NAMES == ("cnn1", "cnn3", "cnn4", "cnn4new", "resnet18", "vgg")


@pytest.mark.parametrize("side", IMAGE_SIDES)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_returns_logits(name, side):
    model = build_model(name, image_size=(side, side))

    logits = model(make_batch(side))

    assert logits.shape == (BATCH_SIZE, NUM_CLASSES)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_backward_reaches_every_parameter(name):
    model = build_model(name)

    loss = nn.functional.cross_entropy(model(make_batch(48)), torch.tensor([0, 3]))
    loss.backward()

    missing = [param_name for param_name, param in model.named_parameters() if param.grad is None]
    assert missing == []
    assert all(torch.isfinite(param.grad).all() for param in model.parameters())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_num_classes_sets_outputs(name):
    model = build_model(name, num_classes=3)

    assert model(make_batch(48)).shape == (BATCH_SIZE, 3)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_non_square_input(name):
    model = build_model(name, image_size=(40, 56))

    assert model(torch.rand(BATCH_SIZE, 1, 40, 56)).shape == (BATCH_SIZE, NUM_CLASSES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_channel_num_scales_width(name, caplog):
    narrow = count_parameters(build_model(name, channel_num=8))
    with caplog.at_level(logging.WARNING, logger="fer.models"):
        wide = count_parameters(build_model(name, channel_num=16))

    if model_uses_channel_num(name):
        assert wide > narrow
        assert caplog.records == []
    else:
        assert wide == narrow
        assert "ignores channel_num=16" in caplog.text


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_channels_last_matches_contiguous(name):
    model = build_model(name, channel_num=16).eval()
    images = make_batch(48)

    with torch.no_grad():
        expected = model(images)
        from_channels_last = model(images.to(memory_format=torch.channels_last))
        model = model.to(memory_format=torch.channels_last)
        both_channels_last = model(images.to(memory_format=torch.channels_last))

    torch.testing.assert_close(from_channels_last, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both_channels_last, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "side", "millions"), PUBLISHED_MILLIONS)
def test_parameter_count_matches_published(name, side, millions):
    count = count_parameters(build_model(name, image_size=(side, side)))

    assert count / 1e6 == pytest.approx(millions, rel=0.02)


def test_cnn3_parameter_count_rounds_to_published():
    # Published as 0.03 M, which is too coarse for a relative tolerance.
    count = count_parameters(build_model("cnn3"))

    assert round(count / 1e6, 2) == 0.03


def test_cnn4new_flatten_follows_input_size():
    channel_num = 8
    for side in IMAGE_SIDES:
        model = build_model("cnn4new", channel_num=channel_num, image_size=(side, side))
        first_linear, second_linear = [layer for layer in model.modules() if isinstance(layer, nn.Linear)]
        pooled = side // 16

        assert first_linear.in_features == 16 * channel_num * pooled * pooled
        assert first_linear.out_features == 4 * channel_num * pooled * pooled
        assert second_linear.in_features == first_linear.out_features


def test_homework_block_layers():
    conv, norm, activation, pool = homework_block(3, 5)

    assert (conv.in_channels, conv.out_channels) == (3, 5)
    assert conv.kernel_size == (3, 3)
    assert conv.padding == (1, 1)
    assert isinstance(norm, nn.BatchNorm2d)
    assert norm.num_features == 5
    assert isinstance(activation, nn.LeakyReLU)
    assert activation.negative_slope == 0.05
    assert isinstance(pool, nn.MaxPool2d)
    assert pool.kernel_size == 2


def test_cnn1_width_is_fixed_at_64():
    model = build_model("cnn1", channel_num=16)
    conv = next(layer for layer in model.modules() if isinstance(layer, nn.Conv2d))

    assert conv.out_channels == 64


def test_vgg_widths_at_default_channel_num():
    model = build_model("vgg")
    conv_widths = [layer.out_channels for layer in model.modules() if isinstance(layer, nn.Conv2d)]
    linear_widths = [layer.out_features for layer in model.modules() if isinstance(layer, nn.Linear)]
    dropouts = [layer for layer in model.modules() if isinstance(layer, nn.Dropout)]

    assert conv_widths == [64, 64, 128, 128, 256, 256, 512, 512]
    assert linear_widths == [4096, 4096, NUM_CLASSES]
    assert len(dropouts) == 2


def test_resnet18_stem_is_one_channel():
    model = build_model("resnet18")

    assert model.conv1.in_channels == 1
    assert model.conv1.kernel_size == (7, 7)
    assert model.conv1.stride == (2, 2)
    assert model.fc.out_features == NUM_CLASSES


def test_unknown_name_suggests_closest():
    with pytest.raises(ConfigError) as error:
        build_model("cnn5")

    message = str(error.value)
    assert "'architectures'" in message
    assert "'cnn5'" in message
    assert "Did you mean 'cnn4'?" in message
    for name in MODEL_NAMES:
        assert name in message


@pytest.mark.parametrize(
    ("arguments", "key"),
    [
        ({"channel_num": 0}, "'channel_num'"),
        ({"channel_num": 2.5}, "'channel_num'"),
        ({"num_classes": 1}, "'num_classes'"),
        ({"image_size": (8, 48)}, "'image_size'"),
        ({"image_size": 48}, "'image_size'"),
    ],
)
def test_invalid_argument_names_key(arguments, key):
    with pytest.raises(ConfigError, match=key):
        build_model("cnn4", **arguments)


def test_cnn3_rejects_too_few_channels():
    with pytest.raises(ConfigError, match="at least 4"):
        build_model("cnn3", channel_num=2)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_description_is_one_sentence(name):
    description = describe_model(name)

    assert description.endswith(".")
    assert description.count(". ") == 0


def test_describe_unknown_name_raises():
    with pytest.raises(ConfigError, match="'architectures'"):
        describe_model("resnet50")


def test_register_duplicate_name_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_model("cnn3", description="Duplicate.")(lambda *arguments: nn.Identity())


def test_count_parameters_skips_frozen():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model[0].requires_grad_(False)

    assert count_parameters(model) == 3 * 2 + 2
