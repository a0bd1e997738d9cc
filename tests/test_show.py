"""`bench show` never prints a CI wider than the value as if it bounded it."""

from __future__ import annotations

from harness.publish.show import ci_text
from harness.store.record import Stats


def test_a_meaningless_ci_is_said_to_be_one() -> None:
    # the newcomer's case: process medians 63.977, 37.285, 39.277 ms gave "p50 39.277 [CI 36.083 – 1209.802]"
    wide = ci_text(Stats.of({"p50": 39.277e6, "ci_low": 36.083e6, "ci_high": 1209.802e6}))
    assert "wider than ±50%" in wide and "does not repeat" in wide
    assert ci_text(Stats.of({"p50": 10e6, "ci_low": 9.9e6, "ci_high": 10.1e6})) == "[CI 9.900 ms – 10.100 ms, ±1.0%]"
    assert ci_text(Stats.of({"p50": 10e6, "ci_low": None, "ci_high": None})) == "[no CI]"


def test_show_says_the_relative_figure_and_its_reference() -> None:
    import numpy as np

    from harness.publish.show import job_lines
    from tests.synthetic import record, with_relative

    rec = with_relative(record([np.random.default_rng(0).normal(5e6, 1e4, 60)]), 1.6667, reference_ms=3.0)
    text = "\n".join(job_lines([rec]))
    assert "relative 1.667x [1.658-1.675] of the pinned reference conv-dense (torch 2.14.1), its own p50 3.000 ms" in text
    assert "relative" not in "\n".join(job_lines([record([np.full(20, 1e6)])]))


def test_the_leaderboard_marks_what_its_plus_minus_does_not_say() -> None:
    """#49: 34 of 36 cells of a quiet sweep carried `~`, 28 only for a CI wider than twice its target, which the
    ± beside the figure already says. The mark stays for a figure reached by one process only."""
    import numpy as np

    from harness.measure.planner import protocol_from_options
    from harness.publish.leaderboard import as_lists, ms_legend
    from harness.store.record import records_of
    from tests.synthetic import record

    wide = record([np.full(40, 2e6)], model="wide", unstable=True)
    wide["unstable_reasons"] = ["CI of p50 ±3.1%, wider than twice the ±1% target"]
    alone = record([np.full(40, 2e6)], model="alone", unstable=True)
    alone["unstable_reasons"] = ["full speed was reached in one process only: every quiet window came from it"]
    for rec in (wide, alone):
        rec["protocol"]["target_rel_ci"] = 0.02
    _, body = as_lists([wide, alone])
    cells = {row[0]: row[-1] for row in body}
    assert not cells["wide"].endswith("~") and cells["alone"].endswith("~"), cells
    assert "aimed at a CI of ±2.0%" in ms_legend(records_of([wide, alone]))
    assert protocol_from_options("quick", ci_target=0.03).target_rel_ci == 0.03
