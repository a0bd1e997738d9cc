"""Sessions. A contributor runs the fast lane, `nox -s tests` (under 4 minutes on 2 cores); CI runs both lanes,
`nox -s ci` (the fast lane, then the slow lane: end-to-end exports, compiles, venvs, full-size models).
`nox -s coverage` runs both lanes under pytest-cov (lines and branches). Reuse an environment with `nox -R`."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
CONSTRAINTS = ("-c", "constraints.txt")
# one worker per core (pytest-xdist): the tests are mostly processes waiting on other processes
FAST = ("-m", "not slow", "-n", "auto")
# the slow lane's module fixtures (a quick sweep, a site, a bundle, wheels) are built once: a module per worker;
# its 15 slowest tests are listed in every CI log, so where the lane spends its time is always on record
SLOW = ("-m", "slow", "-n", "auto", "--dist", "loadscope", "--durations=15")


def _install(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "-e", ".[all,cluster,test]")


@nox.session
def tests(session: nox.Session) -> None:
    """The fast lane: every behaviour, on tiny models and test doubles (what a contributor runs)."""
    _install(session)
    session.run("python", "-m", "pytest", "-q", *FAST, *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """The slow lane alone: end-to-end sweeps, exports and compiles, full-size models, fresh environments."""
    _install(session)
    session.run("python", "-m", "pytest", "-q", *SLOW, *session.posargs)


@nox.session
def ci(session: nox.Session) -> None:
    """What CI runs (`.ci/run`): the fast lane, then the slow lane, in one environment; both must pass."""
    _install(session)
    session.run("python", "-m", "pytest", "-q", *FAST, *session.posargs)
    session.run("python", "-m", "pytest", "-q", *SLOW, *session.posargs)


@nox.session
def coverage(session: nox.Session) -> None:
    """Both lanes under pytest-cov, lines and branches, one combined report (the figure the suite keeps)."""
    _install(session)
    cov = ("--cov=harness", "--cov=backends", "--cov=model_zoo", "--cov-branch")
    session.run("python", "-m", "pytest", "-q", *FAST, *cov, "--cov-report=")
    session.run("python", "-m", "pytest", "-q", *SLOW, *cov, "--cov-append", "--cov-report=term:skip-covered",
                *session.posargs)


@nox.session
def nightly(session: nox.Session) -> None:
    """The nightly regression gate (`bench nightly`; the workflow passes --baseline-constraints)."""
    session.install(*CONSTRAINTS, "-e", ".[all]")
    session.run("bench", "nightly", *session.posargs)


@nox.session
def gpu_check(session: nox.Session) -> None:
    """benchmarks/gpu_check.sh on a machine with an NVIDIA GPU and a network: installs with dependencies here
    (the script's offline --no-deps install is for the borrowed machine without one)."""
    session.install(*CONSTRAINTS, "-e", ".[test]", "nvidia-ml-py")
    session.run("bash", "benchmarks/gpu_check.sh", *session.posargs, external=True,
                env={"GPU_CHECK_INSTALL": "0", "GPU_CHECK_PYTHON": str(Path(session.bin) / "python")})
