"""Tests of the synthetic demo dataset generator."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fer.constants import CLASS_NAMES, NUM_CLASSES
from fer.data.dataset import OFFICIAL_USAGES, RawDataset
from fer.data.demo import CLASS_PRIORS, LABEL_NOISE, _add_label_noise, generate_demo
from fer.errors import ConfigError


@pytest.fixture(scope="module")
def demo() -> RawDataset:
    return generate_demo(1500, seed=3)


def test_demo_arrays_shapes_and_dtypes(demo):
    assert isinstance(demo, RawDataset)
    assert demo.images.shape == (1500, 48, 48)
    assert demo.images.dtype == np.uint8
    assert demo.labels.shape == (1500,)
    assert demo.labels.dtype == np.int64
    assert demo.usage.shape == (1500,)
    assert demo.ids.shape == (1500,)
    assert demo.labels.min() >= 0
    assert demo.labels.max() < NUM_CLASSES


def test_demo_source_layout_and_notes(demo):
    assert demo.source == "demo"
    assert demo.layout == "demo"
    assert any("synthetic" in note for note in demo.notes)


def test_demo_images_use_the_gray_range(demo):
    # Faces on varied backgrounds and lighting: neither blank nor saturated.
    per_image_std = demo.images.reshape(len(demo.images), -1).std(axis=1)
    assert per_image_std.min() > 5
    assert demo.images.min() < 30
    assert demo.images.max() > 225
    assert len(np.unique(demo.images)) > 200


def test_demo_same_seed_is_identical():
    first = generate_demo(100, seed=7)
    second = generate_demo(100, seed=7)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.usage, second.usage)
    np.testing.assert_array_equal(first.ids, second.ids)


def test_demo_other_seed_differs():
    first = generate_demo(100, seed=7)
    second = generate_demo(100, seed=8)
    assert not np.array_equal(first.images, second.images)
    assert not np.array_equal(first.labels, second.labels)


def test_demo_ids_unique_with_usage_prefix(demo):
    assert len(set(demo.ids.tolist())) == len(demo.ids)
    for image_id, usage in zip(demo.ids, demo.usage):
        assert image_id.startswith(f"{usage}_")


def test_demo_usage_fractions(demo):
    assert set(demo.usage.tolist()) == set(OFFICIAL_USAGES)
    fractions = {usage: np.mean(demo.usage == usage) for usage in OFFICIAL_USAGES}
    assert fractions["Training"] == pytest.approx(0.8, abs=0.02)
    assert fractions["PublicTest"] == pytest.approx(0.1, abs=0.02)
    assert fractions["PrivateTest"] == pytest.approx(0.1, abs=0.02)


def test_demo_images_ordered_by_usage(demo):
    codes = np.array([OFFICIAL_USAGES.index(usage) for usage in demo.usage])
    assert np.all(np.diff(codes) >= 0)


@pytest.mark.parametrize("num_images", [21, 60, 1500])
def test_demo_every_class_in_every_usage(num_images):
    data = generate_demo(num_images, seed=num_images)
    for usage in OFFICIAL_USAGES:
        present = set(data.labels[data.usage == usage].tolist())
        assert present == set(range(NUM_CLASSES)), f"{usage} lacks classes {set(range(NUM_CLASSES)) - present}"


def test_demo_class_counts_follow_priors(demo):
    counts = np.bincount(demo.labels, minlength=NUM_CLASSES)
    expected = CLASS_PRIORS * len(demo.labels)
    assert np.all(np.abs(counts - expected) <= 1)
    assert np.argmax(counts) == CLASS_NAMES.index("happy")
    assert np.argmin(counts) == CLASS_NAMES.index("disgust")
    assert counts[CLASS_NAMES.index("disgust")] / len(demo.labels) >= 0.029


def test_label_noise_fraction():
    labels = np.repeat(np.arange(NUM_CLASSES), 3000)
    drawn_classes = _add_label_noise(labels, np.random.default_rng(0))
    assert np.all((drawn_classes >= 0) & (drawn_classes < NUM_CLASSES))
    assert np.mean(drawn_classes != labels) == pytest.approx(LABEL_NOISE, abs=0.01)


def test_demo_image_size_parameter():
    data = generate_demo(50, image_size=64, seed=1)
    assert data.images.shape == (50, 64, 64)
    assert data.images.dtype == np.uint8


def test_demo_image_size_keeps_labels():
    # The image size changes the drawing only, not which faces are drawn.
    small = generate_demo(50, image_size=48, seed=1)
    large = generate_demo(50, image_size=64, seed=1)
    np.testing.assert_array_equal(small.labels, large.labels)
    np.testing.assert_array_equal(small.ids, large.ids)


@pytest.mark.parametrize("num_images", [0, 20, 3.5, True, "100"])
def test_demo_rejects_invalid_num_images(num_images):
    with pytest.raises(ConfigError, match="demo_size"):
        generate_demo(num_images)


@pytest.mark.parametrize("image_size", [8, 0, 48.0])
def test_demo_rejects_invalid_image_size(image_size):
    with pytest.raises(ConfigError, match="image_size"):
        generate_demo(30, image_size=image_size)


def test_demo_learnable_but_not_separable(demo):
    # A linear model on the pixels must beat the majority class clearly,
    # and must not come near perfect accuracy, so that the data separates
    # good models from bad ones. PCA keeps the fit to a few seconds.
    pixels = demo.images.reshape(len(demo.images), -1).astype(np.float32) / 255.0
    train = demo.usage == "Training"
    model = make_pipeline(StandardScaler(), PCA(100, random_state=0), LogisticRegression(C=0.1, max_iter=1000))
    model.fit(pixels[train], demo.labels[train])

    accuracy = model.score(pixels[~train], demo.labels[~train])
    majority = np.bincount(demo.labels[~train]).max() / np.sum(~train)
    assert accuracy > majority + 0.10
    assert accuracy < 0.95
