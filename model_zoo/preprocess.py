"""A model's own input pipeline applied to image files: what accuracy evaluation and int8 calibration share.

The transform is timm's evaluation transform built from the spec's data config (resize, center crop,
normalize), so a model sees the inputs its checkpoint was trained and reported on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from model_zoo.spec import Preprocess

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


MIN_INPUT = 32  # every network of the zoo downsamples 32x


def at_size(pre: Preprocess, input_size: int | None) -> Preprocess:
    """The spec's pipeline at another resolution (`--input-size`): the same crop fraction, interpolation and
    normalization, so a study on small images (a trained proxy) differs from the published pipeline only there."""
    return pre if input_size is None or input_size == pre.input_size else dataclasses.replace(pre, input_size=input_size)


def transform(pre: Preprocess):
    """The model's evaluation transform, built by timm from the spec's data config."""
    from timm.data import create_transform

    return create_transform(input_size=(3, pre.input_size, pre.input_size), interpolation=pre.interpolation,
                            mean=pre.mean, std=pre.std, crop_pct=pre.crop_pct)


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Any]:
    """Pillow's image, opened without its decompression-bomb warning (a large photo is still a photo: it is
    resized to the model's input) and with its bomb error as a ValueError naming the size and the limit, so
    every caller's (OSError, ValueError) handling turns it into one line naming the file."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as img:
                yield img
        except Image.DecompressionBombError as exc:
            raise ValueError(f"{exc}".split(" could be decompression bomb")[0] + " (Pillow refuses images this "
                             "large as a decompression bomb; resize it)") from None


def load_image(path: Path, fn) -> torch.Tensor:
    """One image decoded as RGB and put through `fn` (a `transform`); raises OSError/ValueError when it
    cannot be read (PIL's UnidentifiedImageError is an OSError)."""
    with open_image(path) as img:
        return fn(as_rgb(img))


SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def as_rgb(img: Any) -> Any:
    """An image as 8-bit RGB by its own range: Pillow's `convert("RGB")` clips a 16-bit greyscale image at 255
    (a 16-bit PNG came out 99.5% white), so 16-bit values are scaled by 255/65535 first; a float image has no
    range to scale by and is refused (ValueError, one line)."""
    import numpy as np
    from PIL import Image

    if img.mode in SIXTEEN_BIT:
        values = np.asarray(img, dtype=np.float64)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(f"a {img.mode} image with values {values.min():g}..{values.max():g}, outside 16 bits; "
                             "save it as 8- or 16-bit")
        return Image.fromarray(np.round(values * (255 / 65535)).astype(np.uint8), "L").convert("RGB")
    if img.mode == "F":
        raise ValueError("a floating-point image has no fixed range to scale to 8 bits; save it as 8- or 16-bit")
    return img.convert("RGB")
