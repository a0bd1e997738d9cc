"""`bench accuracy`: known top-1/top-5 through every CPU backend's artifact, data layouts, bad data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.errors import HarnessError
from harness.evaluate import accuracy
from harness.measure.selection import Selection
from harness.store import accuracy_records
from tests import colour_model as cm
from tests.helpers import bench

# Red filed as cyan (its farthest colour: misses top-1 and top-5), green as yellow (its nearest: top-5 hit).
WRONG = {"c0_red": "c3_cyan", "c2_green": "c1_yellow"}


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory) -> tuple[Path, Path, int, int]:
    root = tmp_path_factory.mktemp("colours")
    data, hits1, hits5 = cm.make_imagefolder(root / "data", per_class=3, wrong=WRONG)
    return data, cm.save_weights(root / "w.pth"), hits1, hits5


def evaluate(data: Path, weights: Path, tmp_path: Path, backend: str = "torch", batch: int = 1, limit: int | None = None,
             class_map: Path | None = None):
    chosen = Selection(models=(cm.NAME,), backends=(backend,), batches=(batch,), weights=str(weights))
    return accuracy.evaluate(chosen, accuracy.EvalData(data, limit, class_map=class_map), cache_dir=tmp_path / "cache")


def test_known_answers_hold_by_construction(colour_data) -> None:
    _, _, hits1, hits5 = colour_data
    assert (hits1, hits5) == (16, 17)  # 18 images: two wrong at top-1, one of them also outside the top 5


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino", pytest.param("torch-compile", marks=pytest.mark.slow)])
def test_top1_top5_through_each_backend(backend: str, colour_data, tmp_path: Path) -> None:
    data, weights, hits1, hits5 = colour_data
    rec = evaluate(data, weights, tmp_path, backend=backend, batch=4)  # 18 = 4 x 4 + 2: the last batch is padded
    assert rec["data"]["images"] == 18 and rec["data"]["layout"] == "imagefolder"
    assert rec["top1"] == pytest.approx(hits1 / 18) and rec["top5"] == pytest.approx(hits5 / 18) and rec["k"] == 5
    assert rec["reference"]["top1"] == pytest.approx(hits1 / 18) and rec["delta_top1"] == 0 and rec["agreement"] == 1
    if backend in ("onnxruntime", "openvino"):
        assert rec["artifact"]["format"] == "onnx" and len(rec["artifact"]["sha256"]) == 64
    accuracy_records.validate(rec, "test")


def test_record_joins_the_latency_record_of_the_same_artifact(colour_data, tmp_path: Path) -> None:
    data, weights, _, _ = colour_data
    rec = evaluate(data, weights, tmp_path, backend="onnxruntime")
    path = accuracy_records.save(tmp_path, rec)
    assert [r.document for r in accuracy_records.load_all(tmp_path)] == [json.loads(path.read_text())]
    latency = {"job": {"model": cm.NAME, "backend": "onnxruntime", "device": "cpu", "precision": "fp32"},
               "artifact": dict(rec["artifact"]), "model_info": {"weights_sha256": rec["weights"]["state_sha256"]}}
    assert accuracy_records.record_key(latency) == accuracy_records.record_key(rec)
    latency["artifact"]["sha256"] = "0" * 64  # another file (other weights, other batch): no join
    assert accuracy_records.record_key(latency) != accuracy_records.record_key(rec)


def _flat(tmp_path: Path, lines: list[str], name: str = "labels.txt") -> Path:
    from PIL import Image

    flat = tmp_path / "flat"
    flat.mkdir()
    for i, colour in enumerate(cm.COLOURS):
        Image.fromarray(cm.image(colour, i)).save(flat / f"img{i}.png")
    (flat / name).write_text("\n".join(lines) + "\n")
    return flat


@pytest.mark.parametrize("style", ["index", "wnid", "kaggle-csv"])
def test_flat_folder_with_a_labels_file(style: str, colour_data, tmp_path: Path) -> None:
    names = list(cm.COLOURS)
    wrong = {0: 3}  # img0 (red) labelled cyan
    labels = {i: wrong.get(i, i) for i in range(6)}
    if style == "index":
        flat = _flat(tmp_path, [f"img{i}.png {j}" for i, j in labels.items()])
    elif style == "wnid":
        flat = _flat(tmp_path, [f"img{i}.png {names[j]}" for i, j in labels.items()], "val.txt")
    else:
        flat = _flat(tmp_path, ["ImageId,PredictionString"] + [f"img{i},{names[j]} 1 2 3 4" for i, j in labels.items()],
                     "LOC_val_solution.csv")
    class_map = tmp_path / "synsets.txt"  # red is never a label here: ids alone cannot give the output order
    class_map.write_text("\n".join(names) + "\n")
    rec = evaluate(flat, colour_data[1], tmp_path, class_map=None if style == "index" else class_map)
    assert rec["data"]["images"] == 6 and rec["top1"] == pytest.approx(5 / 6) and rec["top5"] == pytest.approx(5 / 6)


def test_imagenet_devkit_ground_truth_maps_ids_through_meta_mat(colour_data, tmp_path: Path) -> None:
    import numpy as np
    import scipy.io
    from PIL import Image

    names = list(cm.COLOURS)
    ids = {names[i]: 6 - i for i in range(6)}  # ILSVRC2012 ids are not in WordNet-id order: reversed here
    flat = tmp_path / "val"
    flat.mkdir()
    for i, colour in enumerate(reversed(names)):  # file-name order: magenta first
        Image.fromarray(cm.image(colour, i)).save(flat / f"ILSVRC2012_val_{i + 1:08d}.png")
    truth = [ids[c] for c in reversed(names)]
    truth[0] = ids["c2_green"]  # one wrong label (magenta's image filed as green)
    (flat / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(map(str, truth)) + "\n")
    with pytest.raises(HarnessError, match="need the devkit's meta.mat"):
        evaluate(flat, colour_data[1], tmp_path)
    synsets = np.zeros((7, 1), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("num_children", "O")])
    for row, (wnid, i) in enumerate([*ids.items(), ("n_animal", 7)]):
        synsets[row, 0] = (np.array([[i]]), np.array([wnid]), np.array([[0 if i <= 6 else 3]]))
    scipy.io.savemat(flat / "meta.mat", {"synsets": synsets})
    rec = evaluate(flat, colour_data[1], tmp_path)
    assert rec["data"]["layout"] == "labels-file:ILSVRC2012_validation_ground_truth.txt"
    assert rec["data"]["images"] == 6 and rec["top1"] == pytest.approx(5 / 6)


def test_limit_spreads_over_classes_and_class_map_orders_outputs(colour_data, tmp_path: Path) -> None:
    data, weights, _, _ = colour_data
    rec = evaluate(data, weights, tmp_path, limit=6)
    assert rec["data"]["images"] == 6 and rec["data"]["classes"] >= 5
    subset = tmp_path / "subset"
    for colour in ("c4_blue", "c5_magenta"):
        (subset / colour).mkdir(parents=True)
        for f in (data / colour).iterdir():
            (subset / colour / f.name).write_bytes(f.read_bytes())
    with pytest.raises(HarnessError, match="has 2 classes but the model has 6 outputs; .*--class-map"):
        evaluate(subset, weights, tmp_path)
    class_map = tmp_path / "classes.txt"
    class_map.write_text("\n".join(cm.COLOURS) + "\n")
    assert evaluate(subset, weights, tmp_path, class_map=class_map)["top1"] == 1.0


@pytest.mark.parametrize("problem, needle", [
    ("files-only", "has neither class folders nor a labels file"),
    ("corrupt-image", "cannot read image .*broken.png"),
    ("extra-class", "has 7 classes but the model has 6 outputs"),
    ("label-out-of-range", "label 6 of img1.png is outside the model's 6 classes"),
    ("unknown-image", "names 'missing.png', which is not an image"),
    ("bad-line", "expected 'IMAGE LABEL'"),
    ("empty", "holds no images"),
])
def test_bad_data_is_one_clear_error(problem: str, needle: str, colour_data, tmp_path: Path) -> None:
    data, weights, _, _ = colour_data
    target = tmp_path / "bad"
    if problem in ("corrupt-image", "extra-class", "empty"):
        for folder in data.iterdir():
            (target / folder.name).mkdir(parents=True)
            if problem != "empty":
                for f in folder.iterdir():
                    (target / folder.name / f.name).write_bytes(f.read_bytes())
        if problem == "corrupt-image":
            (target / "c4_blue" / "broken.png").write_bytes(b"\x89PNG not really")
        if problem == "extra-class":
            (target / "c6_white").mkdir()
    elif problem == "files-only":
        target = _flat(tmp_path, ["x"], name="notes.md")
    else:
        lines = {"label-out-of-range": ["img0.png 0", "img1.png 6"], "unknown-image": ["missing.png 1"],
                 "bad-line": ["img0.png 1 2"]}[problem]
        target = _flat(tmp_path, lines)
    with pytest.raises(HarnessError, match=needle):
        evaluate(target, weights, tmp_path, batch=4)


@pytest.mark.slow
def test_cli_writes_the_record_and_refuses_bad_input_in_one_line(colour_data, tmp_path: Path) -> None:
    data, weights, hits1, _ = colour_data
    env = {"ONEBENCH_PLUGINS": "tests.colour_model"}
    done = bench("accuracy", "-m", cm.NAME, "-b", "onnxruntime", "--weights", str(weights), "--data", str(data),
                 "--threads", "1", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"top-1 {hits1 / 18:.2%}" in done.stdout and "Δ top-1 +0.00 pt" in done.stdout
    (saved,) = (tmp_path / "results" / "accuracy").glob("*.json")
    assert json.loads(saved.read_text())["job"]["backend"] == "onnxruntime"

    bad = bench("accuracy", "-m", cm.NAME, "--weights", str(weights), "--data", str(tmp_path / "nope"), cwd=tmp_path, env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "is not a folder" in bad.stderr
    assert len(list((tmp_path / "results" / "accuracy").glob("*.json"))) == 1
    coreml = bench("accuracy", "-m", cm.NAME, "-b", "coreml", "--weights", str(weights), "--data", str(data),
                   cwd=tmp_path, env=env)
    assert coreml.returncode == 2 and "macOS" in coreml.stderr and "Traceback" not in coreml.stderr


def test_nan_weights_give_no_top1_and_no_record(colour_data, tmp_path: Path) -> None:
    data, _, _, _ = colour_data
    w = cm.prototypes()
    torch.save({"2.weight": torch.full_like(w, float("nan")), "2.bias": torch.zeros(len(w))}, tmp_path / "nan.pth")
    with pytest.raises(HarnessError, match="NaN/inf outputs"):
        evaluate(data, tmp_path / "nan.pth", tmp_path)


def test_a_16_bit_image_is_scaled_by_its_range_not_clipped(tmp_path) -> None:
    """#49: a 16-bit PNG was evaluated with 99.5% of its pixels clipped to 255; a float image is refused."""
    import numpy as np
    from PIL import Image

    from model_zoo.preprocess import as_rgb, open_image

    ramp = (np.arange(40 * 40).reshape(40, 40) * 40).astype(np.uint16)  # 0..63960 of 65535
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    with open_image(tmp_path / "deep.png") as img:
        rgb = np.asarray(as_rgb(img))
    assert rgb.shape == (40, 40, 3) and (rgb == 255).mean() < 0.01
    assert abs(int(rgb[20, 0, 0]) - round(int(ramp[20, 0]) * 255 / 65535)) <= 1
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "float.tiff")
    with open_image(tmp_path / "float.tiff") as img, pytest.raises(ValueError, match="floating-point image"):
        as_rgb(img)


