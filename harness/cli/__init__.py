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
from harness.cli.common import app

__all__ = ["app"]
