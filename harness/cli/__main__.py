"""`python -m harness.cli` = `bench`."""

import sys

from harness.cli import app

sys.exit(app())
