"""Real accuracy offline: scikit-learn's handwritten digits (1,797 8x8 images, shipped inside the package),
upsampled to RGB image files, and small networks trained on them, saved as ordinary checkpoints.

Two names registered through the ordinary registry (`ONEBENCH_PLUGINS=tests.digits` for `bench`
subprocesses), one network: `digits_cnn`, conv-BN-ReLU layers that quantize well, and `digits_outlier`,
whose checkpoint has one channel of its first activation scaled up by `OUTLIER` and the next layer's
weights scaled down to match: identical in fp32, but a per-tensor int8 activation scale must then span
the outlier, and every other channel is left with a few quantization levels (the failure mode of
activation outliers). Training takes seconds; the digits split is fixed (odd images train, even ones
are held out).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from model_zoo.registry import list_specs, register
from model_zoo.spec import ModelSpec, Preprocess, Reference

INPUT = 32
OUTLIER = 1000.0
CLASSES = 10


class DigitsCNN(nn.Module):
    def __init__(self, num_classes: int = CLASSES) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.stem = block(3, 16, 1)
        self.body = nn.Sequential(block(16, 32, 2), block(32, 32, 1), block(32, 64, 2))
        self.head = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)).mean((2, 3)))


def plant_outlier(model: DigitsCNN, factor: float = OUTLIER) -> None:
    """Scale channel 0 of the stem's output by `factor` (its BN's weight and bias: ReLU commutes with a
    positive scale) and the next conv's weights for that channel by 1/factor: the same function in fp32,
    with an activation tensor whose one channel int8 must share a per-tensor range with all the others."""
    with torch.no_grad():
        bn = model.stem[1]
        bn.weight[0] *= factor
        bn.bias[0] *= factor
        model.body[0][0].weight[:, 0] /= factor


def _register() -> None:
    names = {s.name for s in list_specs()}
    for name, description in (("digits_cnn", "conv-BN-ReLU network for the digits data set"),
                              ("digits_outlier", "digits_cnn with a planted activation outlier channel")):
        if name not in names:
            register(ModelSpec(name=name, family="test", build=lambda form, num_classes: DigitsCNN(num_classes),
                               reference=Reference(source="test network trained on scikit-learn's digits"),
                               preprocess=Preprocess(input_size=INPUT, crop_pct=1.0), num_classes=CLASSES,
                               description=description))


_register()


def digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """8x8 digit images (0..16) and labels; "train" = odd indexes, "val" = even ones."""
    from sklearn.datasets import load_digits

    data = load_digits()
    start = 1 if split == "train" else 0
    return data.images[start::2], data.target[start::2]


def write_images(root: Path, split: str, limit: int | None = None) -> Path:
    """An ImageFolder (class folders 0..9 of PNGs, upsampled to INPUT, grey as RGB) of one split."""
    from PIL import Image

    images, labels = digits(split)
    for i, (image, label) in enumerate(list(zip(images, labels))[:limit]):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        grey = Image.fromarray((image * (255 / 16)).astype(np.uint8)).resize((INPUT, INPUT), Image.BILINEAR)
        grey.convert("RGB").save(folder / f"{split}{i:04d}.png")
    return root


def load_folder(folder: Path, preprocess: Preprocess) -> tuple[torch.Tensor, torch.Tensor]:
    """An image folder of `write_images` through a model's own preprocessing (the pipeline evaluation uses)."""
    from model_zoo.preprocess import load_image, transform

    fn = transform(preprocess)
    paths = sorted(folder.glob("*/*.png"))
    return torch.stack([load_image(p, fn) for p in paths]), torch.tensor([int(p.parent.name) for p in paths])


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int = 64, lr: float = 3e-3,
        seed: int = 0) -> nn.Module:
    """AdamW with a one-cycle schedule; returns the model in eval mode."""
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * -(-len(x) // batch))
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def train(path: Path, images: Path, outlier: bool = False, epochs: int = 20, seed: int = 0) -> Path:
    """Train `digits_cnn` on an image folder (`write_images(..., "train")`), plant the outlier if asked,
    and save the state dict."""
    from model_zoo.registry import get_spec

    torch.manual_seed(seed)
    model = fit(DigitsCNN(), *load_folder(images, get_spec("digits_cnn").preprocess), epochs, seed=seed)
    if outlier:
        plant_outlier(model)
    torch.save(model.state_dict(), path)
    return path
