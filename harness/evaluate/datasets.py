"""ImageNet-style validation data: which image has which label, and the model's own preprocessing.

Two layouts, the ways ImageNet val ships: an ImageFolder (one folder per class, named by WordNet
id, sorted order = output index, as torchvision and timm's `validate.py` read it) or a flat folder of
images plus a labels file: `IMAGE LABEL` lines, Kaggle's `LOC_val_solution.csv`, or the devkit's
`ILSVRC2012_validation_ground_truth.txt` (one ILSVRC2012 id per image in file-name order, mapped to
WordNet ids through the devkit's `meta.mat`). A subset of ImageNet's classes (WordNet-id folders, fewer
than 1,000) maps to a 1000-class model's outputs through timm's ImageNet class list, no --class-map
needed. Every problem with the data (wrong layout, an unreadable image, a label the
model has no output for) is a one-line `HarnessError` naming the file, found before or while
reading, never a wrong top-1.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.errors import HarnessError
from model_zoo.preprocess import IMAGE_SUFFIXES, is_image, load_image, transform
from model_zoo.spec import Preprocess

LABEL_FILES = ("labels.txt", "val.txt", "LOC_val_solution.csv", "ILSVRC2012_validation_ground_truth.txt")
DEVKIT_META = "meta.mat"


@dataclass(frozen=True)
class Samples:
    """The evaluation set: image paths, their output indexes, and how they were read."""

    paths: list[Path]
    labels: list[int]
    layout: str  # "imagefolder" or "labels-file:<name>"
    classes: int  # classes present in the data

    def __len__(self) -> int:
        return len(self.paths)


def read_class_map(path: Path) -> list[str]:
    """A file of class ids (WordNet ids) in the model's output order, one per line."""
    try:
        names = [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot read class map {path} ({exc}); give a text file of class ids, one per line") from None
    if len(set(names)) != len(names):
        raise HarnessError(f"class map {path} lists a class twice; each line must be a distinct class id")
    return names


def imagenet_subset(names: list[str], num_classes: int) -> bool:
    """Class names that are all WordNet ids, for a 1000-class model: an ImageNet subset."""
    return num_classes == 1000 and bool(names) and all(re.fullmatch(r"n\d{8}", name) for name in names)


def imagenet_classes() -> list[str]:
    """ImageNet-1k's WordNet ids in the output order of every ImageNet checkpoint (timm's class list)."""
    from timm.data import ImageNetInfo

    return list(ImageNetInfo().label_names())


def _index_of(names: list[str], class_map: list[str] | None, num_classes: int, where: str) -> dict[str, int]:
    """Map class names to output indexes: through the class map, else sorted order over the full set."""
    if class_map is not None:
        missing = sorted(set(names) - set(class_map))
        if missing:
            raise HarnessError(f"{where}: class {missing[0]!r} is not in the class map ({len(missing)} such); "
                               "fix the data or the --class-map file")
        index = {name: class_map.index(name) for name in names}
    elif len(names) != num_classes and imagenet_subset(names, num_classes):
        return _index_of(names, imagenet_classes(), num_classes, where)
    else:
        if len(names) != num_classes:
            raise HarnessError(f"{where} has {len(names)} classes but the model has {num_classes} outputs; with a "
                               "subset of classes pass --class-map FILE (the model's class ids in output order)")
        index = {name: i for i, name in enumerate(sorted(names))}
    outside = [name for name, i in index.items() if i >= num_classes]
    if outside:
        raise HarnessError(f"{where}: class {outside[0]!r} maps to output {index[outside[0]]}, outside the model's "
                           f"{num_classes} classes; check --num-classes and --class-map")
    return index


def _image_folder(root: Path, class_map: list[str] | None, num_classes: int) -> Samples:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    index = _index_of([f.name for f in folders], class_map, num_classes, str(root))
    paths, labels = [], []
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if is_image(path):
                paths.append(path)
                labels.append(index[folder.name])
    return Samples(paths, labels, "imagefolder", len(folders))


def devkit_wnids(meta: Path) -> dict[int, str]:
    """ILSVRC2012 id -> WordNet id of the 1000 leaf classes, from the devkit's `data/meta.mat`."""
    import scipy.io

    try:
        synsets = scipy.io.loadmat(str(meta), squeeze_me=True)["synsets"]
        return {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets if int(s["num_children"]) == 0}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"{meta} is not the ImageNet devkit's meta.mat ({exc})") from None


