"""Ctrl-C (SIGINT) and SIGTERM as one KeyboardInterrupt in the main thread, never inside an import.

A Python signal handler runs at the next bytecode, and that bytecode may be Python called back from a native
library's initialisation: `import torch` calls `torch._C._autograd_init()`, which calls Python through
pybind11. A KeyboardInterrupt raised there cannot cross the C++ frame: pybind11 throws, nothing catches, and
the process dies by SIGABRT ("terminate called after throwing an instance of 'pybind11::error_already_set'").
Measured with torch 2.14 here (AMD EPYC, 2 vCPUs): SIGTERM at a random moment 0.4-2.0 s into a process that
imports torch aborted 1 of 151 of them, and 5 of 81 within 0.55-0.9 s, where torch initialises its C++ parts
(at `_autograd_init` and `torch.distributed`'s init); a CI run's `bench run` died so once. So an interrupt
that lands while a module is importing waits until the import has finished and is raised then; a second one,
or one still waiting after `GRACE_S` (a hung import), is raised at once. Only imports are guarded: they are
where native libraries initialise, and they end.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import FrameType

GRACE_S = 15.0  # the longest an interrupt waits for an import (torch takes ~4 s cold here, more beside a hog)
_POLL_S = 0.05


class _Waiting:
    """The interrupt held back while an import finishes (one at a time), its watcher and the re-send mark."""

    signum: int | None = None
    since = 0.0
    resent = False
    watcher: threading.Thread | None = None


_waiting = _Waiting()
_lock = threading.RLock()  # a handler can run again inside itself, in the same thread


def _forget() -> None:
    global _waiting, _lock
    _waiting, _lock = _Waiting(), threading.RLock()


os.register_at_fork(after_in_child=_forget)  # a forked child holds nothing its parent held, nor its lock


def install(grace_s: float = GRACE_S) -> None:
    """Route SIGINT and SIGTERM through `_interrupted` (from the main thread only: signals reach only it). A
    signal its parent ignores stays ignored, as Python leaves it: a shell starts background jobs with SIGINT
    ignored so that Ctrl-C meant for the foreground does not stop them."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupted(signum: int, frame: FrameType | None) -> None:
        _interrupted(signum, frame, grace_s)

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, interrupted)


def _interrupted(signum: int, frame: FrameType | None, grace_s: float) -> None:
    """Raise KeyboardInterrupt, unless an import is running: then hold it for the watcher to send again (a
    second signal is not held). A SIGTERM that is raised turns later SIGTERMs off while the command unwinds
    (a CI runner may send more)."""
    with _lock:
        resent, _waiting.resent = _waiting.resent, False
        holding = _waiting.signum is not None
        if (resent or not holding) and _importing(frame) and (
                not holding or time.monotonic() - _waiting.since < grace_s):
            if not holding:
                _waiting.signum, _waiting.since = signum, time.monotonic()
            if _waiting.watcher is None or not _waiting.watcher.is_alive():
                _waiting.watcher = threading.Thread(target=_watch, args=(grace_s,), name="onebench-interrupt",
                                                    daemon=True)
                _waiting.watcher.start()
            return
        _waiting.signum = None
    if signum == signal.SIGTERM:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _watch(grace_s: float) -> None:
    """Send the held interrupt to the main thread again once no import is running there (or the grace is up).
    A real signal, not `_thread.interrupt_main`: it also wakes a main thread blocked in a system call."""
    main = threading.main_thread()
    while True:
        time.sleep(_POLL_S)
        with _lock:
            signum = _waiting.signum
            if signum is None:
                return
            if _importing(sys._current_frames().get(main.ident)) and time.monotonic() - _waiting.since < grace_s:
                continue
            _waiting.resent = True
            _waiting.watcher = None  # should the handler hold it again (a new import began), it starts another
        if signal.getsignal(signum) in (signal.SIG_IGN, signal.SIG_DFL, None):
            return  # the command is exiting and turned interrupts off
        signal.pthread_kill(main.ident, signum)
        return


def _importing(frame: FrameType | None) -> bool:
    """Whether an import statement (or importlib.import_module) is on this stack."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_find_and_load" and code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False
