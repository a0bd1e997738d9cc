"""The GFLOP/s ceiling is a ceiling (#49, case 5): the best GEMM of torch and of each runtime in the sweep,
and a job past it is never printed as more than 100% efficient."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.measure import peak, recording
from harness.measure.jobs import Job
from harness.publish.show import efficiency_text
from harness.store.record import Record
from tests.synthetic import record

MACS = 274_000_000  # MobileOne-S0's, as a record holds it


def _record(p50_ms: float, peak_gflops: float, stored_share: float | None = None) -> Record:
    doc = record([np.full(40, p50_ms * 1e6)])
    doc["model_info"]["macs"] = MACS
    doc["job"]["threads"] = 1
    doc["host"]["peak_gflops"] = {"fp32/1t": peak_gflops}
    doc["host"]["peak_source"] = {"fp32/1t": "onnxruntime 1x1 conv"}
    doc["stats"].update(recording.efficiency(Record.of(doc)))
    if stored_share is not None:  # a record written before the fix
        doc["stats"]["peak_share"] = stored_share
    return Record.of(doc)


def test_a_job_past_the_peak_gets_no_share_and_show_says_why() -> None:
    past = _record(2.82, 112.0)  # 194 GFLOP/s against a 112 GFLOP/s GEMM: the #49 report
    assert past.stats.gflops > 190 and past.stats.peak_share is None
    text = efficiency_text(past)
    assert "%" not in text and "no share is given" in text and "onnxruntime 1x1 conv" in text


def test_an_old_record_past_the_peak_is_not_printed_as_a_share() -> None:
    old = _record(2.82, 112.0, stored_share=1.735)
    assert old.stats.share_of_peak is None and "173" not in efficiency_text(old)


def test_a_job_below_the_peak_reads_as_its_share() -> None:
    below = _record(10.0, 108.0)
    assert below.stats.peak_share == pytest.approx(54.8 / 108.0, abs=1e-3)
    assert "50.7% of this machine's fp32 GEMM peak (108 GFLOP/s on 1 thread(s), onnxruntime 1x1 conv)" in efficiency_text(below)


def test_the_peak_takes_the_runtimes_own_gemm(tmp_path: Path, monkeypatch) -> None:
    """With torch's mm made slow, the peak of an ONNX Runtime sweep is ONNX Runtime's probe, said as its source."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(peak, "peak_gflops", lambda threads, precision: 0.5)
    best, source = peak.peaks([Job("mobileone_s0", "onnxruntime", threads=1)], tmp_path / "cache")
    assert best["fp32/1t"] > 1.0 and source["fp32/1t"] == "onnxruntime 1x1 conv"


def test_plugins_and_probe_less_runtimes_are_not_probed() -> None:
    assert peak.probing_backends([Job("m", "fake-sleep"), Job("m", "torch-compile"), Job("m", "torch", device="cuda")]) == []
