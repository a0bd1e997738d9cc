"""onebench's harness: the timing protocol, job runner, records, comparison, leaderboards and CLI.

Importing it never imports an optional runtime; backends load theirs when a job needs them.
"""

import logging
from pathlib import Path

__version__ = "0.1.0"
PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout: its git commit, and the path other interpreters need

# A CUDA build of torch on a machine without CUDA warns on every inductor compile; it is not news here.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