def _devkit_pairs(path: Path, lines: list[str], images: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """The devkit's ground truth (the i-th id labels the i-th image in file-name order) and every
    class of the devkit, whose sorted WordNet ids are the output order."""
    meta = next((p / DEVKIT_META for p in (path.parent, path.parent / "data") if (p / DEVKIT_META).is_file()), None)
    if meta is None:
        raise HarnessError(f"{path} holds ILSVRC2012 ids, which need the devkit's {DEVKIT_META} beside it "
                           "(ILSVRC2012_devkit_t12/data/meta.mat) to become class labels")
    if len(lines) != len(images):
        raise HarnessError(f"{path} has {len(lines)} labels for {len(images)} images; the devkit's ground truth "
                           "labels every image of the full set, in file-name order")
    wnids = devkit_wnids(meta)
    unknown = next((v for v in lines if int(v) not in wnids), None)
    if unknown is not None:
        raise HarnessError(f"{path}: id {unknown} is not one of the devkit's {len(wnids)} leaf classes")
    return [(name, wnids[int(v)]) for name, v in zip(sorted(images), lines)], sorted(wnids.values())


def _parse_labels(path: Path, images: list[str]) -> tuple[list[tuple[str, str]], list[str] | None]:
    """(image file name, label) pairs from `name label` lines, Kaggle's LOC_val_solution.csv, or the
    devkit's ground truth (one id per line); and the full class list where the file defines one."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot read labels file {path} ({exc})") from None
    pairs = []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and all(line.isdigit() for line in lines):
        return _devkit_pairs(path, lines, images)
    if text.startswith("ImageId,"):  # LOC_val_solution.csv: ImageId,PredictionString "n01751748 x y x y ..."
        for row in csv.DictReader(text.splitlines()):
            pairs.append((row["ImageId"], (row.get("PredictionString") or "").split()[0] if row.get("PredictionString") else ""))
    else:
        for number, line in enumerate(text.splitlines(), 1):
            fields = line.replace(",", " ").split()
            if not fields:
                continue
            if len(fields) != 2:
                raise HarnessError(f"{path}:{number}: expected 'IMAGE LABEL' (a file name and a class index or "
                                   f"WordNet id), got {line.strip()[:80]!r}")
            pairs.append((fields[0], fields[1]))
    if not pairs:
        raise HarnessError(f"labels file {path} holds no labels")
    return pairs, None


def _labels_file(root: Path, labels_path: Path, class_map: list[str] | None, num_classes: int) -> Samples:
    files = {p.name: p for p in root.iterdir() if is_image(p)}
    pairs, all_classes = _parse_labels(labels_path, list(files))
    files.update({p.stem: p for p in files.values()})  # LOC_val_solution names images without their suffix
    numeric = all(label.lstrip("-").isdigit() for _, label in pairs)
    if numeric:
        ints = [int(label) for _, label in pairs]
        bad = next((i for i, v in enumerate(ints) if not 0 <= v < num_classes), None)
        if bad is not None:
            raise HarnessError(f"{labels_path}: label {ints[bad]} of {pairs[bad][0]} is outside the model's "
                               f"{num_classes} classes (0..{num_classes - 1}); check --num-classes")
        labels = ints
    else:
        index = _index_of(all_classes or sorted({label for _, label in pairs}), class_map, num_classes, str(labels_path))
        labels = [index[label] for _, label in pairs]
    paths = []
    for name, _ in pairs:
        if name not in files:
            raise HarnessError(f"{labels_path} names {name!r}, which is not an image in {root}")
        paths.append(files[name])
    return Samples(paths, labels, f"labels-file:{labels_path.name}", len(set(labels)))


def scan(root: Path, num_classes: int, labels: Path | None = None, class_map: Path | None = None) -> Samples:
    """Find every image of `root` and its label; raise a one-line error for any layout problem."""
    root = Path(root)
    if not root.is_dir():
        raise HarnessError(f"--data {root} is not a folder; give an ImageFolder (class folders) or a folder of images")
    names = read_class_map(class_map) if class_map else None
    if labels is None:
        labels = next((root / n for n in LABEL_FILES if (root / n).is_file()), None)
    if labels is not None:
        samples = _labels_file(root, Path(labels), names, num_classes)
    elif any(p.is_dir() for p in root.iterdir()):
        samples = _image_folder(root, names, num_classes)
    else:
        raise HarnessError(f"{root} has neither class folders nor a labels file ({', '.join(LABEL_FILES)}); "
                           "use one folder per class, or pass --labels FILE")
    if not samples.paths:
        raise HarnessError(f"{root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return samples


class ImageDataset(torch.utils.data.Dataset):
    """Decodes and preprocesses one image; a failure comes back as a message, not a worker crash."""

    def __init__(self, samples: Samples, pre: Preprocess) -> None:
        self.samples, self.transform, self.size = samples, transform(pre), pre.input_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        path = self.samples.paths[i]
        try:
            return load_image(path, self.transform), self.samples.labels[i], ""
        except (OSError, ValueError) as exc:
            return torch.zeros(3, self.size, self.size), self.samples.labels[i], f"cannot read image {path} ({exc})"
