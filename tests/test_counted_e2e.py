"""Counting under real valgrind (slow lane, #50): every CPU backend counted once in fp32 and int8 on a tiny
MobileOne, and one job counted by two processes agreeing within the documented repeatability. Skipped, with
the reason, where valgrind or pytest-codspeed's hooks are missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.measure import counted
from harness.track.compare import COUNT_FLOOR
from tests.helpers import bench
from tests.tiny_mobileone import NAME as TINY

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(counted.valgrind_version() is None, reason=f"valgrind is not installed ({counted.INSTALL})"),
    pytest.mark.skipif(counted.hooks_library() is None, reason=f"no instrument hooks ({counted.HOOKS_INSTALL})"),
]
PLUGIN = {"ONEBENCH_PLUGINS": "tests.tiny_mobileone"}
BACKENDS = ("torch", "torch-compile", "onnxruntime", "openvino")


def _counted(folder: Path) -> dict[tuple[str, str], dict]:
    recs = [json.loads(p.read_text()) for p in (folder / "records").glob("*.json")]
    return {(r["job"]["backend"], r["job"]["precision"]): r for r in recs}


@pytest.mark.timeout(2400)
def test_every_cpu_backend_is_counted_in_fp32_and_int8_or_says_why(tmp_path: Path) -> None:
    args = [a for b in BACKENDS for a in ("-b", b)]
    done = bench("run", "-m", TINY, *args, "-p", "fp32", "-p", "int8", "--preset", "quick", "--counted", "--reference",
                 "none", "--out", "run", cwd=tmp_path, timeout=2400, env=PLUGIN)
    assert done.returncode == 0, done.stderr[-3000:]
    recs = _counted(tmp_path / "run")
    measured = {key: rec for key, rec in recs.items() if rec["status"] == "ok"}
    assert {b for b, _ in measured} == set(BACKENDS), {k: r["message"] for k, r in recs.items()}
    for key, rec in measured.items():
        block = rec["counted"]
        if "missing" in block:  # a runtime that cannot be counted says why, with the windows it saw
            assert block["missing"], key
            continue
        assert block["instructions"] > 100_000 and block["wander"] <= counted.WANDER_LIMIT, (key, block)
        assert block["cycles_estimated"] >= block["instructions"] and block["pins"]["aslr"].startswith("off")
    assert "instructions" in measured[("onnxruntime", "fp32")]["counted"]  # measured here: two windows 2 instr apart
    shown = bench("show", "run", cwd=tmp_path, env=PLUGIN)
    assert "M instructions an inference" in shown.stdout


@pytest.mark.timeout(1200)
def test_a_count_repeats_in_a_second_process_and_compares_as_the_same(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        done = bench("run", "-m", TINY, "-b", "onnxruntime", "--preset", "quick", "--counted", "--reference", "none",
                     "--out", name, cwd=tmp_path, timeout=1200, env=PLUGIN)
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(_counted(tmp_path / name)[("onnxruntime", "fp32")]["counted"]["instructions"])
    assert abs(runs[1] / runs[0] - 1) <= COUNT_FLOOR, runs
    compared = bench("compare", "a", "b", "--series", "counted", cwd=tmp_path, env=PLUGIN)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "M instr" in compared.stdout
