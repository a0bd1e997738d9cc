"""The counted figure (#50): work per inference from callgrind's dumps, the record's counted block, the gate on
counts, and bad input. Real valgrind runs are in the slow lane (`test_counted_e2e.py`): a counted process
imports torch under valgrind (about a minute)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import HarnessError
from harness.measure import counted
from harness.measure.jobs import Job
from harness.measure.payload import CountPayload, JobPayload
from harness.store.record import load_record
from harness.store.records import validate, write_record
from harness.track.compare import compare_runs
from tests.synthetic import record

EVENTS = dict(zip(counted.EVENTS, (68_000_000, 36_000_000, 1_000_000, 5_000, 800_000, 240_000, 1_000, 140_000, 40_000)))
EDGE = 700_000  # what a window costs besides its inferences (the switch, the loop's first pass)


def _window(inferences: int, jitter: int = 0) -> dict[str, int]:
    return {e: v * inferences + (EDGE + jitter if e == "Ir" else 0) for e, v in EVENTS.items()}


def test_per_inference_cancels_the_window_edge() -> None:
    block = counted.per_inference({0: _window(1, jitter=40), 1: _window(2), 2: _window(1)})
    assert block["instructions"] == 68_000_000  # the 2-window minus the last 1-window: the edge cancels
    l1, ll = 5_000 + 800_000 + 240_000, 1_000 + 140_000 + 40_000
    assert block["l1_misses"] == l1 and block["ll_misses"] == ll
    assert block["cycles_estimated"] == block["instructions"] + 10 * l1 + 100 * ll
    assert block["wander"] == pytest.approx(40 / (68_000_000 + EDGE), abs=1e-6)  # how far the first window was off


def test_a_count_that_wanders_is_not_published() -> None:
    block = counted.per_inference({0: _window(1, jitter=300_000), 1: _window(2), 2: _window(1)})
    assert "instructions" not in block and "the count wanders" in block["missing"] and "0.437%" in block["missing"]
    assert "instructions" in counted.per_inference({0: _window(1, jitter=80_000), 1: _window(2), 2: _window(1)})
    assert "missing" in counted.per_inference({0: _window(1), 1: _window(2)})  # a window callgrind did not write


def _dump(folder: Path, name: str, label: str, values: dict[str, int]) -> None:
    (folder / name).write_text(
        "version: 1\ncreator: callgrind-3.19.0\npid: 7\ncmd:  python -m harness.measure.counted plan.json\npart: 1\n"
        "desc: I1 cache: 32768 B, 64 B, 8-way associative\n"
        f"desc: Trigger: Client Request: {label}\n\npositions: line\nevents: {' '.join(values)}\n"
        f"summary: {' '.join(map(str, values.values()))}\n\nfn=(1) main\n0 1\n\ntotals: {' '.join(map(str, values.values()))}\n")


def test_callgrinds_labelled_dumps_are_read_by_job_and_window(tmp_path: Path) -> None:
    for n, (job, window) in enumerate([(0, 0), (0, 1), (0, 2), (3, 0)]):
        _dump(tmp_path, f"callgrind.7.{n + 1}", f"onebench-job{job}-window{window}", _window(window + 1))
    _dump(tmp_path, "callgrind.7", "onebench-warm-up", _window(0))  # not a window: ignored
    found = counted.read_dumps(tmp_path)
    assert sorted(found) == [0, 3] and sorted(found[0]) == [0, 1, 2]
    assert found[0][1][1]["Ir"] == 2 * 68_000_000 + EDGE and found[3][0][1]["DLmw"] == 40_000


def test_a_one_thread_job_counts_its_inference_thread_and_not_the_background() -> None:
    """A background thread's odd work lands in whichever window is open (0.4% on MobileNetV2 through ONNX
    Runtime): a one-thread job counts the thread that ran the inferences; several threads are summed."""
    background = {e: 300_000 if e == "Ir" else 0 for e in counted.EVENTS}
    windows = {0: {1: _window(1), 4: background}, 1: {1: _window(2)}, 2: {1: _window(1)}}
    one, which = counted.of_threads(windows, 1)
    assert counted.per_inference(one)["instructions"] == 68_000_000 and "inference thread only" in which
    summed, which = counted.of_threads(windows, 2)
    assert summed[0]["Ir"] == _window(1)["Ir"] + 300_000 and "summed" in which
    assert "the count wanders" in counted.per_inference(summed)["missing"]


def _counted_record(instructions: int, model: str = "a", **extra) -> dict:
    rec = record([np.full(40, 2e6)], model=model)
    rec["counted"] = {"instructions": instructions, "l1_misses": 1_000_000, "ll_misses": 180_000,
                      "cycles_estimated": instructions + 28_000_000, "cycles_formula": counted.CYCLES, "wander": 2e-5,
                      "valgrind": "valgrind-3.19.0", "simulated_cpu": counted.SIMULATED_CPU, "pins": counted.pins(True),
                      **extra}
    return rec


def test_the_counted_block_validates_and_round_trips(tmp_path: Path) -> None:
    rec = _counted_record(68_271_732)
    write_record(tmp_path / "r.json", rec)
    back = load_record(tmp_path / "r.json")
    assert back.instructions == 68_271_732 and back.counted.identity == ("valgrind-3.19.0", counted.SIMULATED_CPU)
    assert json.loads((tmp_path / "r.json").read_text())["counted"] == rec["counted"]
    missing = copy.deepcopy(rec)
    missing["counted"] = {"missing": "the count wanders: ..."}
    write_record(tmp_path / "m.json", missing)
    assert load_record(tmp_path / "m.json").instructions is None
    for broken in ({"instructions": -5}, {"valgrind": ""}, {}):
        bad = copy.deepcopy(rec)
        bad["counted"] = {**rec["counted"], **broken} if broken else {}
        with pytest.raises(HarnessError, match="not a valid onebench record"):
            validate(bad)


def test_the_counted_gate_flags_two_percent_more_work_and_not_itself() -> None:
    base = [_counted_record(68_271_732, m) for m in ("a", "b")]
    same = compare_runs(base, [_counted_record(68_271_732 + 50, m) for m in ("a", "b")], series="counted")
    assert same.exit_code == 0 and {r.verdict for r in same.rows} == {"same"} and same.threshold == 0.005
    more = compare_runs(base, [_counted_record(round(68_271_732 * 1.02), m) for m in ("a", "b")], series="counted")
    assert more.exit_code == 1 and len(more.regressions) == 2 and more.rows[0].unit == "M instr"
    assert more.rows[0].ratio == pytest.approx(1.02, abs=1e-6) and "instructions per inference" in more.method
    assert compare_runs(base, [_counted_record(round(68_271_732 * 1.003), m) for m in ("a", "b")],
                        series="counted").exit_code == 0  # under the 0.5% threshold
    assert compare_runs(base, base, series="auto").series == "counted"


def test_a_counted_run_is_never_compared_with_an_uncounted_one_as_if_alike() -> None:
    counted_run = [_counted_record(68_271_732)]
    timed_run = [record([np.full(40, 2e6)], model="a")]
    refused = compare_runs(counted_run, timed_run, series="counted")
    assert refused.exit_code == 3 and "candidate was not counted" in refused.cannot_judge[-1]
    assert compare_runs(counted_run, timed_run, series="auto").series == "ms"  # auto falls back to the timed figure
    other = compare_runs(counted_run, [_counted_record(68_271_732, valgrind="valgrind-3.22.0")], series="counted")
    assert other.exit_code == 3 and "counts compare only under one counter" in other.cannot_judge[-1]


def test_the_cli_compares_counted_runs_and_says_the_unit(tmp_path: Path) -> None:
    for name, n in (("base", 68_271_732), ("cand", round(68_271_732 * 1.02))):
        write_record(tmp_path / name / "records" / "a.json", _counted_record(n))
    done = CliRunner().invoke(app, ["compare", str(tmp_path / "base"), str(tmp_path / "cand"), "--format", "md"])
    assert done.exit_code == 1 and "baseline M instr" in done.output and "1.0200" in done.output
    assert "baseline ms" not in done.output


def test_counting_without_valgrind_is_one_line_with_the_install_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(counted, "valgrind_version", lambda: None)
    done = CliRunner().invoke(app, ["run", "-m", "timm:test_byobnet", "-b", "torch", "--counted"])
    assert done.exit_code == 2 and "apt-get install valgrind" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.rglob("*.json"))


def test_a_count_of_several_threads_says_it_sums_them(monkeypatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(counted, "valgrind_version", lambda: "valgrind-3.19.0")
    monkeypatch.setattr(counted, "hooks_library", lambda: Path("/hooks.so"))
    assert counted.check_counter(2, said.append) == "valgrind-3.19.0"
    assert "sums the work of every thread" in said[0]


def test_the_counted_command_line_pins_the_simulated_cpu(tmp_path: Path) -> None:
    command = counted.valgrind_command("python", tmp_path, tmp_path / "plan.json")
    for pin in ("--tool=callgrind", "--instr-atstart=no", "--cache-sim=yes", "--I1=32768,8,64", "--LL=8388608,16,64",
                "--separate-threads=yes"):
        assert pin in command
    assert command[command.index("python") + 1:] == ["-m", "harness.measure.counted", str(tmp_path / "plan.json")]


def test_reports_carry_the_counted_figure_labelled_as_work_not_time(tmp_path: Path) -> None:
    from harness.publish import counted as view
    from harness.publish.leaderboard import to_csv
    from harness.publish.show import job_lines
    from harness.publish.site import write_site
    from harness.store.record import Record

    rec = Record.of(_counted_record(68_271_732))
    assert "68.27 M instructions an inference" in view.line(rec) and "not time" in view.line(rec)
    assert any("68.27 M instructions" in line for line in job_lines([rec]))
    header, rows = view.table([rec])
    assert header[3] == "M instr" and rows[0][3] == "68.27"
    csv = to_csv([rec]).splitlines()
    assert "counted_instructions" in csv[0] and ",68271732," in csv[1]
    page = write_site([rec], [], tmp_path / "site").read_text()
    assert "Counted work per inference (simulated CPU, not time)" in page and "68.27" in page
    assert view.line(Record.of(_counted_record(0) | {"counted": {"missing": "the count wanders"}})) == \
        "counted: none (the count wanders)"


def test_history_has_a_counted_series_and_finds_a_half_percent_step(tmp_path: Path) -> None:
    """Counts repeat to ~0.01%, so a 1% step in work is a step (a timed series' 2% floor would hide it)."""
    from harness.store.runs import index_record
    from harness.track.history import lines, load_series

    db = tmp_path / "index.sqlite"
    for night in range(8):
        rec = _counted_record(68_000_000 if night < 4 else 68_680_000)  # +1% from the fifth night
        rec.update(run_id=f"n{night}", created=f"2026-12-0{night + 1}T00:00:00+00:00")
        write_record(tmp_path / f"n{night}" / "records" / "a.json", rec)
        index_record(db, rec, tmp_path / f"n{night}" / "records" / "a.json")
    (series,) = load_series(db, "counted")
    assert series.unit == "M instr" and len(series.points) == 8 and "counted by valgrind-3.19.0" in series.label
    assert [round(s.size, 3) for s in series.steps] == [0.01] and series.steps[0].run_id == "n4"
    assert "68.000 M instr" in "\n".join(lines(series))


FAKE_CHILD = '''
import json, os, sys
from pathlib import Path
plan = json.loads(Path(sys.argv[1]).read_text())
result, folder = Path(plan["result"]), Path(sys.argv[1]).parent
done = json.loads(result.read_text()) if result.exists() else {}
for index, job in enumerate(plan["jobs"]):
    if str(index) in done:
        continue
    done[str(index)] = {"started": True}
    result.write_text(json.dumps(done))
    if job["job"]["model"] == "crashes":
        os._exit(139)  # a native crash under valgrind: nothing more is written
    if job["job"]["model"] == "avx512":
        sys.stderr.write("vex amd64->IR: unhandled instruction bytes: 0x62 0xF1\\n")
        os._exit(132)  # SIGILL: valgrind's CPU has no AVX-512
    for window, n in enumerate((1, 2, 1)):
        ir = 1000 * n + 7
        (folder / f"callgrind.{os.getpid()}.{index}{window}").write_text(
            f"desc: Trigger: Client Request: onebench-job{index}-window{window}\\nevents: Ir\\ntotals: {ir}\\n")
    done[str(index)] = {"counted": True, "wait_policy": "passive"}
    result.write_text(json.dumps(done))
'''


def test_a_crash_under_valgrind_costs_the_running_job_and_the_others_are_counted(tmp_path: Path, monkeypatch) -> None:
    child = tmp_path / "child.py"
    child.write_text(FAKE_CHILD)
    monkeypatch.setattr(counted, "valgrind_version", lambda: "valgrind-3.19.0")
    monkeypatch.setattr(counted, "hooks_library", lambda: Path("/hooks.so"))
    monkeypatch.setattr(counted, "valgrind_command", lambda python, folder, plan: [python, str(child), str(plan)])
    names = ("a", "crashes", "b", "avx512")
    jobs = tuple(JobPayload(job=Job(m, "fake-sleep"), backend_ref="tests.fake_backends:Sleeps", cache_dir=str(tmp_path))
                 for m in names)
    blocks = counted.count_step(CountPayload(jobs=jobs, ids=names, timeout_s=120, project_root="."))["counted"]
    assert blocks["a"]["instructions"] == 1000 and blocks["b"]["instructions"] == 1000
    assert "died under valgrind (exit 139)" in blocks["crashes"]["missing"]
    assert "valgrind cannot decode an instruction" in blocks["avx512"]["missing"]
