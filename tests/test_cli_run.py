"""End to end: `bench run --quick` per CPU backend as a user runs it, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import bench

MODEL = "timm:test_byobnet"


CPU_BACKENDS = ["torch", "torch-compile", "onnxruntime", "openvino"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, object, object]:
    """One `bench run --quick` over every CPU backend, as a user runs it, and `bench show` of it: one sweep
    instead of four (the fork server, the model and the ONNX export are shared, as in a user's sweep)."""
    here = tmp_path_factory.mktemp("quick")
    args = [a for b in CPU_BACKENDS for a in ("--backend", b)]
    cold = {"ONEBENCH_CACHE": str(here / "cache")}  # its own cache: the test asserts what a cold run builds
    done = bench("run", "--preset", "quick", "--model", MODEL, *args, "--threads", "1", "--out", "run", "--format", "md", cwd=here,
                 env=cold)
    assert done.returncode == 0, done.stderr[-2000:]
    return here, done, bench("show", "run", cwd=here, env=cold)


@pytest.mark.slow
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_quick_run_writes_a_valid_record(backend: str, quick_run) -> None:
    here, done, shown = quick_run
    files = list((here / "run" / "records").glob(f"*.{backend}.*.json"))
    assert len(files) == 1, files
    rec = json.loads(files[0].read_text())
    assert rec["status"] == "ok", rec["message"]
    assert rec["job"]["backend"] == backend and rec["job"]["boundary"] == "host-sync" and rec["job"]["input_size"] == 160
    assert rec["parity"]["passed"] and rec["parity"]["cosine"] > 0.9999
    assert rec["stats"]["n"] >= 10 and rec["stats"]["p50"] > 0
    assert f"| {MODEL} |" in done.stdout and backend in done.stdout
    # the sweep talks on stderr: its plan, each job's line with its figure, the summary
    assert "plan: 4 jobs" in done.stderr and f"{rec['stats']['p50'] / 1e6:.3f} ms" in done.stderr
    assert "done in " in done.stderr and "4 measured" in done.stderr
    if backend == "torch-compile":
        assert rec["cold_start"]["compile_s"] > 0
        assert f"{MODEL} · torch-compile: built compile" in done.stderr
    if backend in ("onnxruntime", "openvino"):
        assert rec["artifact"]["format"] == "onnx" and len(rec["artifact"]["sha256"]) == 64
    if backend == "openvino":
        assert "f32" in rec["backend_info"]["openvino"]["INFERENCE_PRECISION_HINT"]
    assert shown.returncode == 0 and shown.stdout.count("parity vs PyTorch fp32: PASS") == len(CPU_BACKENDS)


def test_unsupported_precision_and_coreml_are_skipped_records(tmp_path: Path) -> None:
    done = bench("run", "--preset", "quick", "--model", MODEL, "--backend", "onnxruntime", "--backend", "coreml",
                 "--precision", "bf16", "--threads", "1", "--out", "run", "--progress", "json", cwd=tmp_path)
    assert done.returncode == 3 and "no job was measured" in done.stderr, done.stderr[-2000:]  # all skipped
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith('{"event"')]
    assert events[0]["event"] == "plan" and events[0]["jobs"] == 2
    assert sorted(e["status"] for e in events if e["event"] == "job") == ["skipped", "skipped"]
    assert all(e["message"] for e in events if e["event"] == "job")
    recs = {json.loads(f.read_text())["job"]["backend"]: json.loads(f.read_text())
            for f in (tmp_path / "run" / "records").glob("*.json")}
    assert recs["onnxruntime"]["status"] == "skipped" and "does not run bf16" in recs["onnxruntime"]["message"]
    assert recs["coreml"]["status"] == "skipped" and "coreml does not run bf16" in recs["coreml"]["message"]
    assert "skipped: " in done.stderr and "Traceback" not in done.stderr


def test_bad_input_through_the_installed_entry_point_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """One end-to-end smoke in a fresh interpreter; the cases themselves run in-process in test_bad_input.py."""
    done = bench("run", "--model", "mobileone_s9", cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unknown model 'mobileone_s9'; did you mean mobileone_s0" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "results").exists()  # nothing half-written
