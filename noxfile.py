"""Sessions: `nox -s tests` (what CI runs). Reuse the environment while iterating: `nox -R -s tests`."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
CONSTRAINTS = ("-c", "constraints.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """Install the project with every CPU runtime at CI's pinned versions, then run the test suite."""
    session.install(*CONSTRAINTS, "-e", ".[all,test]")
    # one worker per core (pytest-xdist): the tests are mostly processes waiting on other processes
    session.run("python", "-m", "pytest", "-q", "-n", "auto", *session.posargs)


@nox.session
def nightly(session: nox.Session) -> None:
    """The nightly regression gate: default sweep vs results/baseline; fails on a regression."""
    session.install(*CONSTRAINTS, "-e", ".[all]")
    session.run("bench", "nightly", *session.posargs)


@nox.session
def gpu_check(session: nox.Session) -> None:
    """benchmarks/gpu_check.sh on a machine with an NVIDIA GPU and a network: installs with dependencies here
    (the script's offline --no-deps install is for the borrowed machine without one)."""
    session.install(*CONSTRAINTS, "-e", ".[test]", "nvidia-ml-py")
    session.run("bash", "benchmarks/gpu_check.sh", *session.posargs, external=True,
                env={"GPU_CHECK_INSTALL": "0", "GPU_CHECK_PYTHON": str(Path(session.bin) / "python")})
