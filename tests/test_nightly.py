"""`bench nightly`'s function and `bench baseline set`: no baseline, a clean night, a regressed night."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import registry
from harness.host import machine
from harness.measure.jobs import plan
from harness.measure.protocol import preset
from harness.store import runs as store
from harness.track.nightly import run_nightly
from tests.fake_backends import ALL

# No machine probes: their drift between the two nightly runs (noise on a busy CI host) would make the
# planted regression "noisy" by design; that guard has its own test in test_compare.py.
CFG = preset("default", repeats=3, max_repeats=3, min_s=0.1, max_s=0.3, warmup_s=0.02, warmup_max_s=0.3, min_iters=20,
             probe=False)
MODEL = "timm:test_byobnet"


@pytest.fixture(autouse=True)
def restore_registry():
    yield
    registry.unregister("fake-sleep")


@pytest.mark.slow
def test_nightly_gates_on_the_committed_baseline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ONEBENCH_CACHE", str(tmp_path / "cache"))
    # Nor the load-average guard: earlier tests (conversions, a browser) leave the 1-minute load above
    # the limit on a 2-core runner, which would make either side "unstable" and the verdict "noisy".
    monkeypatch.setattr(machine, "disturbances", lambda processes, cores: [])
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    registry.register("fake-sleep", ALL["fake-sleep"])
    first = run_nightly(jobs, CFG, tmp_path)
    assert first.exit_code == 0 and first.comparison is None and any("no baseline" in n for n in first.notes)
    assert (tmp_path / "leaderboard.md").read_text().startswith("| model |")
    assert (tmp_path / "site" / "index.html").exists()
    store.set_baseline(first.run_dir, tmp_path / "baseline")
    assert len(store.load_run(tmp_path / "baseline")) == 1

    registry.unregister("fake-sleep")
    registry.register("fake-sleep", ALL["fake-sleep-slow"])  # same key, 3x slower implementation
    regressed = run_nightly(jobs, CFG, tmp_path)
    assert regressed.exit_code == 1, regressed.comparison.rows
    assert "REGRESSION" in (regressed.run_dir / "compare.md").read_text()
    assert any("history plot" in n for n in regressed.notes)


@pytest.mark.slow
def test_nightly_in_lockstep_against_a_baseline_environment(tmp_path: Path, monkeypatch) -> None:
    """Shared runners: the baseline interpreter and the current one measured together, the same night."""
    import sys

    monkeypatch.setenv("ONEBENCH_CACHE", str(tmp_path / "cache"))
    registry.register("fake-sleep", ALL["fake-sleep"])
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    night = run_nightly(jobs, CFG, tmp_path, baseline_python=sys.executable)
    assert night.comparison is not None and "lockstep" in night.comparison.method
    assert night.exit_code == 0, night.comparison.rows  # the same environment on both sides: A/A
    assert (night.run_dir / "lockstep.json").exists() and (night.run_dir / "compare.md").exists()
    assert store.query(tmp_path / "index.sqlite", backend="fake-sleep")  # the current side is the night's run
    assert (tmp_path / "leaderboard.md").exists() and any("lockstep against" in n for n in night.notes)


def test_baseline_environment_from_a_constraints_file(tmp_path: Path) -> None:
    from harness.errors import HarnessError
    from harness.host.baseline_env import READY, ensure_env

    pins = tmp_path / "pins.txt"
    pins.write_text("# nothing pinned: the environment is built and reused\n")
    python = ensure_env(pins, tmp_path)
    assert python.exists() and (python.parents[1] / READY).exists()
    assert ensure_env(pins, tmp_path) == python  # cached by the file's hash
    with pytest.raises(HarnessError, match="cannot read the baseline constraints"):
        ensure_env(tmp_path / "absent.txt", tmp_path)
