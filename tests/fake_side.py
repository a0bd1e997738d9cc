"""A resident side for tests of the paired scheduler's process protocol: its windows sleep, and its ready
reply says what its interpreter sees (its path and one variable), so a test can check what a side got."""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

from harness.measure.paired import serve, serve_main


def serve_sleep(commands: IO[str], replies: IO[str]) -> None:
    def open_side(payload: dict[str, Any]):
        delay = float(payload["delay_s"])

        def step() -> int:
            t0 = time.perf_counter_ns()
            time.sleep(delay)
            return time.perf_counter_ns() - t0

        return step, {"path": sys.path, "marker": os.environ.get("FAKE_SIDE_MARKER")}

    serve(commands, replies, open_side, finish=lambda: {"bye": True})


if __name__ == "__main__":
    sys.exit(serve_main(sys.argv, "tests.fake_side", serve_sleep))
