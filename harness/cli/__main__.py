"""`python -m harness.cli` = `bench`, once the CLI package has imported (prefer `python -m harness`, which is
`bench` from the first instant: see harness/__main__.py)."""

import sys

from harness.cli import main

sys.exit(main())
