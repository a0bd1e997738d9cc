"""What runs inside one measurement process: build, open, warm up, measure, check parity.

The runner forks a fresh process per repeat (from a fork server that has already imported torch, so
a process costs milliseconds, not seconds). Nothing here decides whether numbers are trustworthy;
it only measures and reports.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

# before the memory baseline: `stats` imports it lazily, and its ~60 MB inside a timed process were the model's peak
import scipy.stats  # noqa: F401
import torch

import model_zoo
from backends import registry
from backends.base import OpenContext, Session, SkipJob
from backends.calibration import Calibration
from harness.host import energy, gpu, machine, memory
from harness.host.environment import library_versions
from harness.measure import calibration, paired, recipe, windows
from harness.measure.jobs import Job
from harness.measure.parity import compare
from harness.measure.payload import JobPayload
from harness.measure.protocol import (
    PARITY_SEED,
    TIMING_SEED,
    WEIGHTS_SEED,
    Measurement,
    ProtocolConfig,
    measure,
    measure_beside,
    warm_up,
)
from harness.measure.reference import build as build_reference
from harness.measure.reference import for_job as reference_for
from harness.measure.reference import identity as reference_identity
from harness.measure.stats import summarize
from harness.plugins import load_plugins
from model_zoo.preprocess import at_size
from model_zoo.weights import state_sha256


def macs_or_none(model: torch.nn.Module, input_size: int) -> int | None:
    """The model's counted MACs for one image; None where the counter cannot trace it (a plugin's model):
    the record then has no GFLOP/s rather than the job failing."""
    try:
        return model_zoo.count_macs(model, input_size)
    except Exception:  # noqa: BLE001 - counting is a by-product of the measurement, never its failure
        return None


def input_tensor(job: Job, seed: int) -> np.ndarray:
    """The seeded float32 NCHW input, allocated before timing."""
    return np.random.default_rng(seed).standard_normal((job.batch, 3, job.input_size, job.input_size), dtype=np.float32)


# int8's parity is also judged on top-1 agreement, which needs more than one input: this many, from the
# calibration set (real images when `--calibration` gave a folder, else its seeded random input).
PARITY_INT8_INPUTS = 16


def parity_inputs(job: Job, calib: Calibration | None) -> list[np.ndarray]:
    """The inputs parity compares on, in the job's batch: one seeded input, or for int8 the first of the
    calibration set."""
    if job.precision != "int8" or calib is None:
        return [input_tensor(job, PARITY_SEED)]
    return list(calib.batches(job.batch, limit=max(PARITY_INT8_INPUTS, job.batch)))


@dataclass(frozen=True)
class Reference:
    """PyTorch fp32's outputs on the parity inputs, to check a session against."""

    inputs: list[np.ndarray]
    outputs: np.ndarray

    def check(self, session: Session, precision: str) -> dict[str, Any]:
        output = np.concatenate([np.asarray(session.infer(x), dtype=np.float32) for x in self.inputs])
        return compare(output, self.outputs, precision).as_dict()


def boundary_timer(session: Session, job: Job) -> Callable[[], int] | None:
    """The device timer for a `device`-boundary job; None (host clock around `run`) when `run` spans
    the job's boundary. A mismatch is an error, never a number under the wrong label."""
    if job.boundary == "device":
        if session.device_timer is None:
            raise RuntimeError(f"{job.backend} has no device timer, so it cannot measure the device boundary")
        return session.device_timer
    if job.boundary != session.boundary:
        raise RuntimeError(f"{job.backend} measures the {session.boundary} boundary, not {job.boundary}")
    return None


def open_job(payload: JobPayload, parity: bool,
             usage: memory.Usage | None = None) -> tuple[Job, dict, np.ndarray | None, Any, float]:
    """Build the model and open the backend's session (cached artifact); the PyTorch fp32 reference
    output when `parity`; into `usage` the resident memory just before the backend opens (its baseline).
    Returns (job, model info, reference, session or SkipJob, build seconds)."""
    load_plugins()
    payload.bring_model()
    job = payload.job
    torch.set_num_threads(job.threads)
    start = time.perf_counter()
    torch.manual_seed(WEIGHTS_SEED)
    model = model_zoo.create(job.model, form=job.form, weights=payload.weights)
    build_s = time.perf_counter() - start
    weights_sha = state_sha256(model)
    info = {"params": model_zoo.count_params(model), "weights_sha256": weights_sha}
    pre = at_size(model_zoo.get_spec(job.model).preprocess, job.input_size)
    calib = calibration.build(payload.calibration, pre) if payload.calibration else None
    reference = None
    if parity:  # round 0: the reference output, and the work one inference does (for GFLOP/s)
        inputs = parity_inputs(job, calib)
        with torch.inference_mode():
            reference = Reference(inputs, np.concatenate([model(torch.from_numpy(x)).float().numpy() for x in inputs]))
        info["macs"] = macs_or_none(model, job.input_size)
    model, prepared = recipe.apply(model, job.spec())
    ctx = OpenContext(Path(payload.cache_dir), state_sha256(model) if prepared else weights_sha,
                      input_tensor(job, TIMING_SEED), passive_wait=payload.passive_wait, calibration=calib)
    backend = registry.load(payload.backend_ref)
    if usage is not None:  # the runtime imported first: its code is the process's, not the deployment's
        imported(backend.preload + tuple(p.replace("-", "_") for p in backend.packages))
        usage.baseline, usage.model = memory.baseline_bytes(), memory.model_bytes(model)
    try:
        session = backend.open(model, job.spec(), ctx)
    except SkipJob as skip:
        return job, info, reference, skip, build_s
    if prepared:
        session.info = {**session.info, "int8_recipe": prepared}
    wrapper = registry.wrapper_of(job.backend, payload.backend_ref)
    if wrapper:
        session.info = {**session.info, "wrapped_by": wrapper}
    return job, info, reference, session, build_s


