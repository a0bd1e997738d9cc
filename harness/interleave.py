"""`bench compare --interleave`: measure baseline and candidate alternately, A B A B, in one window.

On a shared host, slow stretches last seconds to minutes and move whole processes; two runs made
minutes apart can differ by more than any real regression. Alternating fresh processes of the two
sides spreads those stretches over both. A side is an interpreter (another virtual environment, for
a runtime upgrade), environment variables, and optionally a checkpoint; each process is started as
`PYTHON -m harness.worker` so the sides can be different installs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends import registry
from harness import environment, records, store
from harness.errors import HarnessError
from harness.jobs import Job
from harness.protocol import ProtocolConfig
from harness.runner import RunContext, ensure_writable, judged, make_record


@dataclass(frozen=True)
class Side:
    name: str
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)
    weights: str | None = None


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    env = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise HarnessError(f"--*-env takes KEY=VALUE, not {pair!r}")
        env[key] = value
    return env


def run_process(side: Side, payload: dict[str, Any], timeout_s: float) -> tuple:
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "payload.json", Path(tmp) / "result.json"
        src.write_text(json.dumps({**payload, "weights": side.weights}))
        env = {**os.environ, **side.env, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
        try:
            done = subprocess.run([side.python, "-m", "harness.worker", str(src), str(dst)], env=env,
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return ("error", f"timed out after {timeout_s:g} s", "")
        except OSError as exc:
            raise HarnessError(f"cannot start {side.python} for the {side.name} side: {exc.strerror}") from None
        if not dst.exists():
            tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            return ("error", f"the {side.name} process died: {tail[0][:300]}", done.stderr[-4000:])
        return tuple(json.loads(dst.read_text()))


def run_interleaved(jobs: list[Job], cfg: ProtocolConfig, sides: tuple[Side, Side], out_dir: Path,
                    cache_dir: Path, progress=None) -> tuple[list[dict], list[dict]]:
    """Alternate the two sides process by process; write each side's records as an ordinary run."""
    if cfg.repeats < 2:
        raise HarnessError("--interleave needs at least 2 processes per side (--repeats 2 or more)")
    host = environment.capture()
    runs = []
    for side in sides:
        folder = out_dir / side.name
        ensure_writable(folder)
        runs.append(RunContext(f"{out_dir.name}-{side.name}", folder, dict(host), cfg, cache_dir, side.weights))
    results: tuple[list[dict], list[dict]] = ([], [])
    for job in jobs:
        backend = registry.get(job.backend)
        reason = None if backend.availability().ok else backend.availability().reason
        reason = reason or backend.unsupported(job.spec())
        per_side: list[list[dict]] = [[], []]
        error = None
        for repeat in range(cfg.repeats):
            order = (0, 1) if repeat % 2 == 0 else (1, 0)  # A B, B A, ...: neither side always goes first
            for i in order:
                if reason or error:
                    break
                if progress:
                    progress(job, sides[i].name, repeat)
                payload = {"job": job.as_dict(), "protocol": cfg.as_dict(), "backend_ref": registry.ref(job.backend),
                           "cache_dir": str(cache_dir), "parity": repeat == 0}
                outcome = run_process(sides[i], payload, cfg.timeout_s)
                if outcome[0] != "ok":
                    error = f"{sides[i].name} process {repeat}: {outcome[1]}"
                else:
                    per_side[i].append(outcome[1])
        for i, run in enumerate(runs):
            if reason:
                rec = make_record(run, job, "skipped", reason)
            elif error:
                rec = make_record(run, job, "error", error)
            else:
                run.host = {**host, "libraries": per_side[i][0]["libraries"]}
                rec = judged(make_record(run, job, "ok", "", per_side[i]), cfg)
            path = run.out_dir / "records" / f"{job.id}.json"
            records.write_record(path, rec)
            results[i].append(rec)
    for run in runs:
        records.atomic_write_text(run.out_dir / "run.json", store.dumps(
            {"run_id": run.run_id, "host": run.host, "protocol": cfg.as_dict(), "interleaved": True,
             "jobs": [j.as_dict() for j in jobs]}))
    return results
