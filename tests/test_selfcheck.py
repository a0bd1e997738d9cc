"""`bench selfcheck` runs its three checks end to end (the ratios are reported, not asserted: speed)."""

from __future__ import annotations

from pathlib import Path

from harness.selfcheck import run_selfcheck


def test_selfcheck_produces_both_comparisons(tmp_path: Path) -> None:
    result = run_selfcheck("timm:test_byobnet", threads=1, rounds=1, seconds=0.5, cache_dir=tmp_path)
    assert result.empty_step_ns > 0 and result.loop_ns_per_iter >= result.empty_step_ns
    names = [c.name for c in result.comparisons]
    assert names == ["onnxruntime vs hand-written session.run loop", "openvino vs benchmark_app"]
    for comp in result.comparisons:
        assert not comp.skipped and len(comp.harness_ms) == 1 and len(comp.reference_ms) == 1
        assert comp.ratio is not None and comp.ratio > 0
