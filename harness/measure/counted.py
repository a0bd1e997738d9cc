"""Work per inference counted under valgrind's callgrind: the figure that does not move with the machine.

A timed figure says how fast this machine ran a deployment; on a shared VM it moves by more than the
regressions a gate must catch. callgrind runs the same program on a simulated CPU and counts what it executes,
the same whatever else the machine does (the approach of CodSpeed's CI benchmarks and of PyTorch's
instruction-count benchmarks). A counted job is opened as a measuring process opens it (`worker.open_job`:
the same cached artifact, a passive wait policy so no pool spins), under

    setarch -R valgrind --tool=callgrind --instr-atstart=no --cache-sim=yes --I1/--D1/--LL fixed

with ASLR off, Python's allocator pinned to malloc and a fixed hash seed. Instrumentation is off at start
(imports and session creation are never counted); after WARMUP inferences it is switched on around windows
of 1, 2 and 1 inferences, each dumped under its own label (the client requests come from CodSpeed's
maintained `pytest-codspeed` instrument-hooks library, loaded with ctypes: valgrind's `callgrind.h` macros,
compiled and kept working by the people who run this in CI every day, with no extension of our own to build).
Per inference = the 2-inference window minus the last 1-inference window, which cancels the window's fixed
edge (the switch, the loop's first pass); the first 1-inference window must agree with the last within
WANDER_LIMIT, or the job is skipped with that reason: a count that does not settle is never published.

Many jobs of one backend share one process under valgrind (its start-up, `import torch` included, costs
tens of seconds to minutes); a crash under valgrind costs the job that was running, and the rest go on in a
new process.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.measure.payload import CountPayload
from harness.store.records import atomic_write_text

INSTALL = "apt-get install valgrind"
HOOKS_INSTALL = "pip install pytest-codspeed"
# the simulated caches, fixed so the count is the same on every machine: 32 KiB 8-way L1s, an 8 MiB 16-way LL
CACHES = {"I1": (32768, 8, 64), "D1": (32768, 8, 64), "LL": (8388608, 16, 64)}
WARMUP = 1  # inferences before instrumentation starts: the first one allocates and initializes
SETTLE = 2  # inferences after instrumentation starts, before the first window (not counted): lazy paths, caches
WINDOWS = (1, 2, 1)  # inferences per counted window
INFERENCES = WARMUP + SETTLE + sum(WINDOWS)  # what one counted job runs under valgrind
# The two 1-inference windows may differ by this share of their instructions. The first counted window of an
# ONNX Runtime int8 session ran 40-80 k instructions (0.05-0.13%) above the later ones in every process, so the
# figure is the 2-window minus the *last* 1-window, and the first one only says whether the count settled.
WANDER_LIMIT = 0.002
EVENTS = ("Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")
CYCLES = "Ir + 10 x L1 misses + 100 x LL misses"  # KCachegrind's cycle estimate, without branch simulation
# glibc's malloc moves its mmap and trim thresholds as a process frees large blocks, so the first inferences
# after a session opens took other allocator paths than later ones (MobileNetV2 on ONNX Runtime: windows of one
# inference 0.5% apart); fixed thresholds keep every inference on one path. Python's gc is off while counting.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072"
PINNED_ENV = {"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0", "OMP_WAIT_POLICY": "PASSIVE",
              "GLIBC_TUNABLES": MALLOC_TUNABLES}
STARTUP_S = 900.0  # valgrind, the interpreter, torch and the runtime, on a busy 2-core machine
PER_JOB_S = 1800.0  # one job's open, warm-up, settling and 4 counted inferences (14 s an S0 inference here)
TARGET = "harness.measure.counted:count_step"
PHASE = "count under valgrind"  # how a sweep names a counted step to its listener
SIMULATED_CPU = "valgrind's VEX amd64 guest (CPUID: AVX2, no AVX-512)"


def valgrind_version() -> str | None:
    """`valgrind --version` ("valgrind-3.19.0"), or None where valgrind is not installed."""
    found = shutil.which("valgrind")
    if not found:
        return None
    done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or None


def hooks_library() -> Path | None:
    """The instrument-hooks shared library of pytest-codspeed, found without importing the pytest plugin."""
    try:
        files = importlib.metadata.files("pytest-codspeed") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = next((f for f in files if f.name.startswith("dist_instrument_hooks") and f.suffix in (".so", ".pyd")), None)
    return Path(str(found.locate())) if found else None


def check_counter(threads: int, say: Any = None) -> str:
    """Before any work: valgrind and the client-request library are here (one line with the install command
    otherwise), and a count of more than one thread is said to sum every thread's work. The valgrind version."""
    version = valgrind_version()
    if version is None:
        raise HarnessError(f"--counted runs each job under valgrind's callgrind, which is not installed; to fix: {INSTALL}")
    if hooks_library() is None:
        raise HarnessError(f"--counted switches callgrind on around the inferences with pytest-codspeed's instrument "
                           f"hooks, which are not installed; to fix: {HOOKS_INSTALL}")
    if threads > 1 and say:
        say(f"note: --counted with --threads {threads}: a count sums the work of every thread (the simulated CPU "
            "runs them one at a time), so it says how much work, not how parallel")
    return version