def prepare_process(payload: JobPayload, usage: memory.Usage | None = None) -> dict[str, Any]:
    """Round 0 of a sweep: build or load the artifact, time the first inference, check parity.

    Every job is prepared before any is timed, so exports and compiles never share a round with
    measurements, and a job that cannot run is known before the rounds start.
    """
    job, info, reference, session, build_s = open_job(payload, parity=True, usage=usage)
    if isinstance(session, SkipJob):
        return {"skipped": session.reason, "artifact": sized(session.artifact), "backend_info": session.info,
                "model_info": info, "cold_start": {"build_s": build_s, **session.cold}}
    t0 = time.perf_counter()
    session.run()
    first_ms = (time.perf_counter() - t0) * 1e3
    if usage is not None:
        usage.opened()
    parity = reference.check(session, job.precision)
    session.close()
    return {"parity": parity, "artifact": sized(session.artifact), "backend_info": session.info, "model_info": info,
            "cold_start": {"build_s": build_s, **session.cold, "first_inference_ms": first_ms},
            "libraries": library_versions()}


def imported(modules: tuple[str, ...]) -> None:
    """Import what a backend's `open` would (a missing one is the backend's to report when it opens)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - ImportError, or a runtime that fails on import: open() says why
            pass


def sized(artifact: dict[str, Any]) -> dict[str, Any]:
    """The artifact block with its bytes on disk (what the runtime loads; None without a file)."""
    return {**artifact, "bytes": memory.artifact_bytes(artifact.get("path"))} if artifact else artifact


def build_artifact(payload: JobPayload) -> dict[str, Any]:
    """`bench prepare`: open the session once so the backend builds and caches its artifact; time nothing."""
    _, _, _, session, build_s = open_job(payload, parity=False)
    if isinstance(session, SkipJob):
        return {"skipped": session.reason, "artifact": session.artifact, "cold_start": {"build_s": build_s, **session.cold}}
    session.close()
    return {"artifact": session.artifact, "cold_start": {"build_s": build_s, **session.cold}}


def peak_rss_mb() -> float:
    """Peak resident memory of this process: ru_maxrss is KiB on Linux, bytes on macOS."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def measure_process(payload: JobPayload, opened: memory.Usage | None = None) -> dict[str, Any]:
    """One timed process of a round: open the prepared artifact, warm up, measure in windows. `opened`: the
    memory its first open in this process held (a one-process job prepares first: a second open would reuse
    what the first freed, and read less than the deployment holds)."""
    job, cfg = payload.job, payload.protocol
    before = machine.snapshot()
    probe = machine.probe(job.threads) if cfg.probe else {}
    usage = opened or memory.Usage(0)
    job, info, _, session, _ = open_job(payload, parity=False, usage=None if opened else usage)
    if isinstance(session, SkipJob):
        raise RuntimeError(f"prepared earlier, but now: {session.reason}")
    session.run()
    if not opened:
        usage.opened()
    gpu_before = gpu.snapshot() if job.device == "cuda" else {}
    beside = reference_for(job, cfg.reference)
    span = energy.Span(job.device, "a pinned reference workload took turns with the job: a counter cannot tell them "
                                   "apart (--reference none measures energy)" if beside else None)
    if beside:  # the pinned reference takes turns with the job, window by window
        step = boundary_timer(session, job) or paired.host_timed(session.run)
        pinned = build_reference(beside, job.threads, Path(payload.cache_dir))
        usage.timing()
        result, alt = measure_beside(step, pinned, cfg)
        timed = {**timed_fields(result, cfg), "windows": windows.of_windows(alt.samples[0]),
                 "reference": {**reference_identity(beside), "window_p50_ns": alt.medians[1]}}
    else:
        usage.timing()
        span.start()
        result = measure(session.run, cfg, timed_run=boundary_timer(session, job))
        timed = timed_fields(result, cfg)
    usage.timed()
    spent = span.stop(len(result.samples_ns) + len(result.warmup_ns))
    after = machine.snapshot()
    gpu_state = {"before": gpu_before, "after": gpu.snapshot(), **session.memory()} if job.device == "cuda" else None
    session.close()
    return {
        **timed,
        "machine": machine.between(before, after),
        "probe": probe,
        "peak_rss_mb": peak_rss_mb(),
        "memory": usage.as_dict(),
        "energy": spent,
        "boundary": job.boundary,
        "gpu": gpu_state,
        "wait_policy": session.info.get("wait_policy"),
    }


