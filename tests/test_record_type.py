"""The typed record and its one versioned loader: what show, leaderboard, compare, history and ingest read."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.store.record import STATISTIC_V1, Record, Status, load_record, parse_record, records_of
from harness.store.records import SCHEMA_VERSION, write_record
from tests.helpers import RECORD


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_a_loaded_record_is_typed_from_its_document(tmp_path: Path) -> None:
    write_record(tmp_path / "r.json", RECORD)
    rec = load_record(tmp_path / "r.json")
    assert rec.status is Status.OK and rec.ok and rec.has_number
    assert rec.stats.p50_ms == 2e-6 and rec.stats.ci_ms == (1e-6, 3e-6) and rec.stats.processes == 1
    # key fields older records lack are read at their defaults; the document keeps what was written
    assert rec.job.layout == "nchw" and rec.job.options == "" and "layout" not in rec.document["job"]
    assert rec.key == ("m", "fused", "torch", "cpu", "fp32", 1, 2, "host-sync", "nchw", "")
    assert rec.processes[0].samples_ns == (1, 2, 3) and rec.parity is None and rec.memory is None
    assert rec.as_document() == RECORD


@pytest.mark.parametrize("where, value", [("stats", "NaN"), ("stats", "Infinity"), ("processes/0/summary", "-Infinity")])
def test_the_loader_refuses_non_finite_figures_in_one_line(tmp_path: Path, where: str, value: str) -> None:
    doc = copy.deepcopy(RECORD)
    target = doc
    for part in where.split("/"):
        target = target[int(part)] if part.isdigit() else target[part]
    target["spread" if where == "stats" else "min"] = 0.123456
    text = json.dumps(doc).replace("0.123456", value)
    (tmp_path / "r.json").write_text(text)
    with pytest.raises(HarnessError, match="not a finite number") as info:
        load_record(tmp_path / "r.json")
    assert "\n" not in str(info.value) and str(tmp_path / "r.json") in str(info.value)


def test_a_newer_schema_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.json", {**RECORD, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(HarnessError, match=f"record schema {SCHEMA_VERSION + 1} is newer.*upgrade onebench"):
        load_record(path)
    with pytest.raises(HarnessError, match="expected a JSON object"):
        parse_record([RECORD], "a list")


def test_a_schema_1_record_is_upgraded_to_say_what_its_p50_was(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.json", {**RECORD, "schema_version": 1})
    rec = load_record(path)
    assert rec.schema_version == SCHEMA_VERSION and rec.stats.statistic == STATISTIC_V1
    assert rec.document["stats"]["statistic"] == STATISTIC_V1
    current = load_record(_write(tmp_path / "r2.json", RECORD))
    assert current.stats.statistic is None  # a current record is read as written


def test_a_record_that_fails_the_schema_fails_the_loader(tmp_path: Path) -> None:
    bad = copy.deepcopy(RECORD)
    bad["status"] = "fine"
    with pytest.raises(HarnessError, match="status"):
        load_record(_write(tmp_path / "r.json", bad))


def test_revised_makes_a_new_record_and_leaves_the_old_one() -> None:
    rec = Record.of(copy.deepcopy(RECORD))
    marked = rec.revised(unstable=True, unstable_reasons=["machine probe (conv) 30% slower than its best in this run"])
    assert marked.unstable and marked.unstable_reasons[0].startswith("machine probe")
    assert not rec.unstable and rec.unstable_reasons == () and rec.document["unstable"] is False


def test_readers_take_records_or_documents_alike() -> None:
    failed = {**copy.deepcopy(RECORD), "job_id": "j2", "parity": {"passed": False, "cosine": 0.5, "max_abs_err": 1.0}}
    typed = records_of([RECORD, Record.of(failed)])
    assert [r.job_id for r in typed] == ["j1", "j2"]
    assert typed[1].parity_failed and not typed[1].has_number and typed[0].has_number
    assert Record.of(typed[0]) is typed[0]
