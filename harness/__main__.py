"""`python -m harness` = `bench`, from the first instant: the same console-script entry (`harness.entry`), so an
interrupt while the CLI still imports is one line and exit 130 too. (`python -m harness.cli` imports the whole
CLI package before its `__main__` runs: a signal in that first second or so ends it as Python's default would.)"""

from harness.entry import main

main()
