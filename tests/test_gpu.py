"""GPU backends on a machine without a GPU: what is unit-testable (provider checks against fake
sessions, engine cache keys, boundaries, telemetry rules, install conflicts) and the skipped path.
The `gpu` tests run the torch CUDA matrix where a GPU is visible and are skipped here with the reason."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backends import onnxruntime_gpu, registry, tensorrt_engine
from backends.base import JobSpec, Session
from harness.host import gpu
from harness.measure import trust
from harness.measure.inputs import Stores
from harness.measure.jobs import Job, plan
from harness.measure.protocol import preset
from harness.measure.runner import run_sweep
from harness.measure.worker import boundary_timer
from harness.store import runs as store
from harness.store.job_key import key_of
from tests.fake_backends import ALL, DeviceTimed
from tests.helpers import bench
from tests.synthetic import record

GPU_BACKENDS = ["torch", "torch-compile", "torch-cudagraph", "onnxruntime-cuda", "onnxruntime-trt", "tensorrt"]


def test_a_provider_that_did_not_load_is_an_error_not_a_cpu_number() -> None:
    class FakeSession:  # what ONNX Runtime hands back after a silent fallback
        def get_providers(self) -> list[str]:
            return ["CPUExecutionProvider"]

    with pytest.raises(RuntimeError, match="CUDAExecutionProvider did not load .*runs on CPUExecutionProvider"):
        onnxruntime_gpu.check_providers(["CUDAExecutionProvider"], FakeSession().get_providers())
    onnxruntime_gpu.check_providers(["TensorrtExecutionProvider", "CUDAExecutionProvider"],
                                    ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])


def test_both_onnxruntime_wheels_are_detected(monkeypatch) -> None:
    assert "both installed" in onnxruntime_gpu.conflict(["onnxruntime", "onnxruntime-gpu"])
    assert onnxruntime_gpu.conflict(["onnxruntime"]) is None and onnxruntime_gpu.conflict(["onnxruntime-gpu"]) is None
    monkeypatch.setattr(onnxruntime_gpu, "installed", lambda dist: True)
    for name in ("onnxruntime", "onnxruntime-cuda"):
        avail = registry.get(name).availability()
        assert not avail.ok and "overwrite each other's files" in avail.reason


def test_provider_options_bind_our_stream_and_tensorrt_settings() -> None:
    job = JobSpec(model="m", backend="onnxruntime-trt", device="cuda", precision="fp16")
    opts = onnxruntime_gpu.provider_options("TensorrtExecutionProvider", job, 1234, "/c")
    assert opts["user_compute_stream"] == "1234" and opts["trt_fp16_enable"] == "True"
    assert opts["trt_int8_enable"] == "False" and opts["trt_engine_cache_path"] == "/c"
    assert "trt_fp16_enable" not in onnxruntime_gpu.provider_options("CUDAExecutionProvider", job, 1, "")
    int8 = onnxruntime_gpu.provider_options("TensorrtExecutionProvider", JobSpec("m", "onnxruntime-trt", "cuda", "int8"), 1, "")
    assert int8["trt_int8_enable"] == "True" and "trt_int8_calibration_table_name" not in int8  # explicit: the QDQ scales


def test_engine_cache_key_covers_onnx_tensorrt_gpu_and_precision(tmp_path: Path) -> None:
    base = ("a" * 64, "10.9.0", "NVIDIA H100 80GB HBM3", "fp16")
    key = tensorrt_engine.engine_key(*base)
    for i, other in enumerate(("b" * 64, "10.10.0", "NVIDIA A100-SXM4-40GB", "fp32")):
        changed = list(base)
        changed[i] = other
        assert tensorrt_engine.engine_key(*changed) != key
    assert tensorrt_engine.engine_key(*base) == key
    path = tensorrt_engine.engine_path(tmp_path, "timm:x/y", "fp16", key)
    assert path.parent == tmp_path / "tensorrt" and path.name == f"timm_x_y-fp16-{key}.engine"


def test_boundary_timer_is_the_device_timer_or_an_error() -> None:
    session = Session(run=lambda: None, infer=lambda x: x, boundary="end-to-end", device_timer=lambda: 5)
    cuda = dict(model="m", backend="b", device="cuda")
    assert boundary_timer(session, Job(**cuda, boundary="device"))() == 5
    assert boundary_timer(session, Job(**cuda, boundary="end-to-end")) is None
    with pytest.raises(RuntimeError, match="measures the end-to-end boundary, not host-sync"):
        boundary_timer(session, Job(**cuda, boundary="host-sync"))
    session.device_timer = None
    with pytest.raises(RuntimeError, match="has no device timer"):
        boundary_timer(session, Job(**cuda, boundary="device"))


def test_device_boundary_jobs_are_timed_by_the_device_timer(tmp_path: Path) -> None:
    registry.register("fake-device-timer", ALL["fake-device-timer"])
    try:
        cfg = preset("quick", probe=False, min_s=0.05, max_s=0.1, warmup_s=0.01)
        jobs = [Job(model="timm:test_byobnet", backend="fake-device-timer", input_size=64, boundary=b)
                for b in ("device", "end-to-end")]
        recs = {r["job"]["boundary"]: r for r in run_sweep(jobs, cfg, tmp_path / "run", stores=Stores(cache_dir=tmp_path / "c"))}
    finally:
        registry.unregister("fake-device-timer")
    assert set(recs["device"]["processes"][0]["samples_ns"]) == {DeviceTimed.DEVICE_NS}
    assert recs["end-to-end"]["stats"]["p50"] != DeviceTimed.DEVICE_NS and recs["end-to-end"]["status"] == "ok"
    assert recs["device"]["job_id"] != recs["end-to-end"]["job_id"]


def test_gpu_drift_makes_a_job_unstable() -> None:
    before = {"sm_clock_mhz": 1980, "temperature_c": 45}
    assert gpu.changes(before, {"sm_clock_mhz": 1965, "temperature_c": 48}) == []
    reasons = gpu.changes(before, {"sm_clock_mhz": 1410, "temperature_c": 71})
    assert any("SM clock changed 1980 → 1410" in r for r in reasons) and any("temperature" in r for r in reasons)
    procs = [{"samples_ns": [1] * 30, "gpu": {"before": before, "after": {"sm_clock_mhz": 1410}}}]
    pooled = {"process_medians": [1.0], "p50": 1.0, "spread": 0.0, "ci_low": 1.0, "ci_high": 1.0}
    assert any("process 0: GPU SM clock" in r for r in trust.unstable_reasons(procs, pooled, preset("quick")))


def test_show_prints_each_process_gpu_state() -> None:
    from harness.publish.show import job_lines

    rec = record([np.full(30, 1e6)])
    rec["processes"][0]["gpu"] = {"before": {"sm_clock_mhz": 1980, "temperature_c": 40},
                                  "after": {"sm_clock_mhz": 1755, "temperature_c": 52}, "torch_peak_allocated_mb": 88.0}
    assert "    process 0 GPU: SM clock 1980 → 1755 MHz · 40 → 52 °C · torch_peak_allocated_mb 88" in job_lines([rec])


def test_telemetry_is_empty_without_nvml() -> None:
    try:
        import pynvml  # noqa: F401
        pytest.skip("nvidia-ml-py is installed here")
    except ImportError:
        assert gpu.snapshot() == {} and gpu.device_info() is None


def test_layout_is_part_of_the_key_and_old_records_read_as_nchw(tmp_path: Path) -> None:
    jobs = plan(["m"], ["torch"], ["fp16"], [1], 1, device="cuda", layout="nhwc")
    assert [j.boundary for j in jobs] == ["device", "end-to-end"]
    assert all(j.id.endswith(".nhwc") for j in jobs)
    assert key_of({**jobs[0].as_dict(), "layout": "nchw"}) != jobs[0].key
    old = {k: v for k, v in Job(model="m", backend="torch").as_dict().items() if k != "layout"}
    assert key_of(old) == Job(model="m", backend="torch").key


def test_an_index_from_an_older_onebench_is_rebuilt(tmp_path: Path) -> None:
    rec = record([np.full(30, 1e6)])
    path = tmp_path / "runs" / "r" / "records" / "x.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))
    db = tmp_path / "index.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE records (run_id, job_id, path)")
    store.index_record(db, rec, path)
    assert [r["layout"] for r in store.query(db)] == ["nchw"]


def test_no_gpu_means_skipped_records_with_the_reason(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    listing = bench("list", "backends", cwd=tmp_path)
    assert listing.returncode == 0
    for name in ("torch-cudagraph", "onnxruntime-cuda", "onnxruntime-trt", "tensorrt"):
        assert re.search(rf"{name}\s+│\s+no", listing.stdout), name
    assert "onebench[tensorrt]" in listing.stdout and "onebench[gpu]" in listing.stdout
    done = bench("run", "--preset", "quick", "-m", "timm:test_byobnet", "--device", "cuda", "-p", "fp16", "--out", "run", cwd=tmp_path)
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr[-2000:]  # 3: no job was measured
    assert "no job was measured" in done.stderr
    recs = [json.loads(p.read_text()) for p in (tmp_path / "run" / "records").glob("*.json")]
    assert sorted({r["job"]["backend"] for r in recs}) == sorted(GPU_BACKENDS)
    assert {r["job"]["boundary"] for r in recs} == {"device", "end-to-end"} and len(recs) == 2 * len(GPU_BACKENDS)
    assert all(r["status"] == "skipped" for r in recs)
    torch_rec = next(r for r in recs if r["job"]["backend"] == "torch")
    assert "no CUDA GPU is visible" in torch_rec["message"]
    assert "onnxruntime-gpu" in next(r for r in recs if r["job"]["backend"] == "onnxruntime-cuda")["message"]


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["torch", "torch-cudagraph", "torch-compile"])
def test_torch_cuda_matrix(backend: str, tmp_path: Path) -> None:
    # torch-compile: fp16 only (torch.compile, ~9 s per compile on an H200 machine, cached for the other boundary)
    args = ["run", "--preset", "quick", "-m", "mobileone_s0", "-b", backend, "--device", "cuda", "-p", "fp16"]
    if backend != "torch-compile":
        args += ["-p", "fp32"] + (["-p", "bf16"] if torch.cuda.is_bf16_supported() else [])
    done = bench(*args, "--out", "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    recs = [json.loads(p.read_text()) for p in (tmp_path / "run" / "records").glob("*.json")]
    assert recs and all(r["status"] == "ok" and r["parity"]["passed"] for r in recs), [r["message"] for r in recs]
    assert all(r["host"]["accelerator"]["name"] == torch.cuda.get_device_name(0) for r in recs)  # the GPU, named
    by = {(r["job"]["precision"], r["job"]["boundary"]): r["stats"]["p50"] for r in recs}
    for precision in {p for p, _ in by}:
        assert by[(precision, "device")] > 0 and by[(precision, "end-to-end")] > 0
    assert all(p["gpu"]["torch_peak_allocated_mb"] > 0 and p["gpu"]["before"] for r in recs for p in r["processes"])
    if backend == "torch-cudagraph":
        assert all(r["cold_start"]["capture_s"] > 0 for r in recs)
    if backend == "torch-compile":  # compiled by the first process, Inductor's cache hit by the others
        assert all(r["artifact"]["format"] == "inductor-cache" and r["cold_start"]["compile_s"] > 0 for r in recs)
        assert any(r["cold_start"]["inductor_cache_hit"] for r in recs)


class FakeTensorRT:
    """The slice of the TensorRT 10 Python API `build_engine` calls, recording what it was asked."""

    __version__ = "10.9.0"

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            self.level = level

    class NetworkDefinitionCreationFlag:
        EXPLICIT_BATCH, STRONGLY_TYPED = 0, 1

    class MemoryPoolType:
        WORKSPACE = "workspace"

    class BuilderFlag:
        FP16, INT8 = "fp16", "int8"

    def __init__(self, parse_ok: bool = True, builds: bool = True) -> None:
        self.parse_ok, self.builds, self.calls = parse_ok, builds, []
        fake = self

        class Config:
            def set_memory_pool_limit(self, pool, size):
                fake.calls.append(("pool", pool, size))

            def set_flag(self, flag):
                fake.calls.append(("set", flag))

            def clear_flag(self, flag):
                fake.calls.append(("clear", flag))

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                fake.calls.append(("network", flags))
                return "network"

            def create_builder_config(self):
                return Config()

            def build_serialized_network(self, network, config):
                return b"engine" if fake.builds else None

        class OnnxParser:
            num_errors = 0 if parse_ok else 2

            def __init__(self, network, logger):
                pass

            def parse(self, data: bytes) -> bool:
                return fake.parse_ok

            def get_error(self, i: int) -> str:
                return f"node {i}: unsupported operator Foo"

        self.Builder, self.OnnxParser = Builder, OnnxParser


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_build_sets_workspace_precision_and_no_int8(precision: str, monkeypatch, tmp_path: Path) -> None:
    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"onnx")
    assert tensorrt_engine.build_engine(onnx_file, precision, fake.Logger(2)) == b"engine"
    assert ("network", 0) in fake.calls  # TensorRT 10: networks are explicit-batch without a flag
    assert ("pool", "workspace", tensorrt_engine.WORKSPACE_BYTES) in fake.calls and ("clear", "int8") in fake.calls
    assert (("set", "fp16") in fake.calls) == (precision == "fp16")


def test_an_int8_engine_is_built_strongly_typed_from_the_qdq_file_without_precision_flags(monkeypatch, tmp_path) -> None:
    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"onnx")
    assert tensorrt_engine.build_engine(onnx_file, "int8", fake.Logger(2)) == b"engine"
    assert ("network", 1 << 1) in fake.calls  # STRONGLY_TYPED: the Q/DQ scales decide, as TensorRT 10 documents
    assert not [c for c in fake.calls if c[0] in ("set", "clear")]
    fake9 = FakeTensorRT()
    fake9.__version__ = "9.3.0"
    monkeypatch.setitem(sys.modules, "tensorrt", fake9)
    tensorrt_engine.build_engine(onnx_file, "int8", fake9.Logger(2))
    assert ("set", "int8") in fake9.calls  # before 10: the INT8 flag enables the Q/DQ layers


def test_engine_build_reports_the_parser_errors_and_a_failed_build(monkeypatch, tmp_path: Path) -> None:
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"onnx")
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(parse_ok=False))
    with pytest.raises(RuntimeError, match="rejected m.onnx: node 0: unsupported operator Foo; node 1: unsupported"):
        tensorrt_engine.build_engine(onnx_file, "fp32", None)
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(builds=False))
    with pytest.raises(RuntimeError, match="could not build an engine for m.onnx"):
        tensorrt_engine.build_engine(onnx_file, "fp16", None)


def test_nvml_readings_map_to_the_record(monkeypatch) -> None:
    class Process:
        def __init__(self, pid: int, used: int) -> None:
            self.pid, self.usedGpuMemory = pid, used

    class FakeNvml:
        NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

        def nvmlInit(self): pass
        def nvmlDeviceGetHandleByIndex(self, i): return "h"
        def nvmlDeviceGetName(self, h): return b"NVIDIA H100 80GB HBM3"
        def nvmlSystemGetDriverVersion(self): return "580.95"
        def nvmlDeviceGetMemoryInfo(self, h): return type("M", (), {"total": 80 * 2**30})()
        def nvmlSystemGetCudaDriverVersion_v2(self): return 13000
        def nvmlDeviceGetClockInfo(self, h, which): return {1: 1980, 2: 2619}[which]
        def nvmlDeviceGetTemperature(self, h, sensor): return 41
        def nvmlDeviceGetPowerUsage(self, h): return 123_456
        def nvmlDeviceGetComputeRunningProcesses(self, h): return [Process(1, 5), Process(os.getpid(), 512 * 2**20)]

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    info = gpu.device_info()
    assert info["name"] == "NVIDIA H100 80GB HBM3" and info["driver"] == "580.95" and info["memory_gb"] == 80.0
    assert gpu.snapshot() == {"sm_clock_mhz": 1980, "mem_clock_mhz": 2619, "temperature_c": 41, "power_w": 123.456,
                              "process_memory_mb": 512.0}
