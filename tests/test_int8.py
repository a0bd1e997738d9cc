"""int8 and typed backend configurations, through the runner with test doubles and through the CLI's bad input.

The real quantizers (ONNX Runtime, NNCF, PT2E) and the digits-trained networks are in the slow lane
(`test_int8_e2e.py`); here a double with a typed configuration and an int8 path (`fake-configured`)
carries an option, a calibration set and a collapsed model through the same code."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from backends.options import ConfigError, parse_cli_options
from harness.errors import HarnessError
from harness.evaluate.paired import paired_delta
from harness.measure.calibration import describe
from harness.measure.inputs import Inputs, Stores
from harness.measure.planner import calibration_from_options
from harness.measure.planner import jobs as planned
from harness.measure.protocol import preset
from harness.measure.runner import run_sweep
from harness.measure.selection import Selection
from harness.publish import int8
from harness.publish.leaderboard import to_csv
from harness.store.job_key import job_id, key_label
from model_zoo.spec import Preprocess
from tests.helpers import bench

pytestmark = pytest.mark.usefixtures("fake_backends")
MODEL = "timm:test_byobnet"  # known to the fork server without a plugin (it may have started before this module)
FAST = preset("quick", min_s=0.05, max_s=0.2, warmup_s=0.01, timeout_s=60.0, probe=False)

def _images(folder: Path, n: int, size: int = 16) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        (folder / str(i % 2)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / str(i % 2) / f"{i}.png")
    return folder


def _sweep(tmp_path: Path, name: str, precision: str = "fp32", options: list[str] | None = None,
           calibration: dict | None = None) -> dict:
    jobs = planned(Selection(models=[MODEL], backends=["fake-configured"], precisions=[precision], threads=1, options=options))
    recs = run_sweep(jobs, FAST, tmp_path / name, inputs=Inputs(calibration=calibration), stores=Stores(cache_dir=tmp_path / "cache", index_db=tmp_path / "index.sqlite"))
    return recs[0]


def test_a_config_field_reaches_the_key_the_record_the_artifact_key_the_index_and_the_csv(tmp_path: Path) -> None:
    default = _sweep(tmp_path, "default")
    tuned = _sweep(tmp_path, "tuned", options=["fake-configured.tile=16"])
    assert default["job"]["options"] == "" and default["backend_config"] == {"tile": 8, "collapse": False, "refuse": False}
    assert tuned["job"]["options"] == "tile=16" and tuned["backend_config"]["tile"] == 16
    assert tuned["job_id"].endswith(".tile_16") and "tile=16" in key_label(tuned["job"])
    assert tuned["artifact"]["path"] != default["artifact"]["path"]  # the artifact key includes the configuration
    with sqlite3.connect(tmp_path / "index.sqlite") as con:
        assert sorted(r[0] for r in con.execute("SELECT options FROM records")) == ["", "tile=16"]
    rows = list(csv.DictReader(io.StringIO(to_csv([default, tuned]))))
    assert [r["options"] for r in rows] == ["", "tile=16"]


def test_backend_options_are_validated_by_the_backends_own_configuration() -> None:
    from backends import registry

    assert parse_cli_options(["onnxruntime.calibration_method=entropy", "onnxruntime.per_channel=false"],
                             ["onnxruntime"], registry.get) == {"onnxruntime": "calibration_method=entropy,per_channel=false"}
    assert parse_cli_options(["onnxruntime.calibration_method=minmax"], ["onnxruntime"], registry.get) == {"onnxruntime": ""}
    for bad, says in (("onnxruntime.calibration=entropy", "has no option 'calibration'"),
                      ("onnxruntime.calibration_method=best", "is one of minmax, entropy, percentile"),
                      ("onnxruntime.per_channel=maybe", "takes a bool"),
                      ("openvino.preset=mixed", "not in this sweep"),
                      ("onnxruntime", "is not BACKEND.FIELD=VALUE")):
        with pytest.raises(ConfigError, match=says):
            parse_cli_options([bad], ["onnxruntime"], registry.get)


def test_a_long_options_string_enters_the_id_as_a_digest() -> None:
    key = {"model": "m", "form": "fused", "backend": "b", "device": "cpu", "precision": "int8", "batch": 1,
           "threads": 1, "boundary": "host-sync", "options": "a=1," * 20}
    assert job_id(key).startswith("m.fused.b.cpu.int8.b1.t1.host-sync.o") and len(job_id(key)) < 60
    assert job_id({**key, "options": ""}) == "m.fused.b.cpu.int8.b1.t1.host-sync"


def test_int8_records_name_their_calibration_and_random_input_says_its_accuracy_means_nothing(tmp_path: Path) -> None:
    jobs = planned(Selection(models=[MODEL], backends=["fake-configured"], precisions=["int8"], threads=1))
    random = _sweep(tmp_path, "random", "int8")
    assert random["calibration"]["source"] == "random" and random["calibration"]["meaningful"] is False
    assert random["backend_info"]["quantization"]["calibration"]["meaningful"] is False
    assert random["parity"]["passed"] and random["parity"]["tolerance"]["min_top1_agreement"] == 0.9
    folder = _images(tmp_path / "calib", 6)
    images = _sweep(tmp_path, "images", "int8", calibration=calibration_from_options(jobs, Selection(calibration=str(folder), calibration_size=4)))
    assert images["calibration"]["meaningful"] is True and images["calibration"]["size"] == 4
    assert images["artifact"]["path"] != random["artifact"]["path"]  # the calibration set keys the artifact
    first = describe(str(folder), 4, Preprocess(input_size=64)).sha256
    _images(folder, 6, size=20)  # same names, other content
    assert describe(str(folder), 4, Preprocess(input_size=64)).sha256 != first


def test_an_int8_model_that_collapsed_is_a_failed_parity_record_not_a_number(tmp_path: Path) -> None:
    rec = _sweep(tmp_path, "collapsed", "int8", options=["fake-configured.collapse=true"])
    assert rec["parity"]["passed"] is False and rec["parity"]["top1_agreement"] < 0.9
    assert "parity" in rec["message"] and "top-1 agreement" in rec["message"]
    assert rec["parity"]["tolerance"]["min_top1_agreement"] == 0.9


def test_calibration_input_is_checked_before_any_work(tmp_path: Path) -> None:
    jobs = planned(Selection(models=[MODEL], backends=["fake-configured"], precisions=["int8"], threads=1))
    with pytest.raises(HarnessError, match="is not a folder"):
        calibration_from_options(jobs, Selection(calibration=str(tmp_path / "missing")))
    with pytest.raises(HarnessError, match="holds 3 images, fewer than --calibration-size 300"):
        calibration_from_options(jobs, Selection(calibration=str(_images(tmp_path / "few", 3))))
    broken = _images(tmp_path / "broken", 4)
    (broken / "0" / "0.png").write_bytes(b"not a png")
    with pytest.raises(HarnessError, match="cannot read calibration image .*0.png"):
        calibration_from_options(jobs, Selection(calibration=str(broken), calibration_size=4))
    with pytest.raises(HarnessError, match="apply to int8 jobs"):
        calibration_from_options(planned(Selection(models=[MODEL], backends=["fake-configured"], precisions=["fp32"])),
                                 Selection(calibration=str(broken), calibration_size=4))


@pytest.mark.slow  # a `bench` process each (7 s): the in-process checks above cover the same errors in the fast lane
@pytest.mark.parametrize("args, says", [
    (["run", "-m", MODEL, "-b", "onnxruntime", "-p", "int8", "--calibration", "nowhere"], "is not a folder"),
    (["run", "-m", MODEL, "-b", "onnxruntime", "-p", "int8", "-o", "onnxruntime.per_channel=perhaps"],
     "takes a bool"),
    (["accuracy", "-m", MODEL, "-b", "torch", "-p", "int8", "--weights", "w.pth", "--data", "."],
     "torch has no int8 (quantized) path; int8 runs on"),
])
def test_bad_int8_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "w.pth").write_bytes(b"")
    done = bench(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "w.pth"]  # no record, no run folder


def test_int8_on_named_backends_without_it_is_bad_input() -> None:
    with pytest.raises(HarnessError, match="none of torch has an int8 path; int8 runs on torch-compile, onnxruntime, openvino"):
        planned(Selection(models=[MODEL], backends=["torch"], precisions=["int8"], threads=1))
    mixed = planned(Selection(models=[MODEL], backends=["torch", "fake-configured"], precisions=["int8"], threads=1))
    assert {j.backend for j in mixed} == {"torch", "fake-configured"}  # torch's int8 job: a skipped record


@pytest.mark.slow  # a `bench accuracy` process
def test_a_quantizer_refusing_the_model_is_one_line_and_records_nothing(tmp_path: Path) -> None:
    import torch

    from model_zoo import create

    torch.save(create(MODEL).state_dict(), tmp_path / "w.pth")
    (tmp_path / "classes.txt").write_text("\n".join(str(i) for i in range(1000)))
    _images(tmp_path / "data", 2)
    done = bench("accuracy", "-m", MODEL, "-b", "fake-configured", "-p", "int8", "-o", "fake-configured.refuse=true",
                 "--weights", "w.pth", "--data", "data", "--workers", "0", "--class-map", "classes.txt", cwd=tmp_path,
                 env={"ONEBENCH_PLUGINS": "tests.fake_backends_plugin"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"error: fake-configured could not quantize {MODEL} (ValueError: Quantization "
                                   "of op 'Resize' is not supported); no accuracy was recorded")
    assert not (tmp_path / "results" / "accuracy").exists() or not any((tmp_path / "results" / "accuracy").iterdir())


def test_paired_delta_is_judged_on_the_discordant_pairs() -> None:
    reference = np.array([True] * 900 + [False] * 100)
    same = paired_delta(reference.copy(), reference, changed=0)
    assert same["delta_top1"] == 0 and same["ci_low"] == same["ci_high"] == 0 and same["mcnemar_p"] == 1.0
    worse = reference.copy()
    worse[:90] = False  # 90 images lost, none gained: -9 points
    drop = paired_delta(worse, reference, changed=90)
    assert drop["delta_top1"] == pytest.approx(-0.09) and drop["significant"]
    assert drop["ci_low"] < -0.09 < drop["ci_high"] < 0 and drop["mcnemar_p"] < 1e-20
    noise = reference.copy()
    noise[:5], noise[900:905] = False, True  # 5 lost, 5 gained: no difference, and not significant
    even = paired_delta(noise, reference, changed=10)
    assert even["delta_top1"] == 0 and even["ci_low"] < 0 < even["ci_high"] and not even["significant"]


def test_an_imagenet_subset_maps_through_timms_class_list(tmp_path: Path) -> None:
    from PIL import Image

    from harness.evaluate.datasets import scan

    for wnid in ("n01443537", "n01530575"):  # goldfish and brambling: outputs 1 and 10 of ImageNet-1k
        (tmp_path / wnid).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / wnid / "a.png")
    assert scan(tmp_path, 1000).labels == [1, 10]
    with pytest.raises(HarnessError, match="pass --class-map"):  # not WordNet ids: still a clear error
        (tmp_path / "n01530575").rename(tmp_path / "birds")
        scan(tmp_path, 1000)


def test_the_int8_table_pairs_each_int8_record_with_its_fp32_partner(tmp_path: Path) -> None:
    fp32 = _sweep(tmp_path, "fp32")
    quantized = _sweep(tmp_path, "int8", "int8")
    rows = int8.rows([fp32, quantized])
    assert len(rows) == 1 and rows[0].method == "separate" and rows[0].speedup > 0
    low, high = rows[0].speedup_ci
    assert low <= rows[0].speedup <= high
    assert rows[0].quantized == "3/4" and not rows[0].calibrated and rows[0].delta is None
    text = int8.markdown(rows, records=[fp32, quantized])
    assert "random (latency only)" in text and "not measured" in text
    quantized = quantized.revised(speedup={"ratio": 2.0, "ci_low": 1.9, "ci_high": 2.1, "pairs": 20, "method": "lockstep"})
    assert int8.speedup_text(int8.rows([fp32, quantized])[0]) == "2.00× [1.90, 2.10] lockstep"


def test_int8_top1_agreement_counts_only_inputs_where_fp32_is_decisive() -> None:
    from harness.measure.parity import compare

    rng = np.random.default_rng(0)
    ref = 20 + 0.3 * rng.standard_normal((16, 10))  # logits with a large shared part: a cosine near 1 hides a lot
    ref[np.arange(16), rng.integers(0, 10, 16)] += 4  # one confident winner each, as a trained model has
    flipped = ref.copy()
    for row in flipped[:4]:  # 4 of 16 predictions moved: a collapse with a cosine still near 1
        top, second = np.argsort(row)[-1], np.argsort(row)[-2]
        row[top], row[second] = row[second], row[top]
    parity = compare(flipped, ref, "int8")
    assert parity.cosine > 0.98 and parity.decisive_inputs == 16 and parity.decisive_agreement == 0.75
    assert not parity.passed
    ties = np.ones((16, 10)) + rng.standard_normal((16, 10)) * 1e-4  # a random-weight model: near ties
    noisy = ties + rng.standard_normal((16, 10)) * 1e-3
    near = compare(noisy, ties, "int8")
    assert near.top1_agreement < 0.5 and near.decisive_inputs == 0 and near.passed  # ties flipping is no failure
    assert compare(flipped, ref, "fp16").decisive_inputs is None  # the criterion is int8's own


def test_an_all_zero_output_has_cosine_zero_not_one() -> None:
    """PT2E's int8 EfficientNet-B0 answered all zeros here (random weights): a cosine of 1 would have hidden it."""
    from harness.measure.parity import compare

    ref = np.random.default_rng(0).standard_normal((2, 10))
    assert compare(np.zeros_like(ref), ref, "int8").cosine == 0.0
    assert compare(np.zeros_like(ref), np.zeros_like(ref), "fp32").cosine == 1.0
