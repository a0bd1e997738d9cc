"""Open a local page in headless Chromium (Debian's /usr/bin/chromium) through Playwright's Python API.

Returns what a test asserts on: console errors, every request the page made, and a handle to act
on the page. Skips (with the reason) where Chromium or Playwright is missing; CI installs both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ONEBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Visit:
    page: object
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@contextlib.contextmanager
def open_page(path: Path) -> Iterator[Visit]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (CI's .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in onebench[test])")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            visit = Visit(page)
            page.on("console", lambda msg: msg.type == "error" and visit.console_errors.append(msg.text))
            page.on("pageerror", lambda exc: visit.console_errors.append(str(exc)))
            page.on("request", lambda req: visit.requests.append(req.url))
            page.goto(path.resolve().as_uri())
            page.wait_for_load_state("load")
            yield visit
        finally:
            browser.close()
