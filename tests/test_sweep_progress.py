"""What `bench run` says while it measures: the ETA, the per-job phrase, durations."""

from __future__ import annotations

from harness.cli.sweep_progress import Eta, duration, figure, summary
from harness.measure.runner import SweepPlan
from harness.store.record import Record
from tests.helpers import RECORD

PLAN = SweepPlan(jobs=4, resumed=0, prepare_steps=4, measure_steps=12, max_measure_steps=24, processes="3-6",
                 prior_prepare_s=2.0, prior_measure_s=1.0)


def test_the_eta_starts_from_the_priors_and_learns_each_kind_of_step() -> None:
    eta = Eta(PLAN)
    assert eta.seconds() == PLAN.estimate_s == 4 * 2.0 + 12 * 1.0
    eta.done("prepare", 10.0)  # an export: preparations now cost 10 s each, timed processes still the prior
    assert eta.seconds() == 3 * 10.0 + 12 * 1.0
    eta.done("round 1/3", 3.0)
    assert eta.seconds() == 3 * 10.0 + 11 * 3.0
    one = Eta(SweepPlan(2, 0, 0, 2, 2, "1", 2.0, 1.0))
    one.done("prepare+measure", 5.0)  # a one-process job's one step: the plan counted it as timed
    assert one.seconds() == 5.0


def _rec(status: str = "ok", p50: float = 10e6, lo: float = 9.9e6, hi: float = 10.1e6, unstable: bool = False) -> Record:
    return Record.of({**RECORD, "status": status, "message": "why not" if status != "ok" else "", "unstable": unstable,
                      "unstable_reasons": ["steal"] if unstable else [], "parity": {"passed": True},
                      "stats": {**RECORD["stats"], "p50": p50, "ci_low": lo, "ci_high": hi}})


def test_a_job_line_never_prints_a_meaningless_interval_as_a_plus_minus() -> None:
    assert figure(_rec()) == "10.000 ms ±1.0%"
    wide = figure(_rec(p50=37.2e6, lo=30e6, hi=1100e6))
    assert "±" not in wide.replace("±50%", "") and "does not repeat" in wide
    assert figure(_rec(unstable=True)).endswith("[unstable: steal]")
    assert figure(_rec("skipped")) == "skipped: why not"
    assert summary([_rec(), _rec(unstable=True), _rec("error")], 75) == \
        "done in 1 min 15 s: 2 measured (1 unstable), 0 skipped, 1 errors"
    assert (duration(5), duration(125), duration(3725)) == ("5 s", "2 min 05 s", "1 h 02 min")
