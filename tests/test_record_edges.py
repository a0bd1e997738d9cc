"""Records at the edges of their counts: whatever a process timed (1 sample upward, 1 window, 1 process), the
record the runner makes validates; a record the runner cannot store costs its job, never the sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.measure.inputs import Stores
from harness.measure.jobs import Job, plan
from harness.measure.protocol import MIN_PAIRS, Measurement, preset
from harness.measure.recording import BUG_PREFIX, RunContext, judged, make_record
from harness.measure.runner import run_sweep
from harness.measure.stats import MIN_CI_SAMPLES
from harness.measure.worker import timed_fields
from harness.store import records
from harness.store.record import load_record

MODEL = "timm:test_byobnet"
DEFAULT = preset("default")


pytestmark = pytest.mark.usefixtures("fake_backends")  # tests/conftest.py: the doubles registered


def _process(samples: list[int]) -> dict:
    """A process record as the worker builds it from what `measure` returned."""
    m = Measurement(samples, warmup_ns=samples[:3], warmup_converged=True, stop_reason="max_s", wall_s=0.4)
    return {**timed_fields(m, DEFAULT), "machine": {}, "probe": {}, "peak_rss_mb": 50.0}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(counts=st.lists(st.integers(1, 40), min_size=1, max_size=4),
       level_ms=st.floats(0.05, 400.0), jitter=st.floats(0.0, 0.5), seed=st.integers(0, 2**16))
def test_every_sample_count_makes_a_valid_record(tmp_path: Path, counts: list[int], level_ms: float, jitter: float,
                                                 seed: int) -> None:
    rng = np.random.default_rng(seed)
    procs = [_process([int(level_ms * 1e6 * (1 + jitter * rng.random())) + 1 for _ in range(n)]) for n in counts]
    run = RunContext("r", tmp_path, {"cpu": {"logical_cores": 2}}, DEFAULT, tmp_path / "cache")
    job = Job(MODEL, "fake-sleep", input_size=64)
    rec = judged(make_record(run, job, "ok", "", procs, {"model_info": {"params": 1, "macs": 10}}), DEFAULT)
    records.validate(rec)
    for p, n in zip(rec["processes"], counts):
        assert (p["summary"]["ci_low"] is None) == (n < MIN_CI_SAMPLES)  # says there is no CI, in a way the schema allows
    if rec["stats"]["ci_low"] is None:
        assert "too few iterations for a confidence interval of p50" in rec["unstable_reasons"]


@pytest.mark.parametrize("bounds", [
    pytest.param({"min_iters": 1, "min_s": 0.01, "max_s": 0.01}, marks=pytest.mark.slow),  # one sample a process
    {"min_iters": 5},  # the old default: stopped at 5, before a CI exists
    pytest.param({}, marks=pytest.mark.slow)])  # today's default protocol
def test_a_job_slower_than_the_timing_window_gets_valid_records(tmp_path: Path, bounds: dict) -> None:
    cfg = preset("default", repeats=2, max_repeats=2, warmup_s=0.0, warmup_iters=1, warmup_max_s=0.05,
                 probe=False, timeout_s=60.0, **bounds)
    jobs = plan([MODEL], ["fake-slow-iteration"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    (slow,) = run_sweep(jobs, cfg, tmp_path / "run", stores=Stores(cache_dir=tmp_path / "cache"))
    assert slow["status"] == "ok", slow["message"]
    for p in slow["processes"]:  # each process timed only the minimum: the protocol's iterations, the reference's pairs
        sizes = [w["n"] for w in p["windows"]]
        assert len(sizes) == len(p["reference"]["window_p50_ns"]) >= MIN_PAIRS and sum(sizes) >= cfg.min_iters
        assert len(sizes) == MIN_PAIRS or sum(sizes[:-1]) < cfg.min_iters
    assert slow["relative"]["pairs"] == sum(len(p["windows"]) for p in slow["processes"])
    for f in (tmp_path / "run" / "records").iterdir():
        load_record(f)
    if cfg.min_iters >= MIN_CI_SAMPLES:
        assert all(p["summary"]["ci_low"] is not None for p in slow["processes"])


def test_an_invalid_record_costs_its_job_not_the_sweep(tmp_path: Path) -> None:
    cfg = preset("default", repeats=2, max_repeats=2, min_s=0.05, max_s=0.1, warmup_s=0.01, warmup_max_s=0.2,
                 probe=False, timeout_s=60.0)
    jobs = plan([MODEL], ["fake-nan-info", "fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    recs = {r["job"]["backend"]: r for r in run_sweep(jobs, cfg, tmp_path / "run", stores=Stores(cache_dir=tmp_path / "cache"))}
    bad = recs["fake-nan-info"]
    assert bad["status"] == "error" and bad["message"].startswith(BUG_PREFIX) and "not a finite number" in bad["message"]
    assert recs["fake-sleep"]["status"] == "ok"
    assert len(list((tmp_path / "run" / "records").iterdir())) == 2
    for f in (tmp_path / "run" / "records").iterdir():
        load_record(f)


def test_bench_run_exits_4_on_its_own_invalid_record_and_keeps_the_others(tmp_path: Path, monkeypatch) -> None:
    from harness.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ONEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ONEBENCH_PLUGINS", "tests.fake_backends_plugin")
    result = CliRunner().invoke(app, ["run", "--preset", "quick", "-m", MODEL, "-b", "fake-nan-info", "-b", "fake-sleep",
                                      "--out", "run", "--wait-quiet", "0"])
    assert result.exit_code == 4, result.output
    assert "lost to a bug in onebench" in result.stderr and "Traceback" not in result.output
    assert len(list((tmp_path / "run" / "records").iterdir())) == 2


def test_nan_and_infinity_are_refused_when_read(tmp_path: Path) -> None:
    from tests.helpers import RECORD

    for bad in ("NaN", "Infinity", "-Infinity"):
        path = tmp_path / f"{bad}.json"
        path.write_text(records.json.dumps(RECORD).replace('"p50": 2,', f'"p50": {bad},', 1))
        with pytest.raises(records.HarnessError, match="not a finite number"):
            load_record(path)


@pytest.mark.parametrize("samples", [1, 2, 5, 6])
def test_an_ingested_run_with_few_samples_is_stored_valid(tmp_path: Path, samples: int) -> None:
    """The device path at the edges: one process of 1..6 samples (a custom protocol's min_iters) ingests into
    records that read back valid, their CI null below 6 samples and the job then marked unstable."""
    import json

    from harness.device import ingest

    job = Job(model="mobileone_s0", backend="coreml", device="all", precision="fp16", boundary="on-device")
    data = {"format": ingest.FORMAT, "version": 1, "device": {"model": "iPhone13,2", "os": "iOS 18"},
            "runner": {"name": "x", "version": "1", "clock": "mach"},
            "protocol": {"min_iters": 1, "min_s": 0.3, "max_s": 0.4, "target_rel_ci": 0.01, "repeats": 1},
            "results": [{"job_id": job.id, "job": job.as_dict(), "status": "ok",
                         "processes": [{"samples_ns": [900_000 + 1000 * i for i in range(samples)]}]}]}
    (tmp_path / "r.json").write_text(json.dumps(data))
    folder = ingest.ingest(tmp_path / "r.json", tmp_path / "results")
    (rec,) = [load_record(p) for p in (folder / "records").glob("*.json")]
    assert (rec.processes[0].summary["ci_low"] is None) == (samples < MIN_CI_SAMPLES)
    assert rec.ok and rec.stats.p50 > 0
