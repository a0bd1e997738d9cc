"""`bench`, the console script. It imports the CLI itself so that a Ctrl-C while the CLI is still importing
(a second or more on a busy machine) ends as one during a command does: exit 130 and one line, no traceback.
Its own layer, above the CLI: nothing imports it."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # the CLI's code for an interrupted command (`harness.cli.common`)


def main() -> None:
    from harness import interrupts

    interrupts.install()  # from here no interrupt lands inside an import (numpy's, typer's): it waits for its end
    try:
        from harness.cli import main as cli_main

        cli_main()  # handles its own; one held until the import ended may land before its `try`
    except KeyboardInterrupt:
        sys.stderr.write("interrupted while starting; nothing was run\n")
        sys.exit(EXIT_INTERRUPTED)
