"""Records: schema on write and read, atomic writes that survive kill -9."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.store.record import load_record
from harness.store.records import validate, write_record
from tests.helpers import RECORD


def test_valid_record_round_trips(tmp_path: Path) -> None:
    write_record(tmp_path / "r.json", RECORD)
    assert load_record(tmp_path / "r.json").document == RECORD


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r.pop("status"), "status"),
    (lambda r: r["job"].update(batch=0), "job/batch"),
    (lambda r: r.update(stats=None), "stats"),
    (lambda r: r["processes"][0].update(samples_ns=[-1]), "processes/0/samples_ns/0"),
    (lambda r: r.update(status="skipped", message=""), "message"),
    (lambda r: r["stats"].update(p50="fast"), "stats"),
    (lambda r: r["stats"].update(set_aside_share=1.5), "stats"),
])
def test_invalid_records_are_refused_on_write(tmp_path: Path, mutate, where: str) -> None:
    bad = copy.deepcopy(RECORD)
    mutate(bad)
    with pytest.raises(HarnessError, match=where.split("/")[0]):
        write_record(tmp_path / "bad.json", bad)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_corrupt_files_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "cut.json").write_text(json.dumps(RECORD)[:100])
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    for name, match in (("cut.json", "not a readable results file"), ("list.json", "expected a JSON object"),
                        ("other.json", "not a valid onebench record"), ("absent.json", "does not exist")):
        with pytest.raises(HarnessError, match=match) as info:
            load_record(tmp_path / name)
        assert "\n" not in str(info.value)
    validate(RECORD)


def test_kill_9_during_writes_never_leaves_a_corrupt_file(tmp_path: Path) -> None:
    """A writer killed at a random moment leaves the old record or the new one, never a fragment."""
    target = tmp_path / "r.json"
    big = copy.deepcopy(RECORD)
    big["processes"][0]["samples_ns"] = list(range(1, 20_000))
    big["processes"][0]["summary"]["n"] = 19_999
    (tmp_path / "src.json").write_text(json.dumps(big))
    script = (f"import json, sys, pathlib; sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
              f"from harness.store.records import write_record\nrec = json.loads(open({str(tmp_path / 'src.json')!r}).read())\n"
              f"while True:\n    write_record(pathlib.Path({str(target)!r}), rec)\n")
    for delay in (0.013, 0.05, 0.11, 0.17):
        proc = subprocess.Popen([sys.executable, "-c", script])
        deadline = time.monotonic() + 60
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert target.exists(), "the writer never got to write: the test would prove nothing"
        time.sleep(delay)  # now it is rewriting the file in a loop: kill it somewhere inside a write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert len(load_record(target).processes[0].samples_ns) == 19_999


def test_run_json_has_one_validated_writer(tmp_path: Path) -> None:
    import json

    from harness.store.records import RUN_SCHEMA, write_run_json

    write_run_json(tmp_path, "r0", {}, {}, [], neighbour="other processes are using 1.01 cores of this machine")
    write_run_json(tmp_path, "r1", {"cpu": {}}, {"preset": "quick"}, [{"model": "m", "backend": "b"}], neighbour=None)
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["run_id"] == "r1" and meta["neighbour"] is None and set(meta) <= set(RUN_SCHEMA["properties"])
    with pytest.raises(HarnessError, match="run.json of r2 is not valid.*(top level)"):
        write_run_json(tmp_path / "x", "r2", {}, {}, [], surprise=1)
    with pytest.raises(HarnessError, match="jobs/0"):
        write_run_json(tmp_path / "x", "r3", {}, {}, [{"model": "m"}])
    assert not (tmp_path / "x").exists()


def test_latest_means_the_newest_run_with_numbers(tmp_path: Path) -> None:
    import os

    from harness.store.runs import find_run

    def run(name: str, status: str, mtime: int) -> Path:
        folder = tmp_path / "runs" / name
        (folder / "records").mkdir(parents=True)
        rec = {**copy.deepcopy(RECORD), "status": status}
        if status != "ok":
            rec.update(message=f"planted {status}", stats=None, processes=[])
        (folder / "records" / "job.json").write_text(json.dumps(rec))
        os.utime(folder, (mtime, mtime))
        return folder

    measured = run("a-measured", "ok", 1_000)
    said: list[str] = []
    assert find_run("latest", tmp_path, say=said.append) == measured and "newer" not in said[0]
    run("b-all-skipped", "skipped", 2_000)
    assert find_run("latest", tmp_path, say=said.append) == measured
    assert str(measured) in said[-1] and "newer runs measured nothing" in said[-1]
    os.utime(measured, (0, 0))
    (measured / "records" / "job.json").write_text(json.dumps({"status": "error"}))
    with pytest.raises(HarnessError, match="no run under .* has a measured number"):
        find_run("latest", tmp_path)


def test_an_index_from_an_older_onebench_is_replaced_without_losing_the_record(tmp_path: Path) -> None:
    """The index gained a column: the old table is dropped and refilled from the records beside it; the
    record being indexed stays even when its file lives outside the results folder (`--out`)."""
    import sqlite3

    from harness.store import runs

    db = tmp_path / "results" / "index.sqlite"
    db.parent.mkdir()
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE records (run_id, job_id, p50_ns)")
    runs.index_record(db, RECORD, tmp_path / "elsewhere" / "records" / "j1.json")
    (row,) = runs.query(db)
    assert row["job_id"] == "j1" and row["p50_ns"] == RECORD["stats"]["p50"] and "preset" in row
