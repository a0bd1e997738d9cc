"""The runner: crash isolation, records for every outcome, resume, and the SQLite index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.measure.inputs import Inputs, Stores
from harness.measure.jobs import Job, plan
from harness.measure.protocol import preset
from harness.measure.runner import SweepListener, SweepPlan, run_sweep
from harness.store import runs as store
from harness.store.record import Record, load_record

MODEL = "timm:test_byobnet"
FAST = preset("quick", min_s=0.05, max_s=0.2, warmup_s=0.01, timeout_s=300.0)  # a busy machine is slower, not broken


pytestmark = pytest.mark.usefixtures("fake_backends")  # tests/conftest.py: the doubles registered


class Recorder(SweepListener):
    """What a sweep says, in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def planned(self, plan: SweepPlan) -> None:
        self.events.append(("plan", plan))

    def step_started(self, job: Job, phase: str) -> None:
        self.events.append(("step", job.backend, phase))

    def step_done(self, job: Job, phase: str, seconds: float, p50_ns: float | None, notes: list[str]) -> None:
        self.events.append(("step_done", job.backend, phase, p50_ns, tuple(notes)))

    def job_done(self, job: Job, record: Record, resumed: bool) -> None:
        self.events.append(("job", job.backend, record.status, resumed))


def _sweep(tmp_path: Path, backends: list[str], **kw) -> dict[str, dict]:
    jobs = plan([MODEL], backends, ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    recs = run_sweep(jobs, kw.pop("cfg", FAST), tmp_path / "run", stores=Stores(cache_dir=tmp_path / "cache", index_db=tmp_path / "index.sqlite"), **kw)
    return {r["job"]["backend"]: r for r in recs}


def test_every_failure_is_one_record_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # the hang in a sweep of its own with a short timeout; the others with a timeout no busy machine reaches
    hung = _sweep(tmp_path / "hang", ["fake-hang"], cfg=preset("quick", timeout_s=3.0))["fake-hang"]
    assert hung["status"] == "error" and "timed out after 3 s" in hung["message"]
    cfg = preset("quick", min_s=0.05, max_s=0.2, warmup_s=0.01, timeout_s=300.0)
    recs = _sweep(tmp_path, ["fake-segfault", "fake-raise", "fake-missing", "fake-wrong", "fake-sleep"], cfg=cfg)
    assert recs["fake-segfault"]["status"] == "error" and "SIGSEGV" in recs["fake-segfault"]["message"]
    assert recs["fake-raise"]["status"] == "error" and "Unsupported op Foo" in recs["fake-raise"]["message"]
    assert "rejected the graph" in recs["fake-raise"]["backend_info"]["traceback"]
    assert recs["fake-missing"]["status"] == "skipped" and "pip install fakert" in recs["fake-missing"]["message"]
    wrong = recs["fake-wrong"]
    assert wrong["status"] == "ok" and wrong["parity"]["passed"] is False and "parity failed" in wrong["message"]
    good = recs["fake-sleep"]
    assert good["status"] == "ok" and good["parity"]["passed"] is True
    assert len(good["processes"]) == 1 and len(good["processes"][0]["samples_ns"]) == good["stats"]["n"]
    assert good["stats"]["min"] >= 1e6  # the samples contain the 1 ms sleep (no speed is asserted)
    files = sorted(p.name for p in (tmp_path / "run" / "records").iterdir())
    assert len(files) == 5 and not [f for f in files if f.endswith(".tmp")]
    for f in (tmp_path / "run" / "records").iterdir():
        load_record(f)  # every record validates


def test_repeats_are_separate_processes_and_pooled(tmp_path: Path) -> None:
    cfg = preset("default", repeats=3, max_repeats=3, min_s=0.05, max_s=0.2, warmup_s=0.01, warmup_max_s=0.5,
                 min_iters=10)
    rec = _sweep(tmp_path, ["fake-sleep"], cfg=cfg)["fake-sleep"]
    assert rec["stats"]["processes"] == 3 and len(rec["processes"]) == 3
    assert len(rec["stats"]["process_p50s"]) == 3 and rec["stats"]["windows"] == sum(len(p["windows"]) for p in rec["processes"])
    assert rec["stats"]["p50"] <= rec["stats"]["p50_all"] * 1.03 and "quiet-window p50" in rec["stats"]["statistic"]
    assert rec["protocol"]["repeats"] == 3 and rec["job"]["threads"] == 1
    assert rec["host"]["cpu"]["logical_cores"] >= 1 and "torch" in rec["host"]["libraries"]
    assert all(p["machine"]["loadavg_start"] is not None and p["probe"]["gemm_ns"] > 0 for p in rec["processes"])
    assert rec["peak_rss_mb"] > 10
    # efficiency: the counted work per p50, and its share of the machine's GEMM peak measured for the run
    macs, peak = rec["model_info"]["macs"], rec["host"]["peak_gflops"]["fp32/1t"]
    assert macs > 0 and peak > 1
    assert rec["stats"]["gflops"] == pytest.approx(2 * macs / rec["stats"]["p50"], rel=1e-3)
    assert rec["stats"]["peak_share"] == pytest.approx(rec["stats"]["gflops"] / peak, rel=1e-2)
    # every process took turns with the pinned reference: the relative figure divides the headline by its p50
    rel = rec["relative"]
    assert rel["reference"]["name"] == "mobileone_s0-ort" and rel["reference"]["torch"] == rec["host"]["libraries"]["torch"].split("+")[0]
    assert rel["reference"]["onnxruntime"] == rec["host"]["libraries"]["onnxruntime"]
    assert all(len(p["reference"]["window_p50_ns"]) == len(p["windows"]) >= 3 for p in rec["processes"])
    assert rel["pairs"] == rec["stats"]["windows"] and rel["ci_low"] <= rel["value"] <= rel["ci_high"]
    assert rel["value"] == pytest.approx(rec["stats"]["p50"] / (rel["reference_p50_ms"] * 1e6), rel=1e-9)


def test_without_a_reference_a_sweep_has_no_relative_figure(tmp_path: Path, monkeypatch) -> None:
    from harness.measure.reference import for_job

    cfg = preset("default", repeats=1, max_repeats=1, min_s=0.05, max_s=0.1, warmup_s=0.01, warmup_max_s=0.2,
                 reference="none")
    rec = _sweep(tmp_path, ["fake-sleep"], cfg=cfg)["fake-sleep"]
    assert rec["status"] == "ok" and rec["relative"] is None and "reference" not in rec["processes"][0]
    assert for_job(Job(MODEL, "fake-sleep", device="cuda")) is None  # a GPU's time does not move with this CPU
    assert for_job(Job(MODEL, "fake-sleep"), "attention") == "attention"
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # no ONNX Runtime: the PyTorch reference
    assert for_job(Job(MODEL, "fake-sleep")) == "conv-dense"


def test_resume_skips_finished_jobs_and_index_rebuilds(tmp_path: Path) -> None:
    first = _sweep(tmp_path, ["fake-sleep", "fake-raise"])
    heard = Recorder()
    second = _sweep(tmp_path, ["fake-sleep", "fake-raise"], listener=heard)
    assert second["fake-sleep"]["created"] == first["fake-sleep"]["created"]  # not measured again
    plan = heard.events[0][1]
    assert heard.events[0][0] == "plan" and plan.jobs == 2 and plan.resumed == 1 and plan.processes == "1"
    assert plan.prepare_steps == 0 and plan.measure_steps == 1  # one process a job: prepared and timed at once
    assert ("job", "fake-sleep", "ok", True) in heard.events  # said as resumed, not run
    assert ("step", "fake-raise", "prepare+measure") in heard.events  # errors are retried
    assert ("job", "fake-raise", "error", False) in heard.events
    assert not any(e[0] == "step" and e[1] == "fake-sleep" for e in heard.events)
    rows = store.query(tmp_path / "index.sqlite", backend="fake-sleep")
    assert len(rows) == 1 and rows[0]["p50_ns"] == second["fake-sleep"]["stats"]["p50"]
    (tmp_path / "index.sqlite").unlink()
    assert store.rebuild(tmp_path / "index.sqlite", tmp_path) == 2
    assert {r["backend"] for r in store.query(tmp_path / "index.sqlite")} == {"fake-sleep", "fake-raise"}


def test_a_resumed_run_leaves_a_finished_record_untouched(tmp_path: Path, monkeypatch) -> None:
    """#49: a resume rewrote a finished record (its peak 77.16 -> 101.24); "already done" means the bytes stay."""
    from harness.measure import runner

    _sweep(tmp_path, ["fake-sleep"])
    path = next((tmp_path / "run" / "records").glob("*.json"))
    before = path.read_bytes()
    assert json.loads(before)["stats"].get("gflops")  # it has a share that a new peak would change
    monkeypatch.setattr(runner, "peaks", lambda jobs, cache_dir: ({"fp32/1t": 1e6}, {"fp32/1t": "planted"}))
    _sweep(tmp_path, ["fake-sleep", "fake-raise"])
    assert path.read_bytes() == before


def test_run_metadata(tmp_path: Path) -> None:
    _sweep(tmp_path, ["fake-sleep"])
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["run_id"] == "run" and meta["protocol"]["preset"] == "quick" and len(meta["jobs"]) == 1


@pytest.mark.slow  # an end-to-end sweep of several rounds (~20 s)
def test_rounds_shuffle_jobs_prepare_first_and_add_processes_where_they_disagree(tmp_path: Path, monkeypatch) -> None:
    from harness.measure import launch, runner

    calls: list[tuple[str, str]] = []
    real = launch.run_in_process

    def spy(ctx, payload, timeout_s, target=launch.MEASURE, progress=None):
        calls.append((payload.job.batch, target.rsplit(":", 1)[1]))
        return real(ctx, payload, timeout_s, target, progress)

    monkeypatch.setattr(launch, "run_in_process", spy)
    # the batch-9 job is made to look uncertain: it gets extra rounds until max_repeats
    monkeypatch.setattr(runner, "_rel_ci", lambda st, cfg: 1.0 if st.job.batch == 9 else 0.0)
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1, 2, 9], threads=1, input_sizes={MODEL: 64})
    cfg = preset("default", repeats=2, max_repeats=4, min_s=0.05, max_s=0.1, warmup_s=0.01, warmup_max_s=0.2,
                 min_iters=10, probe=False)
    recs = {r["job"]["batch"]: r for r in run_sweep(jobs, cfg, tmp_path / "run", stores=Stores(cache_dir=tmp_path / "cache"))}
    assert [c[1] for c in calls[:3]] == ["prepare_process"] * 3  # round 0 prepares every job first
    rounds = [c[0] for c in calls[3:9]]
    assert sorted(rounds[:3]) == [1, 2, 9] == sorted(rounds[3:])  # each round: one process of every job
    assert rounds[:3] != [1, 2, 9] or rounds[3:] != [1, 2, 9]  # shuffled (seeded by the run id)
    assert [c[0] for c in calls[9:]] == [9, 9]  # batch 9 (3 ms sleeps) disagreed: extra rounds up to max_repeats
    assert len(recs[9]["processes"]) == 4 and len(recs[1]["processes"]) == 2
    assert not (tmp_path / "run" / "partial").exists() or not list((tmp_path / "run" / "partial").iterdir())


