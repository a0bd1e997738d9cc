"""An iPhone job as one step of a cluster sweep, run on the Mac the phone is attached to.

The step does by itself what a person does by hand: `bench export --bundle` for the one job, the Swift
runner (`runners/ios/run-on-iphone.sh BUNDLE OUT.json`) on the phone, and the checks `bench ingest` makes
on its results. It returns the job's processes as the phone timed them, and the phone's host block; the
driver builds the record like any other. `ONEBENCH_IPHONE_RUNNER` names another runner (tests use a fake).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness import PROJECT_ROOT
from harness.device.bundle import export_bundle
from harness.device.ingest import host_of, read_results, result_prepared, result_processes
from harness.errors import HarnessError
from harness.measure.payload import JobPayload
from harness.plugins import load_plugins

RUNNER_ENV = "ONEBENCH_IPHONE_RUNNER"
RUNNER = PROJECT_ROOT / "runners" / "ios" / "run-on-iphone.sh"


def runner_path() -> Path:
    return Path(os.environ.get(RUNNER_ENV) or RUNNER)


def measure_on_device(payload: JobPayload) -> dict[str, Any]:
    """Export, run on the phone, read back: {"prepared", "processes", "host"} (a measurement worker target)."""
    load_plugins()  # a plugin's model, as every measurement process loads them
    job, cfg = payload.job, payload.protocol
    with tempfile.TemporaryDirectory(prefix="onebench-iphone-") as tmp:
        bundle, out = Path(tmp) / "bundle", Path(tmp) / "results.json"
        export_bundle(job.backend, [job.model], [job.precision], [job.device], bundle, cfg,
                      Path(payload.cache_dir), payload.weights)
        done = subprocess.run(["bash", str(runner_path()), str(bundle), str(out)], capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            raise HarnessError(f"the iPhone runner failed: {tail[0]}")
        data = read_results(out)
    result = next((r for r in data["results"] if r["job_id"] == job.id), None)
    if result is None:
        raise HarnessError(f"the iPhone runner returned no result for {job.id}")
    if result["status"] != "ok":
        raise HarnessError(f"on the phone: {result.get('message') or 'the device runner reported an error'}")
    return {"prepared": result_prepared(result, job, data["runner"]), "processes": result_processes(result, cfg),
            "host": host_of(data)}
