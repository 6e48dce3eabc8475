"""Synthetic grayscale faces with the 7 FER2013 expressions, for runs without downloads.

:func:`generate_demo` draws cartoon faces with numpy: a face oval with hair,
eyes, brows, a nose and a mouth. The expression sets the mouth shape, the
brow height and angle, the eye openness and the wrinkles of the nose. Each
face varies in shape, pose, lighting, blur and noise, and shows its
expression at a random intensity, so weak expressions look almost neutral.
About 5 % of the labels are wrong on purpose. The classes are imbalanced as
in FER2013.

A linear classifier on the pixels scores clearly above the majority class
and a small CNN scores higher, but neither can reach 100 %. The images test
the workflow end to end; an accuracy on them is no measure of FER2013
performance.
"""

from __future__ import annotations

import logging

import numpy as np

from fer.constants import CLASS_NAMES, FER_IMAGE_SIZE, NUM_CLASSES
from fer.data.dataset import OFFICIAL_USAGES, RawDataset
from fer.errors import ConfigError

logger = logging.getLogger(__name__)

# Named per-face parameter arrays, one value per image.
Parameters = dict[str, np.ndarray]
# A scalar, or an array that broadcasts against a (batch, H, W) canvas.
Value = float | np.ndarray

# FER2013 training counts (angry, disgust, fear, happy, sad, surprise,
# neutral) from the Kaggle challenge release, 28,709 images in all.
FER2013_TRAINING_COUNTS = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965])

# Class priors of the demo data. Disgust is raised from FER2013's 0.015 to
# 0.03, so that a 10 % split of 3,500 images still contains about ten
# disgust faces.
MIN_DISGUST_PRIOR = 0.03
_priors = FER2013_TRAINING_COUNTS / FER2013_TRAINING_COUNTS.sum()
_priors[CLASS_NAMES.index("disgust")] = MIN_DISGUST_PRIOR
CLASS_PRIORS: np.ndarray = _priors / _priors.sum()

# Fractions of the images in the Training, PublicTest and PrivateTest usages.
USAGE_FRACTIONS = (0.8, 0.1, 0.1)

# Share of images whose face shows another expression than its label.
LABEL_NOISE = 0.05

# Each class needs one image per usage, and the split keeps one of every
# three in Training.
MIN_IMAGES_PER_CLASS = 3
MIN_IMAGE_SIZE = 16

# Images rendered per numpy batch: large enough to amortize the Python
# overhead, small enough that one float32 layer of a 48x48 batch is 2.4 MB.
RENDER_BATCH = 256

# Expression parameters in face units (the face oval is 1.2 to 1.5 wide).
# Vertical offsets grow downwards. brow_raise moves the whole brow,
# brow_inner moves its inner end only (angry: down, sad and fear: up).
# eye_open is the eye's height over its width. mouth_curve lifts the mouth
# corners (a smile) or drops them (a frown). mouth_open is the gap between
# the lips, mouth_width scales the mouth, mouth_raise lifts it towards the
# nose. teeth, wrinkle and folds are opacities from 0 to 1 of the teeth, the
# wrinkles across the nose bridge and the folds from nose to mouth corners.
EXPRESSION_FIELDS = (
    "brow_raise",
    "brow_inner",
    "brow_arch",
    "eye_open",
    "mouth_curve",
    "mouth_open",
    "mouth_width",
    "mouth_raise",
    "teeth",
    "wrinkle",
    "folds",
)
# One row per class in CLASS_NAMES order, one column per EXPRESSION_FIELDS.
EXPRESSION_PROTOTYPES = np.array(
    [
        # raise inner  arch   eye    curve  open   width  mraise teeth wrinkle folds
        [0.05, 0.11, 0.00, 0.34, -0.04, 0.02, 0.85, 0.00, 0.4, 0.3, 0.2],  # angry
        [0.04, 0.07, 0.00, 0.20, -0.07, 0.04, 0.90, -0.06, 0.5, 1.0, 1.0],  # disgust
        [-0.07, -0.07, 0.01, 0.80, -0.05, 0.09, 1.15, 0.00, 0.6, 0.0, 0.0],  # fear
        [-0.01, 0.00, 0.02, 0.30, 0.11, 0.07, 1.25, 0.00, 1.0, 0.0, 0.6],  # happy
        [0.00, -0.08, -0.02, 0.34, -0.09, 0.00, 0.90, 0.02, 0.0, 0.0, 0.0],  # sad
        [-0.11, -0.01, 0.05, 0.90, 0.00, 0.22, 0.55, 0.02, 0.0, 0.0, 0.0],  # surprise
        [0.00, 0.00, 0.02, 0.45, 0.00, 0.00, 1.00, 0.00, 0.0, 0.0, 0.0],  # neutral
    ],
    dtype=np.float32,
)
# Standard deviation of each field around its expression, per face.
EXPRESSION_JITTER = np.array(
    [0.015, 0.02, 0.01, 0.05, 0.02, 0.015, 0.08, 0.01, 0.15, 0.15, 0.15],
    dtype=np.float32,
)