def valgrind_command(python: str, out_dir: Path, plan: Path) -> list[str]:
    """The counted process's command line: ASLR off, callgrind off at start, the fixed caches."""
    setarch = shutil.which("setarch")
    prefix = [setarch, platform.machine(), "-R"] if setarch else []
    caches = [f"--{name}={size},{ways},{line}" for name, (size, ways, line) in CACHES.items()]
    return [*prefix, shutil.which("valgrind") or "valgrind", "--tool=callgrind", "--instr-atstart=no", "--cache-sim=yes",
            *caches, "--dump-instr=no", "--dump-line=no", "--separate-threads=yes",
            f"--callgrind-out-file={out_dir}/callgrind.%p", python, "-m", "harness.measure.counted", str(plan)]


def pins(setarch: bool) -> dict[str, Any]:
    """What the counted process was pinned to, for the record: every setting a second count must share."""
    return {"aslr": "off (setarch -R)" if setarch else "on (no setarch here)", **PINNED_ENV, "python_gc": "off while counting",
            "instrumentation": f"off at start; on after {WARMUP} inference(s), then {SETTLE} not counted, then windows "
                               f"of {WINDOWS} inferences",
            "caches": {name: f"{size} B, {ways}-way, {line} B lines" for name, (size, ways, line) in CACHES.items()}}


# ---- in the counted process (under valgrind) ----

def count_main(plan_path: str) -> None:
    """Count every job of the plan in this process; after each job the result file says how far it got, so a
    crash under valgrind costs the job that was running (`started` names it) and the rest go on."""
    from backends.base import SkipJob
    from harness.measure.payload import JobPayload
    from harness.measure.worker import open_job
    from harness.plugins import load_plugins

    load_plugins()  # this process's own plugins (a lockstep side's), which may wrap a backend
    plan = json.loads(Path(plan_path).read_text())
    hooks = ctypes.CDLL(plan["hooks"])
    result_path = Path(plan["result"])
    done: dict[str, Any] = json.loads(result_path.read_text()) if result_path.exists() else {}
    for index, sent in enumerate(plan["jobs"]):
        key = str(index)
        if key in done:
            continue
        done[key] = {"started": True}
        atomic_write_text(result_path, json.dumps(done))
        try:
            payload = JobPayload.of(sent).here(passive_wait=True)  # the backend as this side registers it
            _, _, _, session, _ = open_job(payload, parity=False)
            if isinstance(session, SkipJob):
                done[key] = {"skipped": str(session)}
            else:
                done[key] = _count(session, hooks, index)
        except Exception as exc:  # noqa: BLE001 - a job's failure is its own, never the other jobs'
            done[key] = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]}
        atomic_write_text(result_path, json.dumps(done))