@pytest.mark.slow  # an end-to-end sweep of several rounds (~20 s)
def test_a_killed_sweep_resumes_mid_round_from_its_partial_state(tmp_path: Path, monkeypatch) -> None:
    from harness.measure import launch

    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1, 2], threads=1, input_sizes={MODEL: 64})
    cfg = preset("default", repeats=2, max_repeats=2, min_s=0.05, max_s=0.1, warmup_s=0.01, warmup_max_s=0.2,
                 min_iters=10, probe=False)
    real, done = launch.run_in_process, []

    def dies_after_three(ctx, payload, timeout_s, target=launch.MEASURE, progress=None):
        if target == launch.MEASURE:
            if len(done) == 3:
                raise KeyboardInterrupt
            done.append(payload.job.batch)
        return real(ctx, payload, timeout_s, target, progress)

    monkeypatch.setattr(launch, "run_in_process", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(jobs, cfg, tmp_path / "run", stores=Stores(cache_dir=tmp_path / "cache"))
    assert len(list((tmp_path / "run" / "partial").iterdir())) == 2 and not (tmp_path / "run" / "records").exists()
    monkeypatch.setattr(launch, "run_in_process", lambda ctx, payload, timeout_s, target=launch.MEASURE, progress=None: (
        done.append(payload.job.batch) if target == launch.MEASURE else None, real(ctx, payload, timeout_s, target, progress))[1])
    recs = run_sweep(jobs, cfg, tmp_path / "run", stores=Stores(cache_dir=tmp_path / "cache"))
    assert len(done) == 4 and all(len(r["processes"]) == 2 for r in recs)  # only the missing process ran
    changed = preset("quick", min_s=0.05, max_s=0.1, warmup_s=0.01, probe=False)
    again = run_sweep(jobs[:1], changed, tmp_path / "run", stores=Stores(cache_dir=tmp_path / "cache"))
    assert len(again[0]["processes"]) == 1 and again[0]["protocol"]["preset"] == "quick"  # another protocol: measured again


def test_resume_reuses_a_record_only_under_the_same_weights_and_libraries(tmp_path: Path, monkeypatch) -> None:
    from harness.host import environment
    from harness.measure import runner

    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    said: list[str] = []

    def sweep(weights: str | None = None) -> dict:
        return run_sweep(jobs, FAST, tmp_path / "run", inputs=Inputs(weights=weights), stores=Stores(cache_dir=tmp_path / "cache"), say=said.append)[0]

    import torch

    import model_zoo

    ckpt = tmp_path / "w.pth"
    state = model_zoo.create(MODEL).state_dict()
    torch.save(state, ckpt)
    first = sweep(str(ckpt))
    assert first["status"] == "ok", first["message"]
    assert first["weights"]["path"] == str(ckpt) and len(first["weights"]["sha256"]) == 64
    assert sweep(str(ckpt))["created"] == first["created"] and not said  # same everything: reused, silently
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, ckpt)  # same path, other content
    second = sweep(str(ckpt))
    assert second["weights"]["sha256"] != first["weights"]["sha256"] and "(weights)" in said[-1]
    real = environment.capture
    monkeypatch.setattr(runner.environment, "capture",
                        lambda: {**real(), "libraries": {**real()["libraries"], "onnxruntime": "0.0.1"}})
    third = sweep(str(ckpt))
    assert third["weights"] == second["weights"] and "measuring 1 job(s) again" in said[-1] and "libraries" in said[-1]
