"""`python -m harness.cli` = `bench`."""

import sys

from harness.cli import main

sys.exit(main())
