"""int8 end to end with the real quantizers: ONNX Runtime's QDQ, NNCF on OpenVINO, PT2E on Inductor timed
by `bench run`; the QDQ file TensorRT reads; Core ML's int8 variants converted (accuracy: test_int8_digits.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import bench

pytestmark = pytest.mark.slow
CPU_INT8 = ["onnxruntime", "openvino", "torch-compile"]


def test_bench_run_times_int8_and_says_what_ran_quantized(tmp_path: Path) -> None:
    """ONNX Runtime and OpenVINO (torch-compile's int8 artifact is built and checked by test_int8_digits.py)."""
    env = {"ONEBENCH_PLUGINS": "tests.tiny_mobileone"}
    done = bench("run", "-m", "tiny_mobileone", *[a for b in CPU_INT8[:2] for a in ("-b", b)], "-p", "int8", "--preset", "quick",
                 "--wait-quiet", "0", "--calibration-size", "8", "--out", str(tmp_path / "run"), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    recs = {r["job"]["backend"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "run" / "records").glob("*.json"))}
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs.values()), [r["message"] for r in recs.values()]
    for backend, rec in recs.items():
        quant = rec["backend_info"]["quantization"]
        counts = quant.get("runtime") if backend == "openvino" else quant["graph"]
        assert counts["quantized_ops"] > 0, (backend, quant)
        assert quant["calibration"]["meaningful"] is False and rec["calibration"]["size"] == 8
        assert rec["parity"]["passed"] and rec["parity"]["tolerance"]["min_top1_agreement"] == 0.9
    assert recs["onnxruntime"]["backend_info"]["quantization"]["runtime"]["integer_kernels"]
    shown = bench("show", str(tmp_path / "run"), cwd=tmp_path, env=env)
    assert "calibration: 8 images, seeded RANDOM input" in shown.stdout and "quantized graph:" in shown.stdout


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
    calibrate by running Core ML, so off macOS the job says so (its skipped record's reason)."""
    import dataclasses

    import model_zoo
    import tests.tiny_mobileone  # noqa: F401 - registers it in this process
    from backends.base import SkipJob
    from backends.coreml import convert_and_check
    from harness.measure.jobs import plan

    model = model_zoo.create("tiny_mobileone")  # its head alone passes coremltools' 2048-element threshold
    job = plan(["tiny_mobileone"], ["coreml"], ["int8"], [1], 1, device="all", input_sizes={"tiny_mobileone": 64})[0]
    quantized = {}
    for mode in ("w8", "palettize8"):
        variant = dataclasses.replace(job, options="" if mode == "w8" else f"int8_mode={mode}")
        _, artifact, info = convert_and_check(model, variant.spec(), tmp_path, "w")
        quantized[mode] = (artifact["sha256"], info["quantization"]["graph"]["quantized_op_types"], variant.id)
    assert quantized["w8"][0] != quantized["palettize8"][0]
    assert sum(quantized["w8"][1].values()) >= 1 and "constexpr_lut_to_dense" in quantized["palettize8"][1]
    assert quantized["palettize8"][2].endswith(".int8_mode_palettize8") and "int8_mode" not in quantized["w8"][2]
    with pytest.raises(SkipJob, match="needs macOS .* w8 and palettize8 convert here"):
        convert_and_check(model, dataclasses.replace(job, options="int8_mode=w8a8").spec(), tmp_path, "w")
