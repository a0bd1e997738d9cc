"""onebench's harness: the timing protocol, job runner, records, comparison, leaderboards and CLI.

Importing it never imports an optional runtime; backends load theirs when a job needs them.
"""

__version__ = "0.1.0"

import logging

# A CUDA build of torch on a machine without CUDA warns on every inductor compile; it is not news here.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