def _count(session: Any, hooks: Any, index: int) -> dict[str, Any]:
    """Warm-up, then the labelled windows. Everything a window runs besides the inferences is the same in every
    window: the labels are made and ctypes' call paths warmed before instrumentation starts (ctypes' first call
    of a function builds its converters: ~17 k instructions that landed in the first window only), and Python's
    cyclic collector is off (it runs after every ~700 allocations, in some windows and not others), as timeit
    does."""
    import gc

    zero, dump = hooks.callgrind_zero_stats, hooks.callgrind_dump_stats_at
    labels = [f"onebench-job{index}-window{number}".encode() for number in range(len(WINDOWS))]
    try:
        for _ in range(WARMUP):
            session.run()
        zero()
        dump(b"onebench-warm-up")  # instrumentation is off: an empty dump, but ctypes' path is built
        gc.collect()
        gc.disable()
        hooks.callgrind_start_instrumentation()
        for _ in range(SETTLE):  # the first instrumented inference runs code the later ones do not (lazy paths)
            session.run()
        for label, inferences in zip(labels, WINDOWS):
            zero()
            for _ in range(inferences):
                session.run()
            dump(label)
        hooks.callgrind_stop_instrumentation()
        return {"counted": True, "wait_policy": session.info.get("wait_policy")}
    finally:
        gc.enable()
        session.close()


# ---- in the step that starts it (a forked measuring process, or a cluster node) ----

LABEL = re.compile(r"^desc: Trigger: Client Request: onebench-job(\d+)-window(\d+)$", re.M)
TOTALS = re.compile(r"^totals:((?: \d+)+)$", re.M)
EVENT_LINE = re.compile(r"^events:((?: \w+)+)$", re.M)


THREAD_SUFFIX = re.compile(r"-(\d+)$")  # `--separate-threads=yes`: one dump file per thread, callgrind.PID.N-TT


def read_dumps(folder: Path) -> dict[int, dict[int, dict[int, dict[str, int]]]]:
    """Every labelled dump of the folder: job index -> window number -> thread -> event totals."""
    found: dict[int, dict[int, dict[int, dict[str, int]]]] = {}
    for path in folder.glob("callgrind.*"):
        text = path.read_text(errors="replace")
        label, totals, events = LABEL.search(text), TOTALS.search(text), EVENT_LINE.search(text)
        if label and totals and events:
            values = dict(zip(events.group(1).split(), map(int, totals.group(1).split())))
            thread = THREAD_SUFFIX.search(path.name)
            job, window = int(label.group(1)), int(label.group(2))
            found.setdefault(job, {}).setdefault(window, {})[int(thread.group(1)) if thread else 1] = values
    return found


def of_threads(windows: dict[int, dict[int, dict[str, int]]], threads: int) -> tuple[dict[int, dict[str, int]], str]:
    """Each window's totals over the threads that count, and which they were. A one-thread job counts the
    thread that ran its inferences (the one with the most work in the 2-inference window): the process has
    other threads (the runtime's, torch's, Python's) whose odd bit of background work lands in whichever
    window is open when the scheduler runs them, which moved MobileNetV2's count on ONNX Runtime by 0.4%
    (the inference thread alone: 0.0015%). A job of several threads sums every thread, background ones
    included: its count is the work of the whole process during the window."""
    two = next((w for w, k in enumerate(WINDOWS) if k == 2), 0)
    if threads == 1 and windows.get(two):
        thread = max(windows[two], key=lambda t: windows[two][t].get("Ir", 0))
        return ({w: by_thread[thread] for w, by_thread in windows.items() if thread in by_thread},
                f"the inference thread only ({len(windows[two])} thread(s) worked in the window)")
    summed = {w: {e: sum(v.get(e, 0) for v in by_thread.values()) for e in EVENTS} for w, by_thread in windows.items()}
    return summed, "every thread of the process, summed"


def per_inference(windows: dict[int, dict[str, int]]) -> dict[str, Any]:
    """One job's counted block from its three windows, or {"missing": why} where the count wanders."""
    if sorted(windows) != list(range(len(WINDOWS))):
        return {"missing": f"callgrind wrote {len(windows)} of the {len(WINDOWS)} windows"}
    ones = [windows[i] for i, k in enumerate(WINDOWS) if k == 1]
    two = next(windows[i] for i, k in enumerate(WINDOWS) if k == 2)
    wander = abs(ones[0]["Ir"] - ones[1]["Ir"]) / max(ones[1]["Ir"], 1)
    if wander > WANDER_LIMIT:
        return {"missing": f"the count wanders: two windows of one inference differ by {wander:.3%} of their "
                           f"instructions (limit {WANDER_LIMIT:.1%}); not published",
                "windows": [{"inferences": k, "Ir": windows[i]["Ir"]} for i, k in enumerate(WINDOWS)]}
    each = {e: two[e] - ones[1][e] for e in EVENTS if e in two}  # the edge cancels; the first window only checks
    l1 = each.get("I1mr", 0) + each.get("D1mr", 0) + each.get("D1mw", 0)
    ll = each.get("ILmr", 0) + each.get("DLmr", 0) + each.get("DLmw", 0)
    return {"instructions": round(each["Ir"]), "l1_misses": round(l1), "ll_misses": round(ll),
            "cycles_estimated": round(each["Ir"] + 10 * l1 + 100 * ll), "cycles_formula": CYCLES,
            "events": {e: round(v) for e, v in each.items()}, "wander": round(wander, 6),
            "windows": [{"inferences": k, "Ir": windows[i]["Ir"]} for i, k in enumerate(WINDOWS)]}


