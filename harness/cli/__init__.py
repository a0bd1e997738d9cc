"""The `bench` command: a thin layer; each command parses, calls one function that tests call too, prints.

Commands live by group (listing, measure, report, track, device, cluster) over `common` (the app, consoles,
`user_errors`, shared options); importing this package registers them all on `app`."""

import os

# The order of these imports is the order `bench --help` lists the command groups in.
# isort: off
from harness.cli import measure  # noqa: F401  (each import registers its commands on `app`)
from harness.cli import profile  # noqa: F401
from harness.cli import report  # noqa: F401
from harness.cli import track  # noqa: F401
from harness.cli import device  # noqa: F401
from harness.cli import cluster  # noqa: F401
from harness.cli import listing  # noqa: F401
# isort: on
from harness.cli.common import EXIT_INTERRUPTED, app, err, interrupted_note

__all__ = ["app", "main"]


def main() -> None:
    """`bench`: the app, and an interrupt that lands outside a command's own handling (while typer unwinds, or
    as the interpreter exits) still ends in exit 130 with one line: never a traceback, never death by SIGINT."""
    import signal
    import sys

    try:
        app()
        code: object = 0
    except KeyboardInterrupt:
        err.print(interrupted_note(None), markup=False, highlight=False)
        code = EXIT_INTERRUPTED
    except SystemExit as exc:
        code = exc.code
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # nothing interrupts the exit itself
            signal.signal(signum, signal.SIG_IGN)
    if code == EXIT_INTERRUPTED and not _forget_interrupt():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)  # an interpreter whose mark cannot be cleared would die by SIGINT at exit
    sys.exit(code)


def _forget_interrupt() -> bool:
    """CPython (3.11) marks the interpreter to kill itself with SIGINT at exit whenever a KeyboardInterrupt leaves
    an `exec()` of a string, even one caught later: dataclass and namedtuple creation exec strings, so a signal
    that lands during a lazy import mid-sweep made `bench` die by SIGINT (-2) after it had said "interrupted"
    (twice in CI runs beside a hog). The interrupt was handled: clear the mark. False where this interpreter
    does not expose it."""
    import ctypes

    try:
        ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 0
    except (AttributeError, ValueError, OSError):
        return False
    return True
