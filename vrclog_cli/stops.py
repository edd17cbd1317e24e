"""The signals that stop a run, held from the command's first instant until a command
takes them over.

It imports nothing but ``signal`` and ``sys``: the console script runs it before
anything heavy is imported (~100 ms of modules, where a Ctrl-C raised KeyboardInterrupt
inside an import, printed a traceback and wrote no report).
"""

from __future__ import annotations

import signal
import sys


def stop_signal_numbers() -> list[int]:
    """SIGINT, SIGTERM, and SIGHUP (a closed terminal) on POSIX or SIGBREAK (Ctrl-Break,
    Windows' clean stop: it has no SIGTERM to receive) on Windows."""
    if sys.platform == "win32":
        return [signal.SIGINT, signal.SIGTERM, signal.SIGBREAK]
    return [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


_held: list[int] = []


def hold_stop_signals() -> None:
    """A stop signal is remembered instead of acted on, until take_early_stops."""
    for sig in stop_signal_numbers():
        signal.signal(sig, lambda signum, _frame: _held.append(signum))


def take_early_stops(restore: bool = True) -> list[int]:
    """The stop signals held so far (forgotten once taken); ``restore``: the default
    handlers back (Ctrl-C raises KeyboardInterrupt) for a command without its own."""
    if restore:
        for sig in stop_signal_numbers():
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    taken = _held[:]
    del _held[:len(taken)]
    return taken
