"""What a deployment costs besides time: memory above the process's baseline reads a known allocation, repeats,
and a growth of it is a regression; energy comes from a counter or says why not; the artifact's size on disk."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from harness.host import energy, memory
from harness.measure.inputs import Stores
from harness.measure.jobs import plan
from harness.measure.protocol import preset
from harness.measure.runner import run_sweep
from harness.publish import footprint
from harness.track.compare import compare_runs

MODEL = "timm:test_byobnet"
FAST = preset("default", repeats=2, max_repeats=2, min_s=0.05, max_s=0.2, warmup_s=0.01, timeout_s=300.0,
              probe=False, reference="none")

pytestmark = pytest.mark.usefixtures("fake_backends")  # tests/conftest.py: the doubles registered


def _alloc(tmp_path: Path, name: str, held_mb: float) -> dict:
    (tmp_path / "cache").mkdir(exist_ok=True)
    (tmp_path / "cache" / "fake-held-mb").write_text(str(held_mb))  # what the double holds (`tests.fake_backends`)
    jobs = plan([MODEL], ["fake-alloc"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    (rec,) = run_sweep(jobs, FAST, tmp_path / name, stores=Stores(cache_dir=tmp_path / "cache"))
    assert rec["status"] == "ok", rec["message"]
    return rec


def test_memory_above_baseline_reads_a_known_allocation_and_repeats(tmp_path: Path) -> None:
    """64 MB held from open on, 16 MB more for a moment in each inference: what the record reads, not the
    ~0.5 GB of PyTorch and the harness in the same process (the baseline)."""
    first, second = (_alloc(tmp_path, name, 64) for name in ("a", "b"))
    for rec in (first, second):
        mem = rec["memory"]
        assert 64 * 0.9 < mem["held_mb"] < 64 * 1.1, mem
        assert 16 * 0.9 < mem["peak_mb"] - mem["held_mb"] < 16 * 1.2, mem  # the transient, caught without sampling
        assert mem["baseline_mb"] > 3 * mem["held_mb"] and "VmHWM" in mem["method"] and mem["processes"] == 2
    assert abs(first["memory"]["held_mb"] - second["memory"]["held_mb"]) < 0.1 * first["memory"]["held_mb"]
    assert first["energy"].get("missing") or first["energy"]["per_inference_mj"] >= 0  # a counter, or why none
    assert f"holds {first['memory']['held_mb']:.1f} MB" in footprint.line(first)  # what bench show says


def test_a_memory_growth_of_a_quarter_is_a_regression_and_an_aa_pair_is_not(tmp_path: Path) -> None:
    base = _alloc(tmp_path, "base", 64)
    same = _alloc(tmp_path, "same", 64)
    grown = _alloc(tmp_path, "grown", 80)  # a planted 25% more
    aa = compare_runs([base], [same], 0.05)
    assert aa.memory_regressions == []
    flagged = compare_runs([base], [grown], 0.05)
    assert len(flagged.memory_regressions) == 1 and "memory grew beyond 10%: held" in flagged.memory_regressions[0]
    # exit 1 for the memory regression; 3 where its time verdict also met a busy machine (the gate fails closed)
    assert flagged.exit_code == (3 if flagged.cannot_judge else 1) and "1 memory regression(s)" in flagged.headline()
    assert compare_runs([base], [grown], 0.05, memory_threshold=0.5).memory_regressions == []  # a looser gate


def _fake_nvml(monkeypatch, readings: list[int]) -> None:
    module = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: "gpu0",
        nvmlDeviceGetTotalEnergyConsumption=lambda handle: readings.pop(0) if len(readings) > 1 else readings[0])
    monkeypatch.setitem(sys.modules, "pynvml", module)


def test_gpu_energy_per_inference_comes_from_nvmls_counter(monkeypatch) -> None:
    _fake_nvml(monkeypatch, [1_000_000, 1_000_000, 1_050_000])  # mJ: the check, the start, the end
    span = energy.Span("cuda")
    span.start()
    got = span.stop(inferences=100)
    assert got["joules"] == pytest.approx(50.0) and got["per_inference_mj"] == pytest.approx(500.0)
    assert "NVML" in got["source"] and got["approximate"]  # a span this short is a few counter updates
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert "nvidia-ml-py is not installed" in energy.Span("cuda").stop(1)["missing"]


def test_cpu_energy_reads_rapl_with_its_wraparound_or_says_why_not(tmp_path: Path) -> None:
    package = tmp_path / "intel-rapl:0"
    package.mkdir()
    (package / "max_energy_range_uj").write_text("1000000\n")
    (package / "energy_uj").write_text("990000\n")
    counter, why = energy._rapl(tmp_path)
    assert counter is not None and why == ""
    (package / "energy_uj").write_text("20000\n")  # wrapped: 10 000 uJ to the top, then 20 000
    assert counter.read() == pytest.approx(0.03)
    assert energy._rapl(tmp_path / "none")[1].startswith("no RAPL counter")
    if os.geteuid() != 0:  # root reads any file: the permission case only shows as a user
        (package / "energy_uj").chmod(0)
        assert "not readable" in energy._rapl(tmp_path)[1]


def test_the_artifacts_size_counts_what_the_runtime_loads(tmp_path: Path) -> None:
    (tmp_path / "m.xml").write_bytes(b"x" * 100)
    (tmp_path / "m.bin").write_bytes(b"x" * 1000)  # OpenVINO IR: the weights beside the graph
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a").write_bytes(b"x" * 10)
    (tmp_path / "pkg" / "b").write_bytes(b"x" * 5)
    assert memory.artifact_bytes(tmp_path / "m.xml") == 1100 and memory.artifact_bytes(tmp_path / "pkg") == 15
    assert memory.artifact_bytes(None) is None and memory.artifact_bytes(tmp_path / "gone.onnx") is None


@pytest.mark.slow  # a quick sweep of S0 on two runtimes at two precisions (exports, quantization: ~1 min)
def test_every_record_of_a_quick_sweep_says_its_size_memory_and_time_to_first_result(tmp_path: Path) -> None:
    """The issue's command: artifact bytes (int8 at most 40% of fp32's on disk), memory held and peak above the
    baseline with its method, load time and first inference; `bench show` and the CSV carry them."""
    import csv
    import io

    from harness.store.record import load_record
    from tests.helpers import bench

    done = bench("run", "-m", "mobileone_s0", "-b", "onnxruntime", "-b", "openvino", "-p", "fp32", "-p", "int8",
                 "--preset", "quick", "--wait-quiet", "0", "--out", "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    recs = {(r.job.backend, r.job.precision): r for r in map(load_record, (tmp_path / "run" / "records").glob("*.json"))}
    assert len(recs) == 4 and "size and memory" in done.stdout
    for rec in recs.values():
        assert rec["artifact"]["bytes"] > 0 and rec["memory"]["held_mb"] > 0 and rec["memory"]["peak_mb"] >= rec["memory"]["held_mb"]
        assert "VmRSS" in rec["memory"]["method"] and footprint.load_s(rec) > 0
        assert rec["cold_start"]["first_inference_ms"] > 0 and (rec["energy"].get("missing") or rec["energy"].get("source"))
    for backend in ("onnxruntime", "openvino"):
        assert recs[(backend, "int8")]["artifact"]["bytes"] <= 0.4 * recs[(backend, "fp32")]["artifact"]["bytes"]
    shown = bench("show", "run", cwd=tmp_path).stdout
    assert shown.count("footprint: artifact") == 4 and "above a" in shown
    rows = list(csv.DictReader(io.StringIO(bench("leaderboard", "run", "--format", "csv", cwd=tmp_path).stdout)))
    assert len(rows) == 4 and all(float(r["memory_held_mb"]) > 0 and int(r["artifact_bytes"]) > 0 for r in rows)
