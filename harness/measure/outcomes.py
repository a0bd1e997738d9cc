"""What one step of a job came back as, the launcher seam's contract: Done, Skipped, Failed or Lost.

A measurement process sends ("ok", result) or ("error", message, detail) over its pipe (`worker.child_main`);
`from_child` turns that into one of these types at the seam, so the driver, `bench prepare`, `bench profile`
and the self-check dispatch on a type instead of a tuple's first element, and "skipped" no longer travels
inside an "ok" dict. A cluster adds the fourth: the node running the step was lost (`Lost`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Done:
    """The step ran: its process's result (a measured process, a prepared state, a build, a profile)."""

    result: dict[str, Any]


@dataclass(frozen=True)
class Skipped:
    """The job cannot run where the step landed (a runtime refused it): why, and what was prepared first
    (artifact, backend info, cold start) for its `skipped` record."""

    reason: str
    prepared: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """The step's process failed (an exception, a crash, a timeout): one line, and the traceback if any."""

    message: str
    detail: str = ""


@dataclass(frozen=True)
class Lost:
    """The node that ran the step is gone (a cluster node died mid-job): the driver may start it elsewhere."""

    message: str


Outcome = Done | Skipped | Failed | Lost


def from_child(message: tuple) -> Outcome:
    """A worker process's ("ok", result) or ("error", message, detail), typed."""
    if message[0] != "ok":
        return Failed(message[1], message[2] if len(message) > 2 else "")
    result = message[1]
    if isinstance(result, dict) and "skipped" in result:
        return Skipped(result["skipped"], {k: v for k, v in result.items() if k != "skipped"})
    return Done(result)
