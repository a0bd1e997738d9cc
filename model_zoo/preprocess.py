"""A model's own input pipeline applied to image files: what accuracy evaluation and int8 calibration share.

The transform is timm's evaluation transform built from the spec's data config (resize, center crop,
normalize), so a model sees the inputs its checkpoint was trained and reported on.
"""

from __future__ import annotations

from pathlib import Path

import torch

from model_zoo.spec import Preprocess

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def transform(pre: Preprocess):
    """The model's evaluation transform, built by timm from the spec's data config."""
    from timm.data import create_transform

    return create_transform(input_size=(3, pre.input_size, pre.input_size), interpolation=pre.interpolation,
                            mean=pre.mean, std=pre.std, crop_pct=pre.crop_pct)


def load_image(path: Path, fn) -> torch.Tensor:
    """One image decoded as RGB and put through `fn` (a `transform`); raises OSError/ValueError when it
    cannot be read (PIL's UnidentifiedImageError is an OSError)."""
    from PIL import Image

    with Image.open(path) as img:
        return fn(img.convert("RGB"))
