"""Facts about FER2013 that the whole package shares."""

# Index order of the FER2013 labels: 0 Angry, 1 Disgust, 2 Fear, 3 Happy,
# 4 Sad, 5 Surprise, 6 Neutral. Folder names in the Kaggle image layout are
# the lower-case words.
CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(CLASS_NAMES)

# FER2013 images are 48x48 grayscale.
FER_IMAGE_SIZE = 48

# Split codes stored in a prepared dataset.
TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")

# Label stored for images without a label (an unlabeled test folder).
UNLABELED = -1
