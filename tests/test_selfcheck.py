"""`bench selfcheck` runs its three checks end to end (the ratios are reported, not asserted: speed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.track.selfcheck import run_selfcheck


@pytest.mark.slow
def test_selfcheck_pairs_rounds_against_both_references(tmp_path: Path) -> None:
    result = run_selfcheck("timm:test_byobnet", threads=1, rounds=3, seconds=0.05, cache_dir=tmp_path)
    assert result.empty_step_ns > 0 and result.loop_ns_per_iter >= result.empty_step_ns
    names = [c.name for c in result.comparisons]
    assert names == ["onnxruntime vs hand-written session.run loop", "openvino vs benchmark_app"]
    for comp in result.comparisons:
        assert not comp.skipped and len(comp.harness_ms) == 3 == len(comp.reference_ms)
        lo, hi = comp.ci
        assert 0 < lo <= comp.ratio <= hi


@pytest.mark.parametrize("kw, match", [({"rounds": 0}, "--rounds"), ({"seconds": -1}, "--seconds")])
def test_selfcheck_refuses_nonsense(kw: dict, match: str) -> None:
    with pytest.raises(HarnessError, match=match):
        run_selfcheck("timm:test_byobnet", **kw)
