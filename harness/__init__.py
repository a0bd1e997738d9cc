"""onebench's harness: the timing protocol, job runner, records, comparison, leaderboards and CLI.

Importing it never imports an optional runtime; backends load theirs when a job needs them.
"""

__version__ = "0.1.0"
