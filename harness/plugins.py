"""Models and backends from outside the project: modules named in `ONEBENCH_PLUGINS` are imported.

A plugin module registers what it adds when imported (`model_zoo.registry.register(ModelSpec(...))`,
`backends.registry.register(name, "module:Class")`), as timm's `register_model` does. The CLI and
every measurement process load them, so a plugin model runs like a built-in one.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from harness.errors import HarnessError

ENV = "ONEBENCH_PLUGINS"


def named() -> list[str]:
    """The modules $ONEBENCH_PLUGINS names, in order (records list them)."""
    return [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]


IMPORT_TIMEOUT_ENV = "ONEBENCH_PLUGIN_TIMEOUT_S"
IMPORT_TIMEOUT_S = 60.0  # a plugin's import that takes longer is taken for a hang (a network call, a lock)


class _ImportTimedOut(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise `_ImportTimedOut` in the import after `seconds` (SIGALRM: only in the main thread; a plugin
    imported elsewhere, as in a Ray worker's task thread, has no deadline)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def expired(_signum, _frame):
        raise _ImportTimedOut

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_plugins(deadline: bool = False) -> list[str]:
    """Import every comma-separated module of $ONEBENCH_PLUGINS (once each); return their names. Anything a
    plugin raises at import, `sys.exit()` included, is one HarnessError: a plugin never ends a command itself.
    With `deadline` (the command line, where a user waits), an import that hangs past
    $ONEBENCH_PLUGIN_TIMEOUT_S (default 60 s) is one too; measurement processes and cluster nodes import
    without one (a busy node may take that long to import torch; its step has its own deadline). What a
    plugin prints goes to stderr, so it never mixes into a command's output (`--format json`)."""
    names = named()
    try:
        timeout = float(os.environ.get(IMPORT_TIMEOUT_ENV, IMPORT_TIMEOUT_S)) if deadline else 0.0
    except ValueError:
        raise HarnessError(f"{IMPORT_TIMEOUT_ENV} is seconds, not {os.environ[IMPORT_TIMEOUT_ENV]!r}") from None
    for name in names:
        if name in sys.modules:
            continue
        try:
            with contextlib.redirect_stdout(sys.stderr), _deadline(timeout):
                importlib.import_module(name)
        except _ImportTimedOut:
            sys.modules.pop(name, None)
            raise HarnessError(f"the plugin {name!r} did not finish importing within {timeout:g} s (a hang at import?); "
                               f"fix it, or raise {IMPORT_TIMEOUT_ENV}") from None
        except ImportError as exc:
            raise HarnessError(f"{ENV} names {name!r}, which cannot be imported ({exc}); fix the variable or PYTHONPATH") from None
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin's own bug is the user's to fix
            where = f" at line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
            what = (f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            raise HarnessError(f"the plugin {name!r} failed while importing{where}: {what}") from None
    return names
