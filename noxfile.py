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
