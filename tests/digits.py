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

import torch
from torch import nn

from harness.evaluate.digits import CLASSES, load_folder
from harness.evaluate.digits import write_images as write_at
from harness.evaluate.proxy import TrainRecipe, fit
from model_zoo.registry import list_specs, register
from model_zoo.spec import ModelSpec, Preprocess, Reference

INPUT = 32
OUTLIER = 1000.0


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


def write_images(root: Path, split: str, limit: int | None = None) -> Path:
    return write_at(root, split, INPUT, limit)


def train(path: Path, images: Path, epochs: int = 20, seed: int = 0) -> Path:
    """Train `digits_cnn` on an image folder (`write_images(..., "train")`) and save the state dict."""
    from model_zoo.registry import get_spec

    model = fit(DigitsCNN, *load_folder(images, get_spec("digits_cnn").preprocess), TrainRecipe(epochs=epochs, seed=seed))
    torch.save(model.state_dict(), path)
    return path


def with_outlier(trained: Path, path: Path) -> Path:
    """The network saved at `trained` with the outlier planted, saved at `path`: the same weights, so the same
    fp32 function (training it twice need not give the same network: threads and kernels differ by machine)."""
    model = DigitsCNN()
    model.load_state_dict(torch.load(trained, weights_only=True))
    plant_outlier(model)
    torch.save(model.state_dict(), path)
    return path
