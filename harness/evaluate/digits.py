"""A real image classification set that ships offline: scikit-learn's handwritten digits.

1,797 8x8 grey images in 10 classes, written as an ImageFolder of RGB PNGs upsampled to a study
resolution, so that `bench accuracy` and `bench int8` read them like any other images. The split is
fixed: odd-indexed images train (and calibrate int8), even-indexed ones are held out and only ever
evaluated, so evaluation images never calibrate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model_zoo.preprocess import load_image, transform
from model_zoo.spec import Preprocess

CLASSES = 10
SPLITS = ("train", "val")


def digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """8x8 digit images (0..16) and labels; "train" = odd indexes, "val" = even ones."""
    from sklearn.datasets import load_digits

    if split not in SPLITS:
        raise ValueError(f"split is one of {SPLITS}, not {split!r}")
    data = load_digits()
    start = 1 if split == "train" else 0
    return data.images[start::2], data.target[start::2]


def write_images(root: Path, split: str, size: int, limit: int | None = None) -> Path:
    """An ImageFolder (class folders 0..9 of PNGs, upsampled to `size`, grey as RGB) of one split."""
    from PIL import Image

    images, labels = digits(split)
    for i, (image, label) in enumerate(list(zip(images, labels))[:limit]):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        grey = Image.fromarray((image * (255 / 16)).astype(np.uint8)).resize((size, size), Image.BILINEAR)
        grey.convert("RGB").save(folder / f"{split}{i:04d}.png")
    return root


def load_folder(folder: Path, preprocess: Preprocess) -> tuple[torch.Tensor, torch.Tensor]:
    """An image folder of `write_images` through a model's own preprocessing (the pipeline evaluation uses)."""
    fn = transform(preprocess)
    paths = sorted(folder.glob("*/*.png"))
    if not paths:
        raise FileNotFoundError(f"{folder} holds no class folders of PNG images")
    return torch.stack([load_image(p, fn) for p in paths]), torch.tensor([int(p.parent.name) for p in paths])
