"""`bench selfcheck` runs its three checks end to end (the ratios are reported, not asserted: speed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.track.selfcheck import run_selfcheck


@pytest.mark.slow
def test_selfcheck_pairs_rounds_against_every_reference_at_two_threads(tmp_path: Path) -> None:
    progress: list[str] = []
    result = run_selfcheck("timm:test_byobnet", threads=2, rounds=3, seconds=0.05, cache_dir=tmp_path,
                           progress=progress.append)
    assert result.threads == 2 and result.empty_step_ns > 0 and result.loop_ns_per_iter >= result.empty_step_ns
    names = [c.name for c in result.comparisons]
    assert names == ["onnxruntime vs hand-written session.run loop",
                     "bench run processes vs hand-written session.run loop processes",
                     "openvino vs benchmark_app"]
    for comp in result.comparisons:
        assert not comp.skipped and len(comp.harness_ms) == 3 == len(comp.reference_ms)
        lo, hi = comp.ci
        assert 0 < lo <= comp.ratio <= hi
        assert f"{comp.name}: warming up" in progress and f"{comp.name}: round 3/3" in progress


@pytest.mark.parametrize("kw, match", [({"rounds": 0}, "--rounds"), ({"seconds": -1}, "--seconds")])
def test_selfcheck_refuses_nonsense(kw: dict, match: str) -> None:
    with pytest.raises(HarnessError, match=match):
        run_selfcheck("timm:test_byobnet", **kw)


def test_benchmark_app_medians_in_ms_or_us() -> None:
    from harness.track.reference_tools import median_ms

    assert median_ms("[ INFO ] Latency:\n[ INFO ]    Median:        844.23 us\n") == pytest.approx(0.84423)
    assert median_ms("[ INFO ]    Median:        3.50 ms\n") == 3.5
    assert median_ms("[ INFO ] Throughput:   1099.03 FPS") is None