# Range of the expression intensity: 0 draws a neutral face, 1 the full
# prototype. The lower end makes some faces ambiguous on purpose.
INTENSITY_RANGE = (0.35, 1.0)


def generate_demo(num_images: int = 3500, *, image_size: int = FER_IMAGE_SIZE, seed: int = 0) -> RawDataset:
    """Generate ``num_images`` synthetic faces of ``image_size`` pixels squared.

    The result is deterministic given ``seed``. Labels follow
    ``CLASS_PRIORS`` exactly (largest remainder) with at least three images
    per class, and each class is split 80/10/10 into the Training,
    PublicTest and PrivateTest usages, so every usage contains every class.
    Images are ordered by usage, as in the FER2013 CSV.
    """
    _check_arguments(num_images, image_size)
    rng = np.random.default_rng(seed)

    labels = rng.permutation(np.repeat(np.arange(NUM_CLASSES), _class_counts(num_images)))
    drawn_classes = _add_label_noise(labels, rng)
    usage_codes = _stratified_usage_codes(labels, rng)

    # Stable sort, so the random order within each usage is kept.
    order = np.argsort(usage_codes, kind="stable")
    labels, drawn_classes, usage_codes = labels[order], drawn_classes[order], usage_codes[order]

    expressions = _sample_expressions(drawn_classes, rng)
    faces = _sample_faces(num_images, rng)
    images = _render(expressions, faces, image_size, rng)

    usage = np.array(OFFICIAL_USAGES)[usage_codes]
    ids = np.array([f"{name}_{index:06d}" for index, name in enumerate(usage, start=1)])
    mislabeled = int(np.sum(labels != drawn_classes))
    logger.info("generated %d synthetic %dx%d faces (seed %d, %d mislabeled)", num_images, image_size, image_size, seed, mislabeled)

    return RawDataset(
        images=images,
        labels=labels.astype(np.int64),
        usage=usage,
        ids=ids,
        source="demo",
        layout="demo",
        notes=[
            f"synthetic demo faces from fer.data.demo.generate_demo(num_images={num_images}, "
            f"image_size={image_size}, seed={seed}); they are not FER2013, and accuracies on them "
            "do not measure real facial-expression recognition",
            f"{mislabeled} of {num_images} labels ({mislabeled / num_images:.1%}) are wrong on purpose (label noise)",
        ],
    )


def _check_arguments(num_images: int, image_size: int) -> None:
    minimum_images = MIN_IMAGES_PER_CLASS * NUM_CLASSES
    if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)) or num_images < minimum_images:
        raise ConfigError(
            f"demo_size (the number of demo images) must be an integer of at least {minimum_images}, three per class "
            f"so that every usage contains every class, got {num_images!r}; raise demo_size"
        )
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < MIN_IMAGE_SIZE:
        raise ConfigError(
            f"image_size of the demo images must be an integer of at least {MIN_IMAGE_SIZE} pixels, got {image_size!r}; "
            f"use {FER_IMAGE_SIZE} (FER2013) or 64 (the course images)"
        )


def _class_counts(num_images: int) -> np.ndarray:
    """Split ``num_images`` by ``CLASS_PRIORS`` with the largest-remainder method."""
    exact = CLASS_PRIORS * num_images
    counts = np.maximum(np.floor(exact).astype(np.int64), MIN_IMAGES_PER_CLASS)

    # In small datasets the minimum per class can exceed num_images. Take the
    # excess from the classes furthest above their exact share, but never
    # below the minimum (_check_arguments makes that possible).
    while counts.sum() > num_images:
        surplus = np.where(counts > MIN_IMAGES_PER_CLASS, counts - exact, -np.inf)
        counts[np.argmax(surplus)] -= 1

    remainder = exact - counts
    for index in np.argsort(-remainder, kind="stable")[: num_images - counts.sum()]:
        counts[index] += 1
    return counts