def timed_fields(result: Measurement, cfg: ProtocolConfig) -> dict[str, Any]:
    """A process record's timing part: raw samples, their summary and windows. Valid for any sample count
    (a summary's CI is None below the 6 samples a 95% CI of the median needs)."""
    return {
        "samples_ns": result.samples_ns,
        "warmup_ns": result.warmup_ns,
        "warmup_converged": result.warmup_converged,
        "stop_reason": result.stop_reason,
        "wall_s": result.wall_s,
        "summary": summarize(result.samples_ns).as_dict(),
        "windows": windows.summaries(result.samples_ns, cfg.window_s),
    }


def prepare_and_measure(payload: JobPayload) -> dict[str, Any]:
    """A one-process job (`--quick`): no rounds to keep builds out of, so one process prepares and
    measures (the prepared state rides along under "prepared")."""
    usage = memory.Usage(0)
    prepared = prepare_process(payload, usage)
    if "skipped" in prepared:
        return prepared
    return {**measure_process(payload, usage), "prepared": prepared}


_PARENT: list[Any] = []  # the pipe to the parent, in a step's process (`child_main`)


def report(done: int, of: int) -> None:
    """Tell the parent how far this step's process got (a `Step.progress` hears it); nothing outside a step."""
    if _PARENT:
        with contextlib.suppress(OSError):
            _PARENT[0].send(("progress", done, of))


def child_main(target: str, payload: Any, conn) -> None:
    """Entry point of the forked process: send ("ok", target(payload)) or ("error", message, traceback).
    A native crash cannot send anything: faulthandler writes its Python stack to stderr instead. Ctrl-C
    is the parent's to handle (it stops the sweep, which resumes later): the child ignores it rather than
    print a traceback of its own, and a result it can no longer send (the parent stopped) is dropped quietly."""
    faulthandler.enable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _PARENT[:] = [conn]
    try:
        module, _, name = target.partition(":")
        result: tuple = ("ok", getattr(importlib.import_module(module), name)(payload))
    except BaseException as exc:  # noqa: BLE001 - everything a job raises becomes its record
        lines = traceback.format_exception(exc)
        result = ("error", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:500],
                  "".join(lines)[-4000:])
    try:
        conn.send(result)
    except OSError:  # the parent is gone (Ctrl-C stopped the sweep, which resumes later): nothing to say
        pass
    finally:
        conn.close()
        sys.stdout.flush()


def serve(commands: IO[str], replies: IO[str]) -> None:
    """A resident lockstep side (`harness.measure.paired.serve`): open the job's session once, warm it up,
    check parity, then time one window per command. Its runtime is opened with a passive wait policy, so
    it does not spin while the other side has the turn."""
    state: dict[str, Any] = {}

    def open_side(sent: dict[str, Any]) -> tuple[paired.Step | None, dict[str, Any]]:
        load_plugins()  # this side's own registry: a plugin may wrap a backend on one side only
        payload = JobPayload.of(sent).here(passive_wait=True)
        state["before"], state["memory"] = machine.snapshot(), memory.Usage(0)
        job, info, reference, session, build_s = open_job(payload, parity=payload.parity, usage=state["memory"])
        if isinstance(session, SkipJob):
            return None, {"skipped": session.reason}
        state["session"] = session
        step = boundary_timer(session, job) or paired.host_timed(session.run)
        warm_up(step, payload.protocol)
        state["memory"].opened()
        parity = reference.check(session, job.precision) if reference is not None else None
        state["memory"].timing()  # the windows to come: their peak
        return step, {"parity": parity, "artifact": sized(session.artifact), "backend_info": session.info, "model_info": info,
                      "cold_start": {"build_s": build_s, **session.cold}, "libraries": library_versions(),
                      "wait_policy": session.info.get("wait_policy")}

    def finish() -> dict[str, Any]:
        state["memory"].timed()
        state["session"].close()
        return {"machine": machine.between(state["before"], machine.snapshot()), "peak_rss_mb": peak_rss_mb(),
                "memory": state["memory"].as_dict()}

    paired.serve(commands, replies, open_side, finish)


if __name__ == "__main__":  # `python -m harness.measure.worker --serve`: a resident lockstep side
    sys.exit(paired.serve_main(sys.argv, "harness.measure.worker", serve))
