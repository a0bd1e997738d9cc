"""Errors the zoo raises for bad input; the CLI prints their message as one line and exits 2."""


class ZooError(ValueError):
    """A user-facing error: the message says what was wrong and what to do."""


class UnknownModelError(ZooError):
    pass


class CheckpointError(ZooError):
    pass
