"""`bench compare`: known answers on synthetic samples, bad input, and the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import HarnessError
from harness.store.record import Record
from harness.store.records import write_record
from harness.track.compare import bootstrap_ratio, compare_records, compare_runs, gate_verdict
from tests.synthetic import process_samples, record


def _compare_records(base: dict, cand: dict, threshold: float):
    return compare_records(Record.of(base), Record.of(cand), threshold)


def _bootstrap_ratio(base: dict, cand: dict, seed: int = 0):
    return bootstrap_ratio(Record.of(base), Record.of(cand), seed)


def test_same_distribution_is_not_flagged_over_many_trials() -> None:
    rng = np.random.default_rng(0)
    flagged = sum(_compare_records(record(process_samples(rng, 3e6)), record(process_samples(rng, 3e6)), 0.05).regression
                  for _ in range(100))
    assert flagged == 0


@pytest.mark.parametrize("shift, min_rate", [(0.10, 0.95), (0.20, 1.0)])
def test_a_real_slowdown_is_flagged(shift: float, min_rate: float) -> None:
    rng = np.random.default_rng(1)
    results = [_compare_records(record(process_samples(rng, 3e6)), record(process_samples(rng, 3e6 * (1 + shift))), 0.05)
               for _ in range(60)]
    assert sum(r.regression for r in results) / 60 >= min_rate
    assert all(r.ratio > 1 for r in results)


def test_faster_and_same_verdicts() -> None:
    rng = np.random.default_rng(2)
    assert _compare_records(record(process_samples(rng, 3e6)), record(process_samples(rng, 2.5e6)), 0.05).verdict == "faster"
    assert _compare_records(record(process_samples(rng, 3e6, process_sd=0.002)),
                           record(process_samples(rng, 3e6, process_sd=0.002)), 0.05).verdict == "same"


def test_an_unstable_mark_does_not_silence_a_clear_regression() -> None:
    rng = np.random.default_rng(3)
    result = _compare_records(record(process_samples(rng, 3e6)), record(process_samples(rng, 3.6e6), unstable=True), 0.05)
    assert result.regression and result.unstable and result.ci_low > 1.1


def test_a_ci_that_straddles_the_threshold_is_noisy_never_same() -> None:
    rng = np.random.default_rng(9)
    wide = _compare_records(record(process_samples(rng, 3e6, process_sd=0.06)),
                           record(process_samples(rng, 3.09e6, process_sd=0.06)), 0.05)
    assert wide.verdict == "noisy" and not wide.regression and "straddles" in wide.why
    assert gate_verdict(1.03, 1.07, 0.05, 0.01) == ("slower", "")  # a 5% slowdown is not ruled out
    assert gate_verdict(1.02, 1.04, 0.05, 0.01)[0] == "same"  # slower, but surely by less than 5%
    assert gate_verdict(1.005, 1.08, 0.05, 0.01)[0] == "noisy"  # not clear of the floor
    assert gate_verdict(0.90, 0.94, 0.05, 0.01)[0] == "faster"


def test_slower_because_the_machine_slowed_is_noisy() -> None:
    """The candidate run's machine probe was 15% slower: the job's 15% is the machine's, not the code's."""
    rng = np.random.default_rng(8)
    result = _compare_records(record(process_samples(rng, 3e6)), record(process_samples(rng, 3.45e6), probe_ns=3.0e6), 0.05)
    assert result.verdict == "noisy" and not result.regression and "machine" in result.why
    assert result.probe_ratio == pytest.approx(3.0 / 2.6)


def test_one_slow_process_does_not_make_a_regression() -> None:
    """Whole processes shift on shared hosts: one of three at +60% must not flag the key."""
    rng = np.random.default_rng(4)
    base = process_samples(rng, 3e6)
    cand = process_samples(rng, 3e6)
    cand[1] = cand[1] * 1.6
    assert not _compare_records(record(base), record(cand), 0.05).regression


def test_bootstrap_ci_covers_the_true_ratio() -> None:
    rng = np.random.default_rng(5)
    cis = [_bootstrap_ratio(record(process_samples(rng, 1e6, n=600)), record(process_samples(rng, 1.1e6, n=600)), seed=i)
           for i in range(100)]
    assert sum(lo <= 1.1 <= hi for lo, hi in cis) >= 85  # a percentile bootstrap over 3 processes under-covers a little
    assert all(lo > 1.0 for lo, _ in cis)


def test_keys_on_one_side_environment_and_no_common_key() -> None:
    rng = np.random.default_rng(6)
    a = [record(process_samples(rng, 1e6), model="x"), record(process_samples(rng, 1e6), model="only-a")]
    b = [record(process_samples(rng, 1e6), model="x", cpu="Intel Xeon"), record(process_samples(rng, 1e6), model="only-b")]
    result = compare_runs(a, b)
    assert len(result.rows) == 1 and result.only_baseline[0].startswith("only-a") and result.only_candidate[0].startswith("only-b")
    assert result.different_machines and any("AMD EPYC -> Intel Xeon" in line for line in result.environment)
    # a job the baseline has and the candidate lacks cannot be judged: the gate fails closed
    assert result.exit_code == 3 and result.cannot_judge[0].startswith("only-a") and "missing from the candidate" in result.cannot_judge[0]
    nothing = compare_runs([a[1]], [b[1]])
    assert nothing.exit_code == 3 and nothing.failures[0].startswith("no job was compared") and not nothing.rows
    with pytest.raises(HarnessError, match="threshold"):
        compare_runs(a, b, threshold=5)


def test_a_stored_change_measured_on_a_busy_machine_cannot_be_judged() -> None:
    """#49: an A/A compare called 1.46 -> 6.63 ms a 4.5x REGRESSION while the candidate's own records said other
    processes held a core: fail closed (exit 3) with that reason; the same change on a quiet machine is still one."""
    rng = np.random.default_rng(11)
    base = record(process_samples(rng, 1.46e6))
    busy = record(process_samples(rng, 6.63e6))
    for proc in busy["processes"]:
        proc["machine"] = {"others_cpu": 0.93}
    judged = compare_runs([base], [busy])
    assert judged.exit_code == 3 and not judged.regressions
    said = judged.cannot_judge[-1]
    assert "candidate's own checks say its machine was busy" in said and "other processes used 0.93 cores" in said
    drifted = compare_runs([base], [record(process_samples(rng, 6.63e6), probe_ns=2.6e6 * 1.19)])
    assert drifted.exit_code == 3 and "machine probe ran 19% slower" in drifted.cannot_judge[-1]
    quiet = compare_runs([base], [record(process_samples(rng, 6.63e6))])
    assert quiet.exit_code == 1 and quiet.regressions[0].ratio > 4


def test_a_busy_side_does_not_block_a_key_that_did_not_change() -> None:
    rng = np.random.default_rng(12)
    busy = record(process_samples(rng, 2e6, process_sd=0.002))
    for proc in busy["processes"]:
        proc["machine"] = {"steal_frac": 0.2}
    assert compare_runs([record(process_samples(rng, 2e6, process_sd=0.002))], [busy]).exit_code == 0


def _write_run(folder: Path, recs: list[dict]) -> Path:
    for rec in recs:
        write_record(folder / "records" / f"{rec['job_id']}.json", rec)
    return folder


def test_cli_exit_codes_and_reports(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    base = _write_run(tmp_path / "base", [record(process_samples(rng, 2e6), model=m) for m in ("a", "b")])
    same = _write_run(tmp_path / "same", [record(process_samples(rng, 2e6), model=m) for m in ("a", "b")])
    slow = _write_run(tmp_path / "slow", [record(process_samples(rng, 2e6 * f), model=m) for m, f in (("a", 1.0), ("b", 1.15))])
    runner = CliRunner()
    ok = runner.invoke(app, ["compare", str(base), str(same)])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["compare", str(base), str(slow), "--format", "md"])
    assert bad.exit_code == 1 and "**REGRESSION**" in bad.output and "| b (fused) · torch" in bad.output
    written = runner.invoke(app, ["compare", str(base), str(slow), "--format", "json", "--output", str(tmp_path / "c.json")])
    assert written.exit_code == 1 and "regression" in written.stdout  # the terminal gets the table, the file the JSON
    old = runner.invoke(app, ["compare", str(base), str(slow), "--json", str(tmp_path / "old.json")])
    assert old.exit_code == 1 and "--json F is now --format json --output F" in old.stderr  # one release
    assert json.loads((tmp_path / "old.json").read_text())["regression_count"] == 1
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["regression_count"] == 1 and "hierarchical bootstrap" in data["method"]
    missing = runner.invoke(app, ["compare", str(base), str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no run" in missing.output
    (tmp_path / "corrupt" / "records").mkdir(parents=True)
    (tmp_path / "corrupt" / "records" / "x.json").write_text("{")
    corrupt = runner.invoke(app, ["compare", str(base), str(tmp_path / "corrupt")])
    assert corrupt.exit_code == 2 and "not a readable results file" in corrupt.output


def _failed(rec: dict, status: str = "error", message: str | None = None) -> dict:
    rec.update(status=status, message=message or f"planted {status}", stats=None, processes=[])
    return rec


def test_the_gate_fails_closed_on_a_candidate_that_lost_its_numbers(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    base = [record(process_samples(rng, 2e6), model=m) for m in ("a", "b", "c")]
    wrong = record(process_samples(rng, 2e6), model="c")
    wrong["parity"] = {"passed": False, "cosine": 0.2, "max_rel_err": 3.0, "max_abs_err": 9.0, "top1_agreement": 0.0,
                       "tolerance": {"min_cosine": 0.99999, "max_rel_err": 1e-3}}
    cand = [_failed(record(process_samples(rng, 2e6), model="a")),
            _failed(record(process_samples(rng, 2e6), model="b"), "skipped"), wrong]
    result = compare_runs(base, cand)
    assert result.rows == [] and result.exit_code == 3 and len(result.broken) == 3
    assert any("candidate error: planted error" in b for b in result.broken)
    assert any("candidate skipped" in b for b in result.broken) and any("failed parity (cosine 0.2" in b for b in result.broken)
    assert result.headline().startswith("FAILED CLOSED: 3 job(s)")
    run = CliRunner().invoke(app, ["compare", str(_write_run(tmp_path / "base", base)),
                                   str(_write_run(tmp_path / "cand", cand)), "--format", "md"])
    assert run.exit_code == 3 and run.output.lstrip().startswith("**FAILED CLOSED")
    # a baseline that errored cannot be judged against: fail closed; one skipped on both sides is only "not comparable"
    flipped = compare_runs([_failed(record(process_samples(rng, 2e6), model="a")), base[1]], [base[0], base[1]])
    assert flipped.exit_code == 3 and "the baseline has no number (error: planted error)" in flipped.cannot_judge[0]
    # a lockstep pair ends for both sides when one process dies: the line names that side, not "the baseline"
    died = "the candidate process died: exit code 1"
    both = compare_runs([_failed(record(process_samples(rng, 2e6), model="a"), message=died), base[1]],
                        [_failed(record(process_samples(rng, 2e6), model="a"), message=died), base[1]])
    assert both.exit_code == 3 and both.cannot_judge[0].endswith(f": neither side has a number ({died})")
    skipped = compare_runs([_failed(record(process_samples(rng, 2e6), model="a"), "skipped"), base[1]],
                           [_failed(record(process_samples(rng, 2e6), model="a"), "skipped"), base[1]])
    assert skipped.exit_code == 0 and skipped.not_comparable and len(skipped.rows) == 1


def test_the_gate_fails_closed_where_it_cannot_judge(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    base = [record(process_samples(rng, 2e6), model=m) for m in ("a", "b")]
    unchecked = record(process_samples(rng, 2e6), model="a")
    unchecked["parity"] = None  # its outputs were never compared with PyTorch fp32
    result = compare_runs(base, [unchecked, base[1]])
    assert result.exit_code == 3 and "no parity result" in result.cannot_judge[0] and len(result.rows) == 1
    on_device = [json.loads(json.dumps(r)) for r in (base[0], unchecked)]  # iPhone runs: no parity by design
    for r in on_device:
        r["job"]["boundary"], r["parity"] = "on-device", None
    assert compare_runs([on_device[0]], [on_device[1]]).exit_code in (0, 5)
    all_errored = compare_runs([_failed(record(process_samples(rng, 2e6), model=m)) for m in ("a", "b")], base)
    assert all_errored.exit_code == 3 and all_errored.failures[0].startswith("no job was compared")
    both_sides_never_ran = CliRunner().invoke(app, [
        "compare", str(_write_run(tmp_path / "b", [_failed(record(process_samples(rng, 2e6), model="a"))])),
        str(_write_run(tmp_path / "c", [_failed(record(process_samples(rng, 2e6), model="a"))]))])
    assert both_sides_never_ran.exit_code == 3 and "FAILED CLOSED" in both_sides_never_ran.output.splitlines()[0]


def test_every_key_field_is_in_the_label_so_two_keys_never_print_alike() -> None:
    from harness.store.job_key import KEY_FIELDS, key_label

    base = dict(model="m", form="fused", backend="torch", device="cuda", precision="fp16", batch=1, threads=1,
                boundary="device", layout="nchw")
    other = {"model": "n", "form": "train", "backend": "onnxruntime", "device": "cpu", "precision": "fp32", "batch": 2,
             "threads": 2, "boundary": "end-to-end", "layout": "nhwc", "options": "per_channel=false"}
    labels = {key_label(base)} | {key_label({**base, field: other[field]}) for field in KEY_FIELDS}
    assert len(labels) == len(KEY_FIELDS) + 1
    assert key_label({k: v for k, v in base.items() if k != "layout"}) == key_label(base)  # old records: NCHW


def test_the_ci_log_table_shows_every_number_at_80_columns(tmp_path: Path, monkeypatch) -> None:
    """No TTY, no COLUMNS (a CI log): short labels, the shared key fields once, every ratio and verdict."""
    monkeypatch.delenv("COLUMNS", raising=False)
    rng = np.random.default_rng(11)
    models = ("mobileone_s0", "mobilenetv2_100", "efficientnet_b0")
    base = _write_run(tmp_path / "base", [record(process_samples(rng, 2e6), model=m, backend=b)
                                          for m in models for b in ("onnxruntime", "openvino")])
    cand = _write_run(tmp_path / "cand", [record(process_samples(rng, 2e6 * (1.2 if m == "mobileone_s0" else 1)),
                                                 model=m, backend=b) for m in models for b in ("onnxruntime", "openvino")])
    result = CliRunner().invoke(app, ["compare", str(base), str(cand)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    comparison = compare_runs(*(load(p) for p in (base, cand)))
    assert "jobs: fused · cpu · batch 1 · 2 threads · boundary host-sync" in lines
    for row in comparison.rows:
        label = f"{row.key['model']} · {row.key['backend']} · fp32: {'REGRESSION' if row.regression else row.verdict}"
        assert label in lines
        numbers = next(ln for ln in lines[lines.index(label):] if "ratio" in ln)
        assert f"ratio {row.ratio:.3f} [{row.ci_low:.3f}-{row.ci_high:.3f}]" in numbers and len(numbers) <= 80
        assert f"{row.baseline_p50_ms:.3f} -> {row.candidate_p50_ms:.3f} ms" in numbers


def load(folder: Path) -> list[dict]:
    from harness.store.runs import load_run

    return load_run(folder)
