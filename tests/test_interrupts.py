"""An interrupt `bench` has handled ends as exit 130 and one line, wherever it landed: while the CLI imports,
inside a command, or inside code run by `exec()` (where CPython would otherwise kill the process with SIGINT
at exit, after it had said "interrupted"). The mid-sweep signals themselves: tests/test_interrupt_e2e.py."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import entry
from harness.cli import EXIT_INTERRUPTED
from tests.helpers import ROOT


def test_an_interrupt_while_bench_starts_is_one_line_and_exit_130(monkeypatch, capsys) -> None:
    """Ctrl-C before the CLI has finished importing (the console script's own import) is not a traceback."""
    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "harness.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as stopped:
        entry.main()
    assert stopped.value.code == EXIT_INTERRUPTED == entry.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted while starting; nothing was run\n"


# A KeyboardInterrupt leaving exec() of a string, as one landing while a dataclass or namedtuple is created
# (a lazy import mid-sweep), and then handled: by main() itself, or by the command (exit 130 via SystemExit).
APPS = {
    "handled by main": "def app():\n    exec('raise KeyboardInterrupt')\n",
    "handled by the command": ("def app():\n    try:\n        exec('raise KeyboardInterrupt')\n"
                               "    except KeyboardInterrupt:\n        raise SystemExit(130)\n"),
}


def _run_module(folder: Path, source: str) -> subprocess.CompletedProcess:
    """`python -m` a module of `source`, as `python -m harness.cli` runs: CPython checks its exit-by-SIGINT mark
    after a `-m` module's SystemExit (a `-c` program exits before the check)."""
    (folder / "interrupted_app.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(folder)])}
    return subprocess.run([sys.executable, "-m", "interrupted_app"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("where", list(APPS))
def test_a_handled_interrupt_from_inside_exec_exits_130_not_by_sigint(where: str, tmp_path: Path) -> None:
    done = _run_module(tmp_path, f"import harness.cli as cli\n{APPS[where]}cli.app = app\ncli.main()\n")
    assert done.returncode == EXIT_INTERRUPTED, (done.returncode, done.stderr[-2000:])  # -2: killed by SIGINT
    assert "Traceback" not in done.stderr


def test_the_interrupt_seen_in_exec_would_kill_a_plain_interpreter_by_sigint(tmp_path: Path) -> None:
    """The witness that the case above is real on this interpreter (CPython 3.11 sets its exit-by-SIGINT mark)."""
    done = _run_module(tmp_path, "import sys\ntry:\n    exec('raise KeyboardInterrupt')\n"
                                 "except KeyboardInterrupt:\n    pass\nsys.exit(130)\n")
    if done.returncode == EXIT_INTERRUPTED:
        pytest.skip(f"this interpreter ({sys.version.split()[0]}) does not die by SIGINT after a caught interrupt")
    assert done.returncode == -2