def count_step(payload: CountPayload) -> dict[str, Any]:
    """A launcher step: count the payload's jobs (one backend's, on this node) under valgrind, in as few
    processes as crashes allow. Returns {"counted": {job id: counted block or {"missing": why}}}."""
    import tempfile

    version = valgrind_version()
    hooks = hooks_library()
    ids = payload.ids
    if version is None or hooks is None:
        why = f"valgrind is not installed here ({INSTALL})" if version is None else f"no instrument hooks ({HOOKS_INSTALL})"
        return {"counted": {i: {"missing": why} for i in ids}}
    folder = Path(tempfile.mkdtemp(prefix="onebench-counted-"))
    try:
        plan, result = folder / "plan.json", folder / "result.json"
        plan.write_text(json.dumps({"jobs": [p.as_dict() for p in payload.jobs], "hooks": str(hooks),
                                    "result": str(result)}))
        side = payload.env  # a lockstep side's own variables (`bench ab --counted`)
        env = {**os.environ, **side, **PINNED_ENV, "PYTHONPATH": os.pathsep.join(
            p for p in (payload.project_root, side.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))) if p)}
        command = valgrind_command(payload.python or sys.executable, folder, plan)
        exits: list[str] = []
        started = time.monotonic()
        while True:
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=max(60.0, payload.timeout_s - (time.monotonic() - started)))
            states = json.loads(result.read_text()) if result.exists() else {}
            crashed = [k for k, v in states.items() if v == {"started": True}]
            if done.returncode == 0 or not crashed:
                break
            for key in crashed:  # the job that was running when the process died: its own error, the rest go on
                states[key] = {"error": f"the process died under valgrind (exit {done.returncode}): "
                                        f"{_last_line(done.stderr)}"}
            exits.append(str(done.returncode))
            atomic_write_text(result, json.dumps(states))
            if len(states) >= len(ids):
                break
        states = json.loads(result.read_text()) if result.exists() else {}
        dumps = read_dumps(folder)
        blocks: dict[str, Any] = {}
        common = {"tool": "callgrind", "valgrind": version, "simulated_cpu": SIMULATED_CPU,
                  "pins": pins(bool(shutil.which("setarch")))}
        for index, job_id in enumerate(ids):
            state = states.get(str(index)) or {"error": f"never reached (valgrind exited {done.returncode}: "
                                                        f"{_last_line(done.stderr)})"}
            if "counted" in state:
                windows, which = of_threads(dumps.get(index, {}), payload.jobs[index].job.threads)
                block = per_inference(windows)
                if "missing" not in block:
                    block = {**block, **common, "threads_counted": which, "wait_policy": state.get("wait_policy")}
            else:
                block = {"missing": state.get("skipped") or state.get("error") or "not counted"}
            blocks[job_id] = block
        return {"counted": blocks}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


UNDECODABLE = "vex amd64->IR: unhandled instruction"  # what valgrind says before a SIGILL on code it cannot run


def _last_line(text: str) -> str:
    """Why the counted process died, in one line: an instruction valgrind cannot decode is said as such (an
    AVX-512 kernel compiled for this host, as Inductor's packages are, where valgrind simulates an AVX2 CPU)."""
    if UNDECODABLE in (text or ""):
        return ("valgrind cannot decode an instruction of this job's code (a kernel compiled for this host's ISA, "
                "e.g. AVX-512, where valgrind's simulated CPU has AVX2): not countable")
    lines = [line for line in (text or "").splitlines() if line.strip() and not line.startswith(("==", "--"))]
    return (lines[-1] if lines else "no output")[:200]


if __name__ == "__main__":
    count_main(sys.argv[1])