def _add_label_noise(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return the expression each face shows: its label, or another class for ``LABEL_NOISE`` of the faces."""
    flipped = rng.random(len(labels)) < LABEL_NOISE
    other = (labels + rng.integers(1, NUM_CLASSES, size=len(labels))) % NUM_CLASSES
    return np.where(flipped, other, labels)


def _stratified_usage_codes(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Assign each image an index into ``OFFICIAL_USAGES``, class by class."""
    codes = np.zeros(len(labels), dtype=np.int64)
    for label in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == label))
        public = max(1, round(USAGE_FRACTIONS[1] * len(members)))
        private = max(1, round(USAGE_FRACTIONS[2] * len(members)))
        codes[members[len(members) - public - private : len(members) - private]] = 1
        codes[members[len(members) - private :]] = 2
    return codes


def _sample_expressions(drawn_classes: np.ndarray, rng: np.random.Generator) -> Parameters:
    """Draw the expression parameters of each face: a blend of neutral and its class, plus jitter."""
    neutral = EXPRESSION_PROTOTYPES[CLASS_NAMES.index("neutral")]
    intensity = rng.uniform(*INTENSITY_RANGE, size=(len(drawn_classes), 1)).astype(np.float32)
    jitter = rng.standard_normal((len(drawn_classes), len(EXPRESSION_FIELDS))).astype(np.float32) * EXPRESSION_JITTER
    values = neutral + intensity * (EXPRESSION_PROTOTYPES[drawn_classes] - neutral) + jitter

    expressions = dict(zip(EXPRESSION_FIELDS, values.T))
    expressions["eye_open"] = np.clip(expressions["eye_open"], 0.12, 1.1)
    expressions["mouth_open"] = np.clip(expressions["mouth_open"], 0.0, None)
    expressions["mouth_width"] = np.clip(expressions["mouth_width"], 0.4, 1.5)
    for name in ("teeth", "wrinkle", "folds"):
        expressions[name] = np.clip(expressions[name], 0.0, 1.0)
    return expressions


def _sample_faces(count: int, rng: np.random.Generator) -> Parameters:
    """Draw the identity, pose, lighting and camera parameters of each face.

    Lengths are in face units, where the image spans -1 to 1 at scale 1.
    Gray levels are on the 0-255 scale.
    """

    def uniform(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, size=count).astype(np.float32)

    faces = {
        # Identity: face shape and feature placement.
        "face_rx": uniform(0.62, 0.76),
        "face_ry": uniform(0.82, 0.98),
        "eye_dx": uniform(0.26, 0.33),
        "eye_y": uniform(-0.16, -0.06),
        "eye_rx": uniform(0.12, 0.16),
        "brow_gap": uniform(0.10, 0.14),
        "brow_thickness": uniform(0.035, 0.06),
        "nose_y": uniform(0.16, 0.26),
        "mouth_y": uniform(0.44, 0.54),
        "mouth_hw": uniform(0.20, 0.27),
        "lip_thickness": uniform(0.03, 0.05),
        "asymmetry": rng.normal(0.0, 0.015, size=count).astype(np.float32),
        # Gray levels of skin, hair, background and features.
        "skin": uniform(120, 215),
        "hair": uniform(10, 110),
        "hair_line": uniform(-0.75, -0.5),
        "has_hair": (rng.random(count) < 0.85).astype(np.float32),
        "background": uniform(15, 235),
        "feature_darkness": uniform(0.25, 0.55),
        # Pose.
        "shift_x": rng.normal(0.0, 0.05, size=count).astype(np.float32),
        "shift_y": rng.normal(0.04, 0.05, size=count).astype(np.float32),
        "rotation": np.deg2rad(rng.normal(0.0, 6.0, size=count)).astype(np.float32),
        "scale": uniform(1.0, 1.2),
        # Lighting and camera.
        "contrast": uniform(0.7, 1.25),
        "brightness": rng.normal(0.0, 18.0, size=count).astype(np.float32),
        "gradient": uniform(0.0, 40.0),
        "gradient_angle": uniform(0.0, 2 * np.pi),
        "blur_sigma": uniform(0.3, 0.9),
        "noise_sigma": uniform(2.0, 9.0),
    }
    return faces


