"""int8 end to end with the real quantizers: ONNX Runtime's QDQ, NNCF on OpenVINO, PT2E on Inductor.

Networks trained on scikit-learn's digits (`tests/digits.py`) give accuracy that means something: the
quantization-friendly one keeps its top-1 within a point on every runtime, the same network with a
planted activation outlier loses many points, and onebench reports that drop as significant.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import digits
from tests.helpers import bench

pytestmark = pytest.mark.slow
CPU_INT8 = ["onnxruntime", "openvino", "torch-compile"]
PLUGINS = {"ONEBENCH_PLUGINS": "tests.digits"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    digits.write_images(root / "train", "train")
    digits.write_images(root / "val", "val")
    digits.train(root / "cnn.pth", root / "train")
    digits.train(root / "outlier.pth", root / "train", outlier=True)
    return root


def _accuracy(root: Path, model: str, weights: str, backend: str) -> dict:
    done = bench("accuracy", "-m", model, "-b", backend, "-p", "int8", "--weights", str(root / weights),
                 "--data", str(root / "val"), "--calibration", str(root / "train"), "--calibration-size", "200",
                 "--workers", "0", "--results", str(root / f"results-{model}"), cwd=root, env=PLUGINS)
    assert done.returncode == 0, done.stderr
    assert "paired with fp32 on the same images: Δ top-1" in done.stdout
    path = next((root / f"results-{model}" / "accuracy").glob(f"{model}.{backend}.cpu.int8.*.json"))
    return json.loads(path.read_text())


@pytest.mark.timeout(900)  # torch-compile builds two AOTInductor packages
@pytest.mark.parametrize("backend", CPU_INT8)
def test_a_quantization_friendly_network_keeps_its_accuracy_and_an_outlier_network_loses_it(
        trained: Path, backend: str) -> None:
    friendly = _accuracy(trained, "digits_cnn", "cnn.pth", backend)
    assert friendly["reference"]["top1"] > 0.9  # a real classifier: 10 classes, chance is 0.1
    assert friendly["calibration"]["meaningful"] and friendly["calibration"]["size"] == 200
    paired = friendly["paired"]
    assert abs(paired["delta_top1"]) < 0.02 and paired["ci_low"] > -0.03
    assert paired["changed_predictions"] < 0.05 * paired["images"]
    outlier = _accuracy(trained, "digits_outlier", "outlier.pth", backend)
    assert outlier["reference"]["top1"] == pytest.approx(friendly["reference"]["top1"], abs=0.005)  # same in fp32
    dropped = outlier["paired"]
    assert dropped["delta_top1"] < -0.05 and dropped["ci_high"] < 0 and dropped["significant"]
    assert dropped["mcnemar_p"] < 1e-6


def test_bench_run_times_int8_on_every_cpu_backend_and_says_what_ran_quantized(tmp_path: Path) -> None:
    done = bench("run", "-m", "tiny_mobileone", *[a for b in CPU_INT8 for a in ("-b", b)], "-p", "fp32", "-p", "int8",
                 "--quick", "--wait-quiet", "0", "--calibration-size", "8", "--out", str(tmp_path / "run"), cwd=tmp_path,
                 env={"ONEBENCH_PLUGINS": "tests.tiny_mobileone"})
    assert done.returncode == 0, done.stderr
    recs = {(r["job"]["backend"], r["job"]["precision"]): r
            for r in (json.loads(p.read_text()) for p in (tmp_path / "run" / "records").glob("*.json"))}
    assert len(recs) == 6 and all(r["status"] == "ok" for r in recs.values()), [r["message"] for r in recs.values()]
    for backend in CPU_INT8:
        quant = recs[backend, "int8"]["backend_info"]["quantization"]
        counts = quant.get("runtime") if backend == "openvino" else quant["graph"]
        assert counts["quantized_ops"] > 0, (backend, quant)
        assert quant["calibration"]["meaningful"] is False
        assert recs[backend, "int8"]["artifact"]["sha256"] != recs[backend, "fp32"]["artifact"].get("sha256")
    assert recs["onnxruntime", "int8"]["backend_info"]["quantization"]["runtime"]["integer_kernels"]
    shown = bench("show", str(tmp_path / "run"), cwd=tmp_path, env={"ONEBENCH_PLUGINS": "tests.tiny_mobileone"})
    assert "calibration: 8 images, seeded RANDOM input" in shown.stdout and "quantized graph:" in shown.stdout
    board = bench("leaderboard", str(tmp_path / "run"), "--format", "md", cwd=tmp_path,
                  env={"ONEBENCH_PLUGINS": "tests.tiny_mobileone"})
    assert "### int8 beside fp32" in board.stdout and "separate" in board.stdout


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


def test_the_qdq_file_for_tensorrt_is_signed_and_symmetric(tmp_path: Path) -> None:
    """TensorRT reads only symmetric int8 Q/DQ: its configuration asks ONNX Runtime's quantizer for that (the
    GPU itself is not needed to check the file it would build from)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    import model_zoo
    from backends.calibration import Calibration
    from backends.onnx_export import export_onnx
    from backends.onnx_quantize import QdqSettings, TensorRTQdq, quantize_qdq

    model = model_zoo.create("mobileone_s0")
    fp32, _ = export_onnx(model, "mobileone_s0", "w", 1, 224, tmp_path)
    calib = Calibration("random", 4, "d", lambda n=None: np.random.default_rng(0).standard_normal((4, 3, 224, 224),
                                                                                                   dtype=np.float32))
    points = {}
    for name, settings in (("trt", TensorRTQdq()), ("cpu", QdqSettings())):
        path, _, info = quantize_qdq(fp32, settings, calib, 1, tmp_path)
        graph = onnx.load(str(path)).graph
        inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        points[name] = [inits[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear"]
        assert info["graph"]["quantized_ops"] > 40 and info["graph"]["float_ops"] == 0
    assert all(z.dtype == np.int8 and not z.any() for z in points["trt"])  # signed, zero point 0
    assert all(z.dtype == np.uint8 for z in points["cpu"])  # ONNX Runtime's x86 default: U8 activations


def test_core_ml_int8_variants_convert_here_and_name_themselves_in_the_key(tmp_path: Path) -> None:
    """8-bit weights and 8-bit palettization convert anywhere (and are timed on a Mac); 8-bit activations
    calibrate by running Core ML, so off macOS the job says so in its skipped record."""
    recs = {}
    for mode in ("w8", "palettize8", "w8a8"):
        done = bench("run", "-m", "mobileone_s0", "-b", "coreml", "-p", "int8", "-o", f"coreml.int8_mode={mode}",
                     "--quick", "--wait-quiet", "0", "--out", str(tmp_path / mode), cwd=tmp_path)
        assert done.returncode == 3, done.stderr  # nothing timed off macOS
        recs[mode] = json.loads(next((tmp_path / mode / "records").glob("*.json")).read_text())
    assert recs["w8"]["job"]["options"] == "" and recs["palettize8"]["job"]["options"] == "int8_mode=palettize8"
    w8, lut = (recs[m]["backend_info"]["quantization"]["graph"]["quantized_op_types"] for m in ("w8", "palettize8"))
    assert w8.get("constexpr_affine_dequantize", 0) + w8.get("constexpr_blockwise_shift_scale", 0) > 30
    assert lut.get("constexpr_lut_to_dense", 0) > 30
    assert recs["w8"]["artifact"]["sha256"] != recs["palettize8"]["artifact"]["sha256"]
    assert "needs macOS" in recs["w8a8"]["message"] and "w8 and palettize8 convert here" in recs["w8a8"]["message"]