def test_an_evaluation_is_the_planners_job_launched_as_a_step_that_reports_its_images(colour_data, tmp_path: Path) -> None:
    """#51: `bench accuracy` planned its own job and opened the backend in the CLI's process; now the one planner
    plans it and the launcher runs it in a fresh process (a lab's node with `evaluate(..., launcher=...)`), which
    reports each batch's images as it goes."""
    from harness.measure.launch import LocalLauncher
    from harness.measure.planner import jobs

    data, weights, hits1, _ = colour_data
    steps, heard = [], []

    class Recording(LocalLauncher):
        def submit(self, step):
            steps.append(step)
            return super().submit(step)

    chosen = Selection(models=(cm.NAME,), backends=("onnxruntime",), batches=(4,), weights=str(weights))
    rec = accuracy.evaluate(chosen, accuracy.EvalData(data, workers=1), cache_dir=tmp_path / "cache",
                            progress=lambda done, of: heard.append((done, of)), launcher=Recording(["onnxruntime"]))
    (step,) = steps
    assert step.target == accuracy.TARGET and step.payload.job == jobs(chosen.but(form="fused"))[0]
    assert heard == [(4, 18), (8, 18), (12, 18), (16, 18), (18, 18)]  # from the step's process, batch by batch
    assert rec["top1"] == pytest.approx(hits1 / 18) and rec["host"]["cpu"]  # decoded by a worker of its own
