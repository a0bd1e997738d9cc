"""A plugin model whose weights classify an image by its colour, and data with known answers.

Imported through ONEBENCH_PLUGINS (so `bench` subprocesses know the model). The network averages the
normalized image and scores each colour by minus half its squared distance to that colour's
prototype (a linear layer with bias -|w|^2/2): nearest-prototype classification, exact by
construction, so top-1 and top-5 on the images below are known before any backend runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from model_zoo.registry import register
from model_zoo.spec import ModelSpec, Preprocess, Reference

NAME = "test_colours"
COLOURS = {  # WordNet-like ids, sorted = output order
    "c0_red": (255, 0, 0), "c1_yellow": (255, 255, 0), "c2_green": (0, 255, 0),
    "c3_cyan": (0, 255, 255), "c4_blue": (0, 0, 255), "c5_magenta": (255, 0, 255),
}
PRE = Preprocess(input_size=32, crop_pct=1.0, interpolation="bilinear")


def build(form: str = "fused", num_classes: int = len(COLOURS)) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, num_classes))


def prototypes() -> torch.Tensor:
    rgb = torch.tensor(list(COLOURS.values()), dtype=torch.float32) / 255
    return (rgb - torch.tensor(PRE.mean)) / torch.tensor(PRE.std)


def save_weights(path: Path) -> Path:
    w = prototypes()
    torch.save({"2.weight": w, "2.bias": -(w * w).sum(1) / 2}, path)
    return path


def colour_ranks() -> dict[str, list[str]]:
    """For each colour, the classes in the order the model scores them (nearest first)."""
    w = prototypes()
    names = list(COLOURS)
    return {n: [names[j] for j in torch.cdist(w[i:i + 1], w)[0].argsort().tolist()] for i, n in enumerate(names)}


def image(colour: str, seed: int, size: int = 40) -> np.ndarray:
    """A mostly `colour` image with noise and a small patch of another colour."""
    rng = np.random.default_rng(seed)
    pixels = np.tile(np.array(COLOURS[colour], dtype=np.float64), (size, size, 1))
    pixels += rng.normal(0, 12, pixels.shape)
    other = list(COLOURS.values())[seed % len(COLOURS)]
    pixels[:6, :6] = other
    return np.clip(pixels, 0, 255).astype(np.uint8)


def make_imagefolder(root: Path, per_class: int = 3, wrong: dict[str, str] | None = None) -> tuple[Path, int, int]:
    """Write PNGs under root/<class>/; `wrong` files a colour's first image under another class.

    Returns (root, expected top-1 hits, expected top-5 hits).
    """
    from PIL import Image

    wrong = wrong or {}
    ranks = colour_ranks()
    hits1 = hits5 = 0
    for ci, colour in enumerate(COLOURS):
        for i in range(per_class):
            label = wrong.get(colour, colour) if i == 0 else colour
            folder = root / label
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image(colour, ci * 100 + i)).save(folder / f"{colour}_{i}.png")
            hits1 += label == colour
            hits5 += label in ranks[colour][:5]
    return root, hits1, hits5


register(ModelSpec(name=NAME, family="test", build=lambda form, num_classes: build(form, num_classes), preprocess=PRE,
                   num_classes=len(COLOURS), reference=Reference(top1=50.0, source="made up for tests"),
                   description="colour classifier (tests)"))
