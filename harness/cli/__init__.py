"""The `bench` command: a thin layer; each command parses, calls one function that tests call too, prints.

Commands live by group (listing, measure, report, track, device, cluster) over `common` (the app, consoles,
`user_errors`, shared options); importing this package registers them all on `app`."""

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
from harness.cli.common import EXIT_INTERRUPTED, app, err

__all__ = ["app", "main"]


def main() -> None:
    """`bench`: the app, and an interrupt that lands outside a command's own handling (while typer unwinds, or
    as the interpreter exits) still ends in exit 130 with one line: never a traceback, never death by SIGINT
    (seen once in a CI run beside a hog: a SIGTERM mid-sweep ended as -2 after the command had said so)."""
    import signal
    import sys

    try:
        app()
        code: object = 0
    except KeyboardInterrupt:
        err.print("interrupted (a run folder resumes where it stopped)", markup=False, highlight=False)
        code = EXIT_INTERRUPTED
    except SystemExit as exc:
        code = exc.code
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # nothing interrupts the exit itself
            signal.signal(signum, signal.SIG_IGN)
    sys.exit(code)