def _render(expressions: Parameters, faces: Parameters, image_size: int, rng: np.random.Generator) -> np.ndarray:
    count = len(faces["skin"])
    images = np.empty((count, image_size, image_size), dtype=np.uint8)
    for start in range(0, count, RENDER_BATCH):
        batch = slice(start, min(start + RENDER_BATCH, count))
        expression = {name: values[batch, None, None] for name, values in expressions.items()}
        face = {name: values[batch, None, None] for name, values in faces.items()}
        canvas = _draw_faces(expression, face, image_size)
        canvas = _apply_camera(canvas, face, image_size, rng)
        images[batch] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return images


# -- drawing -----------------------------------------------------------------
# Every helper works on float32 arrays of shape (batch, H, W). Face
# parameters arrive with shape (batch, 1, 1), so they broadcast per image.


def _face_coordinates(face: Parameters, image_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map each pixel to face coordinates (u right, v down) after shift, rotation and scale.

    Also returns the pixels per face unit of each image, for anti-aliasing.
    """
    axis = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size * 2 - 1
    x = axis[None, None, :] - face["shift_x"]
    y = axis[None, :, None] - face["shift_y"]
    cos, sin = np.cos(face["rotation"]), np.sin(face["rotation"])
    u = (cos * x + sin * y) / face["scale"]
    v = (-sin * x + cos * y) / face["scale"]
    pixels_per_unit = face["scale"] * image_size / 2
    return u, v, pixels_per_unit


def _coverage(distance: np.ndarray, pixels_per_unit: np.ndarray) -> np.ndarray:
    """Turn a signed distance in face units (negative inside) into a 0-1 coverage with a one-pixel edge."""
    return np.clip(0.5 - distance * pixels_per_unit, 0.0, 1.0)


def _ellipse_distance(u: np.ndarray, v: np.ndarray, centre_u: Value, centre_v: Value, radius_u: Value, radius_v: Value) -> np.ndarray:
    """Approximate the signed distance to an ellipse: exact on circles, close enough on flat ones."""
    radius = np.sqrt(((u - centre_u) / radius_u) ** 2 + ((v - centre_v) / radius_v) ** 2)
    # Cast, because np.minimum of two Python floats is a float64 scalar that
    # would promote the whole float32 batch.
    return (radius - 1.0) * np.minimum(radius_u, radius_v).astype(np.float32)


def _paint(canvas: np.ndarray, coverage: np.ndarray, value: Value) -> np.ndarray:
    return canvas + coverage * (value - canvas)


def _draw_faces(expression: Parameters, face: Parameters, image_size: int) -> np.ndarray:
    u, v, pixels_per_unit = _face_coordinates(face, image_size)
    skin = face["skin"]
    canvas = np.broadcast_to(face["background"], u.shape).astype(np.float32)

    canvas = _draw_head(canvas, u, v, pixels_per_unit, face)
    canvas = _draw_eyes(canvas, u, v, pixels_per_unit, face, expression)
    canvas = _draw_brows(canvas, u, v, pixels_per_unit, face, expression)
    canvas = _draw_nose(canvas, u, v, pixels_per_unit, face, expression)
    canvas = _draw_mouth(canvas, u, v, pixels_per_unit, face, expression)

    # Shade the head like a lit sphere: darker towards its rim.
    rim = ((u / face["face_rx"]) ** 2 + ((v - 0.05) / face["face_ry"]) ** 2).clip(0.0, 1.0)
    head = _coverage(_ellipse_distance(u, v, 0.0, 0.05, face["face_rx"], face["face_ry"]), pixels_per_unit)
    return canvas - head * rim**2 * 0.25 * skin


def _draw_head(canvas: np.ndarray, u: np.ndarray, v: np.ndarray, pixels_per_unit: np.ndarray, face: Parameters) -> np.ndarray:
    skin, face_rx, face_ry = face["skin"], face["face_rx"], face["face_ry"]

    # Neck and shoulders first, so the face oval covers their top.
    neck = _coverage(np.maximum(np.abs(u) - 0.55 * face_rx, 0.6 - v), pixels_per_unit)
    canvas = _paint(canvas, neck, skin * 0.8)
    shoulders = _coverage(_ellipse_distance(u, v, 0.0, 1.75, 1.3, 0.55), pixels_per_unit)
    canvas = _paint(canvas, shoulders, face["hair"] * 0.5 + face["background"] * 0.5)

    # Hair behind the face: a larger oval whose top shows above the face.
    hair_back = _coverage(_ellipse_distance(u, v, 0.0, -0.02, face_rx * 1.12, face_ry * 1.05), pixels_per_unit)
    canvas = _paint(canvas, hair_back * face["has_hair"], face["hair"])

    canvas = _paint(canvas, _coverage(_ellipse_distance(u, v, 0.0, 0.05, face_rx, face_ry), pixels_per_unit), skin)

    # Fringe: hair over the forehead down to a curved hairline.
    hair_line = face["hair_line"] + 0.35 * (u / face_rx) ** 2
    fringe = _coverage(v - hair_line, pixels_per_unit) * face["has_hair"]
    inside_head = _coverage(_ellipse_distance(u, v, 0.0, 0.05, face_rx * 1.02, face_ry * 1.02), pixels_per_unit)
    return _paint(canvas, fringe * inside_head, face["hair"])


def _draw_eyes(
    canvas: np.ndarray, u: np.ndarray, v: np.ndarray, pixels_per_unit: np.ndarray, face: Parameters, expression: Parameters
) -> np.ndarray:
    # Both eyes at once: |u| mirrors the right half onto the left.
    side = np.abs(u)
    skin, dark = face["skin"], face["skin"] * face["feature_darkness"]
    eye_rx = face["eye_rx"]
    eye_ry = eye_rx * expression["eye_open"]
    eye_y = face["eye_y"] + face["asymmetry"] * np.sign(u)

    socket = _coverage(_ellipse_distance(side, v, face["eye_dx"], eye_y - 0.02, eye_rx * 1.5, eye_rx * 1.1), pixels_per_unit)
    canvas = _paint(canvas, socket * 0.35, skin * 0.7)

    eye_distance = _ellipse_distance(side, v, face["eye_dx"], eye_y, eye_rx, eye_ry)
    canvas = _paint(canvas, _coverage(eye_distance - 0.025, pixels_per_unit), dark)
    eye = _coverage(eye_distance, pixels_per_unit)
    canvas = _paint(canvas, eye, np.minimum(skin * 1.15 + 25, 255))

    # The iris is clipped by the lids, so a squint hides most of it.
    iris_radius = eye_rx * 0.5
    iris = _coverage(_ellipse_distance(side, v, face["eye_dx"], eye_y, iris_radius, iris_radius), pixels_per_unit)
    return _paint(canvas, iris * eye, dark * 0.5)


def _draw_brows(
    canvas: np.ndarray, u: np.ndarray, v: np.ndarray, pixels_per_unit: np.ndarray, face: Parameters, expression: Parameters
) -> np.ndarray:
    side = np.abs(u)
    inner_x = face["eye_dx"] - face["eye_rx"] * 1.1
    outer_x = face["eye_dx"] + face["eye_rx"] * 1.3
    along = (side - inner_x) / (outer_x - inner_x)
    position = np.clip(along, 0.0, 1.0)

    # Brow centre line: a line from inner to outer end, bent by the arch.
    base = face["eye_y"] - face["eye_rx"] * 0.4 - face["brow_gap"] + expression["brow_raise"] + face["asymmetry"] * np.sign(u)
    centre = base + expression["brow_inner"] * (1 - position) - expression["brow_arch"] * 4 * position * (1 - position)
    half_thickness = face["brow_thickness"] * (1.0 - 0.45 * position)
    ends = np.maximum(-along, along - 1.0) * (outer_x - inner_x)
    distance = np.maximum(np.abs(v - centre) - half_thickness, ends)
    return _paint(canvas, _coverage(distance, pixels_per_unit), face["hair"] * 0.6 + face["skin"] * 0.15)


def _draw_nose(
    canvas: np.ndarray, u: np.ndarray, v: np.ndarray, pixels_per_unit: np.ndarray, face: Parameters, expression: Parameters
) -> np.ndarray:
    skin = face["skin"]
    side = np.abs(u)
    nose_y = face["nose_y"] + expression["mouth_raise"] * 0.4

    # Side shadow of the nose bridge and a shadow under the tip.
    bridge = _coverage(np.maximum(np.abs(u - 0.06) - 0.025, np.maximum(face["eye_y"] - v, v - nose_y)), pixels_per_unit)
    canvas = _paint(canvas, bridge * 0.25, skin * 0.6)
    tip_shadow = _coverage(_ellipse_distance(u, v, 0.0, nose_y + 0.05, 0.12, 0.04), pixels_per_unit)
    canvas = _paint(canvas, tip_shadow * 0.4, skin * 0.6)
    nostrils = _coverage(_ellipse_distance(side, v, 0.065, nose_y + 0.035, 0.04, 0.022), pixels_per_unit)
    canvas = _paint(canvas, nostrils * 0.8, skin * face["feature_darkness"])

    # Disgust wrinkles the bridge between the eyes with short horizontal creases.
    crease = skin * 0.55
    for offset in (-0.06, 0.0, 0.06):
        line = np.maximum(np.abs(v - (face["eye_y"] + offset)) - 0.012, side - 0.09)
        canvas = _paint(canvas, _coverage(line, pixels_per_unit) * expression["wrinkle"], crease)

    # Nasolabial folds: lines from beside the nostrils to the mouth corners,
    # deepened by a smile or by disgust.
    mouth_y = face["mouth_y"] + expression["mouth_raise"]
    corner_x = face["mouth_hw"] * expression["mouth_width"] + 0.05
    along = np.clip((v - nose_y) / (mouth_y - nose_y), 0.0, 1.0)
    fold_x = 0.15 + along * (corner_x - 0.15)
    fold = np.maximum(np.abs(side - fold_x) - 0.015, np.maximum(nose_y - v, v - mouth_y))
    return _paint(canvas, _coverage(fold, pixels_per_unit) * expression["folds"], crease)


def _draw_mouth(
    canvas: np.ndarray, u: np.ndarray, v: np.ndarray, pixels_per_unit: np.ndarray, face: Parameters, expression: Parameters
) -> np.ndarray:
    skin = face["skin"]
    half_width = face["mouth_hw"] * expression["mouth_width"]
    across = np.clip(u / half_width, -1.0, 1.0)

    # Centre line: a parabola whose corners rise by mouth_curve (a smile)
    # or drop (a frown). The lips part as a lens, widest in the middle.
    centre = face["mouth_y"] + expression["mouth_raise"] + expression["mouth_curve"] * (0.5 - across**2)
    gap = expression["mouth_open"] * np.sqrt(1.0 - across**2) / 2
    upper, lower = centre - gap, centre + gap
    ends = np.abs(u) - half_width

    opening = _coverage(np.maximum(np.maximum(upper - v, v - lower), ends), pixels_per_unit)
    canvas = _paint(canvas, opening, skin * 0.18)
    teeth_height = np.minimum(gap * 2, 0.06)
    teeth = _coverage(np.maximum(np.maximum(upper - v, v - (upper + teeth_height)), ends + 0.03), pixels_per_unit)
    canvas = _paint(canvas, teeth * opening * expression["teeth"], np.minimum(skin * 1.2 + 20, 250))

    lip = skin * (face["feature_darkness"] + 0.25)
    half_lip = face["lip_thickness"] / 2
    for edge in (upper - half_lip * 0.6, lower + half_lip * 0.6):
        line = np.maximum(np.abs(v - edge) - half_lip, ends)
        canvas = _paint(canvas, _coverage(line, pixels_per_unit), lip)
    return canvas


# -- camera --------------------------------------------------------------------


def _apply_camera(canvas: np.ndarray, face: Parameters, image_size: int, rng: np.random.Generator) -> np.ndarray:
    """Apply contrast, brightness, a lighting gradient, blur and sensor noise."""
    axis = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size * 2 - 1
    direction = np.cos(face["gradient_angle"]) * axis[None, None, :] + np.sin(face["gradient_angle"]) * axis[None, :, None]
    canvas = (canvas - 128.0) * face["contrast"] + 128.0 + face["brightness"] + face["gradient"] * direction

    canvas = _gaussian_blur(canvas, face["blur_sigma"][:, 0, 0])
    noise = rng.standard_normal(canvas.shape, dtype=np.float32)
    return canvas + noise * face["noise_sigma"]


def _gaussian_blur(images: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Blur each image with its own Gaussian ``sigma`` (pixels) as two 1-D passes with edge padding."""
    radius = int(np.ceil(3 * sigmas.max()))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernels = np.exp(-0.5 * (offsets[None, :] / sigmas[:, None]) ** 2)
    kernels /= kernels.sum(axis=1, keepdims=True)

    padded = np.pad(images, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=1)
    images = np.einsum("nhwk,nk->nhw", windows, kernels)
    padded = np.pad(images, ((0, 0), (0, 0), (radius, radius)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=2)
    return np.einsum("nhwk,nk->nhw", windows, kernels)
