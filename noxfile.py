"""Sessions: `nox -s tests` (what CI runs). Reuse the environment while iterating: `nox -R -s tests`."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
CONSTRAINTS = ("-c", "constraints.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """Install the project with every CPU runtime at CI's pinned versions, then run the test suite."""
    session.install(*CONSTRAINTS, "-e", ".[all,test]")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session
def nightly(session: nox.Session) -> None:
    """The nightly regression gate: default sweep vs results/baseline; fails on a regression."""
    session.install(*CONSTRAINTS, "-e", ".[all]")
    session.run("bench", "nightly", *session.posargs)
