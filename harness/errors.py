"""The harness's user-facing error; the CLI prints its message as one line and exits 2."""


class HarnessError(ValueError):
    """Bad input: the message names what was wrong and what to do."""
