"""Predictions of a trained checkpoint, written as an ``id,label`` CSV."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch

from fer.constants import SPLIT_NAMES
from fer.data.dataset import PreparedData
from fer.devices import acquire_device
from fer.errors import DataError
from fer.fit import load_checkpoint
from fer.io import atomic_open
from fer.metrics import classification_metrics
from fer.train import Normalizer, predict, split_to_device

logger = logging.getLogger(__name__)


def load_model(checkpoint: dict, device: torch.device) -> torch.nn.Module:
    from fer.models import build_model

    model = build_model(checkpoint["arch"], num_classes=len(checkpoint["class_names"]), channel_num=checkpoint["channel_num"], image_size=tuple(checkpoint["image_size"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).to(memory_format=torch.channels_last).eval()


def predict_to_csv(checkpoint_path: str | Path, data: PreparedData, split: int, out: str | Path, *, device: str = "auto", batch_size: int = 128) -> pd.DataFrame:
    """Predict every image of ``split`` with the checkpoint and write ``id,label`` to ``out``.

    Inputs are normalized with the training statistics stored in the
    checkpoint, not with those of ``data``. Logs accuracy and macro-F1 when
    the split is labeled.
    """
    with acquire_device(device) as torch_device:
        checkpoint = load_checkpoint(checkpoint_path, torch_device)
        expected = tuple(checkpoint["image_size"])
        if data.image_size != expected:
            raise DataError(
                f"the checkpoint {checkpoint_path} was trained on {expected[0]}x{expected[1]} images but the dataset has "
                f"{data.image_size[0]}x{data.image_size[1]}; pass --image_size {expected[0]}"
            )
        images = split_to_device(data, split, torch_device)
        if len(images) == 0:
            raise DataError(f"the {SPLIT_NAMES[split]} split of {data.info.get('source', 'the dataset')} is empty; choose another --split")

        model = load_model(checkpoint, torch_device)
        logits = predict(model, images, normalizer=Normalizer(checkpoint["mean"], checkpoint["std"]), batch_size=batch_size)
        predicted = logits.argmax(dim=1).cpu().numpy()

    frame = pd.DataFrame({"id": images.ids, "label": predicted})
    with atomic_open(out, "w", encoding="utf-8", newline="") as stream:
        frame.to_csv(stream, index=False)
    logger.info("wrote %d predictions of the %s split to %s", len(frame), SPLIT_NAMES[split], out)
    if images.labeled:
        scores = classification_metrics(images.labels.cpu().numpy(), predicted)
        logger.info("accuracy %.4f, macro-F1 %.4f on the %s split", scores["accuracy"], scores["macro_f1"], SPLIT_NAMES[split])
    return frame
