"""int8's accuracy cost, on networks trained on scikit-learn's digits (`tests/digits.py`): a
quantization-friendly network keeps its top-1 within a few points on every CPU runtime; the same network with a
planted activation outlier collapses, and onebench reports the drop as significant, in `bench accuracy`
and in `bench int8`'s published table.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from tests import digits
from tests.helpers import bench

pytestmark = pytest.mark.slow
CPU_INT8 = ["onnxruntime", "openvino", "torch-compile"]
# What int8 costs a quantization-friendly network, measured over twelve training seeds (AMD EPYC, AVX-512 VNNI, 899
# held-out images): OpenVINO -2.8 to +0.3 points (one seed in twelve below -2: -2.78 [-4.00, -1.56]), ONNX Runtime
# -0.4 to +0.2 over six. A machine trains seed 0 into its own network (its kernels differ), so the floor holds the
# spread, far above the planted outlier's collapse (-88 points on both).
FRIENDLY_FLOOR = -0.035
FRIENDLY_CI_FLOOR = FRIENDLY_FLOOR - 0.015  # the lower end of its paired 95% CI (seed 9: -4.00)
PLUGINS = {"ONEBENCH_PLUGINS": "tests.digits"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    digits.write_images(root / "train", "train")
    digits.write_images(root / "val", "val")
    digits.train(root / "cnn.pth", root / "train")
    digits.with_outlier(root / "cnn.pth", root / "outlier.pth")
    return root


@functools.cache  # the friendly network's record serves both tests below: one run per network x recipe
def _accuracy(root: Path, model: str, weights: str, backend: str, *options: str) -> dict:
    results = root / f"results-{model}-{len(options)}-{abs(hash(options))}"
    done = bench("accuracy", "-m", model, "-b", backend, "-p", "int8", "--weights", str(root / weights),
                 "--data", str(root / "val"), "--calibration", str(root / "train"), "--calibration-size", "200",
                 "--workers", "0", "--results", str(results), *[f"--option={o}" for o in options], cwd=root, env=PLUGINS)
    assert done.returncode == 0, done.stderr
    assert "paired with fp32 on the same images: Δ top-1" in done.stdout
    path = next((results / "accuracy").glob(f"{model}.{backend}.cpu.int8.*.json"))
    return json.loads(path.read_text())


@pytest.mark.timeout(900)  # torch-compile builds an AOTInductor package per network
@pytest.mark.parametrize("backend", CPU_INT8)
def test_a_quantization_friendly_network_keeps_its_accuracy_and_an_outlier_network_loses_it(
        trained: Path, backend: str) -> None:
    """Both networks on ONNX Runtime and OpenVINO; torch-compile the friendly one only (a package build is
    ~25 s here; the outlier's collapse on it is in docs/int8.md's table)."""
    friendly = _accuracy(trained, "digits_cnn", "cnn.pth", backend)
    assert friendly["reference"]["top1"] > 0.9  # a real classifier: 10 classes, chance is 0.1
    assert friendly["calibration"]["meaningful"] and friendly["calibration"]["size"] == 200
    paired = friendly["paired"]
    assert paired["delta_top1"] > FRIENDLY_FLOOR and paired["ci_low"] > FRIENDLY_CI_FLOOR, paired
    assert paired["changed_predictions"] < 0.05 * paired["images"]
    if backend == "torch-compile":
        return
    outlier = _accuracy(trained, "digits_outlier", "outlier.pth", backend)
    assert outlier["reference"]["top1"] == pytest.approx(friendly["reference"]["top1"], abs=0.005)  # same in fp32
    dropped = outlier["paired"]
    assert dropped["delta_top1"] < -0.05 and dropped["ci_high"] < 0 and dropped["significant"]
    assert dropped["mcnemar_p"] < 1e-6


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_the_outlier_networks_collapse_is_repaired_by_equalization_or_by_keeping_its_layers_float(
        trained: Path, backend: str) -> None:
    """The planted outlier (one channel 1000x: a fused MobileOne's failure mode, planted) through the int8
    recipe: equalizing the two convolutions it spans, or keeping them float, brings int8 within a point of what
    the same network without the outlier keeps (unrepaired it loses >5 points, above; the friendly network's own
    int8 cost is the runtime's, not the outlier's). The recipe is in the record's job key and its backend_info."""
    friendly = _accuracy(trained, "digits_cnn", "cnn.pth", backend)["paired"]["delta_top1"]
    equalized = _accuracy(trained, "digits_outlier", "outlier.pth", backend, "int8.equalize=true")
    assert equalized["job"]["options"].endswith("int8.equalize=true")
    done = equalized["backend_info"]["int8_recipe"]["equalized"]
    assert done["pairs"] == 3 and done["max_channel_spread_before"] > 100 > 10 > done["max_channel_spread_after"]
    floated = _accuracy(trained, "digits_outlier", "outlier.pth", backend, "int8.float_layers=stem.0;body.0.0")
    # measured, seeds 0 and 9, friendly -> both repairs: ONNX Runtime +0.1 -> 0.0 and +0.1 -> +0.1/+0.2 points;
    # OpenVINO -0.7 -> -0.6 and -2.8 -> -2.7 (a CI run's friendly network at -2.3 was repaired to -2.3)
    for rec in (equalized, floated):
        paired = rec["paired"]
        assert abs(paired["delta_top1"] - friendly) < 0.01, (friendly, paired)
        assert paired["ci_low"] > FRIENDLY_CI_FLOOR, paired
    excluded = floated["backend_info"]["quantization"].get("nodes_to_exclude") or floated["backend_info"]["quantization"]["ignored_scope"]
    assert len(excluded) == 2


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", ["openvino", "torch-compile"])
def test_openvino_and_pt2e_diagnoses_name_the_layers_around_the_outlier(trained: Path, backend: str) -> None:
    """OpenVINO's intermediate outputs and PT2E's numeric debugger: the accumulated SQNR collapses at the
    outlier, and the layers named worst are the two convolutions around it."""
    from harness.publish.int8 import worst_layers

    results = trained / f"results-layers-{backend}"
    done = bench("accuracy", "-m", "digits_outlier", "-b", backend, "-p", "int8", "--weights",
                 str(trained / "outlier.pth"), "--data", str(trained / "val"), "--calibration", str(trained / "train"),
                 "--calibration-size", "200", "--workers", "0", "--results", str(results), "--layers", "--limit", "50",
                 cwd=trained, env=PLUGINS)
    assert done.returncode == 0, done.stderr
    assert "SQNR lost here" in done.stdout
    layers = json.loads(next((results / "accuracy").glob("*.json")).read_text())["layers"]
    assert layers["inputs"] == 32 and len(layers["activations"]) >= 5
    assert set(worst_layers(layers, 2)) & {"stem.0", "body.0.0"}, layers["activations"]
    finite = [r["sqnr_db"] for r in sorted(layers["activations"], key=lambda r: r["depth"]) if r["sqnr_db"] is not None]
    assert max(finite) > 20 > min(finite)  # the signal is there, then lost


def test_the_diagnosis_names_the_layer_that_loses_the_signal_and_its_weight_spread(trained: Path) -> None:
    results = trained / "results-layers"
    done = bench("accuracy", "-m", "digits_outlier", "-b", "onnxruntime", "-p", "int8", "--weights",
                 str(trained / "outlier.pth"), "--data", str(trained / "val"), "--calibration", str(trained / "train"),
                 "--calibration-size", "200", "--workers", "0", "--results", str(results), "--layers", cwd=trained,
                 env=PLUGINS)
    assert done.returncode == 0, done.stderr
    assert "the layers that lose the signal" in done.stdout and "stem.0" in done.stdout
    record = next((results / "accuracy").glob("*.json"))
    layers = json.loads(record.read_text())["layers"]
    assert record.with_suffix(".layers.png").stat().st_size > 1000  # the error along depth, drawn
    assert layers["inputs"] == 32 and "qdq_loss_debug" in layers["method"]
    assert layers["weight_spread"]["stem.0"] > 100 > 10 > layers["weight_spread"]["body.0.0"]  # the planted channel
    by_depth = sorted(layers["activations"], key=lambda r: r["depth"])
    # The outlier tensor's own quantize/dequantize SQNR (qdq_sqnr_db) is no witness: its signal power is the
    # 1000x channel's, which a per-tensor scale keeps, so it ranks among the worst on some machines and not on
    # others (CI: body.1.2 and body.0.2 lower). The accumulated SQNR is: the channels crushed beside the outlier
    # are what the next layer computes from.
    assert by_depth[0]["layer"] == "stem.2" and by_depth[0]["sqnr_db"] > 30 > 0 > by_depth[1]["sqnr_db"]


def test_bench_int8_pairs_fp32_and_int8_in_lockstep_and_reports_the_accuracy_cost(trained: Path) -> None:
    out = trained / "study"
    done = bench("int8", "-m", "digits_outlier", "-b", "onnxruntime", "--weights", str(trained / "outlier.pth"),
                 "--data", str(trained / "val"), "--calibration", str(trained / "train"), "--calibration-size", "100",
                 "--pairs", "4", "--window-ms", "30", "--out", str(out), cwd=trained, env=PLUGINS)
    assert done.returncode == 0, done.stderr
    rec = json.loads(next((out / "int8" / "records").glob("*.json")).read_text())
    speedup = rec["speedup"]
    assert speedup["pairs"] == 4 and speedup["ci_low"] <= speedup["ratio"] <= speedup["ci_high"]
    report = (out / "int8.md").read_text()
    assert "### int8 beside fp32" in report and "lockstep" in report
    row = next(line for line in report.splitlines() if line.startswith("| digits_outlier | onnxruntime"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[4].endswith("!")  # collapsed: a failed parity, flagged, and kept off the plots
    assert float(cells[7].split("[")[0]) < -5  # the planted outlier's cost, in points, in the published table


@pytest.mark.timeout(900)
def test_the_openvino_budget_is_nncfs_accuracy_control_and_its_layers_are_the_outliers(trained: Path) -> None:
    """`bench int8 --budget 1 -b openvino`: NNCF's quantize_with_accuracy_control keeps the layers around the
    planted outlier float; the job timed with them float meets the budget on the calibration images."""
    out = trained / "budget-openvino"
    done = bench("int8", "-m", "digits_outlier", "-b", "openvino", "--weights", str(trained / "outlier.pth"),
                 "--calibration", str(trained / "train"), "--calibration-size", "100", "--budget", "1",
                 "--pairs", "3", "--window-ms", "30", "--out", str(out), cwd=trained, env=PLUGINS)
    assert done.returncode == 0, done.stderr
    found = json.loads((out / "budget.json").read_text())["digits_outlier · openvino"]
    assert "quantize_with_accuracy_control" in found["method"] and found["reverted_ops"]
    assert found["chosen"] == len(found["float_layers"]) >= 1 and set(found["float_layers"]) & {"stem.0", "body.0.0"}
    assert found["trail"][0]["delta_pt"] >= -1.0 and found["nncf_drop_pt"] <= 1.0
    rec = json.loads(next((out / "int8" / "records").glob("*.json")).read_text())
    assert rec["job"]["options"].endswith("int8.float_layers=" + ";".join(sorted(found["float_layers"])))


@pytest.mark.timeout(1500)
def test_the_repair_study_runs_end_to_end_with_one_command(tmp_path: Path) -> None:
    """`benchmarks/int8_study.py` on one runtime, small (32 px, 3 epochs, 4 pairs): it trains the proxy,
    diagnoses it, runs every repair through `bench int8` and writes the study's page, table and plot; a second
    run trains nothing and reruns no finished cell."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    args = [sys.executable, str(ROOT / "benchmarks" / "int8_study.py"), "--out", str(tmp_path / "study"), "--model",
            "mobileone_s0", "--backend", "onnxruntime", "--input-size", "32", "--epochs", "3", "--pairs", "4",
            "--worst", "2"]
    env = {**os.environ, "ONEBENCH_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "training mobileone_s0 on 898 digits at 32x32" in done.stdout
    page = (tmp_path / "study" / "int8-repairs.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| mobileone_s0 | onnxruntime |")]
    labels = [r.split("|")[3].strip() for r in rows]
    fixed = ["none", "equalize", "equalize + float 2 layers", "float 2 layers"]
    assert set(fixed) <= set(labels) and len(labels) <= len(fixed) + 1  # and the budget's row when it met it
    # (as "none" or "float k layers": a CI run's 3-epoch S0 met 1 pt with nothing float)
    assert "- budget 1 pt, mobileone_s0 · onnxruntime: " in page  # what the search chose, or that nothing met it
    assert all("lockstep" in r for r in rows) and "- mobileone_s0 on onnxruntime: " in page
    worst = next(line for line in page.splitlines() if line.startswith("- worst layers on onnxruntime")).split(": ")[1]
    assert len(worst.split(", ")) == 2 and all(name.startswith("stage") for name in worst.split(", "))
    assert (tmp_path / "study" / "plots" / "int8-repairs-onnxruntime.png").stat().st_size > 1000
    again = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "training" not in again.stdout and "$ bench" not in again.stdout
    assert (tmp_path / "study" / "int8-repairs.md").read_text() == page
