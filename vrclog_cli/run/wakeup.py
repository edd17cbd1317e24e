"""Acting on a signal while the main thread is inside wasm.

Python runs signal handlers on the main thread between bytecodes, so while the
main thread waits in a plugin call (up to the time budget, which a user may set
to a minute) a handler cannot run.  The interpreter's C-level handler does run
at once, and writes the signal's number to the wakeup fd: a watcher thread
reading that fd cancels the calls in flight, the call returns, and the Python
handler then runs as usual.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager


def arm(signals: Collection[int], cancel: Callable[[], None]) -> Callable[[], None] | None:
    """Calls ``cancel`` from a watcher thread as soon as one of ``signals`` arrives;
    returns the function that disarms it.

    None when it cannot be armed: only the main thread can set the wakeup fd,
    and an fd someone else set is left alone.  Each signal needs a Python
    handler (any, even a no-op) for the interpreter to write to the fd.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    # A socket pair, not a pipe: Windows takes only a socket as the wakeup fd, and one
    # mechanism everywhere means what Windows runs is what the tests here run.
    read_end, write_end = socket.socketpair()
    try:
        write_end.setblocking(False)
        previous = signal.set_wakeup_fd(write_end.fileno(), warn_on_full_buffer=False)
    except (OSError, ValueError):
        read_end.close()
        write_end.close()
        return None
    if previous != -1:
        signal.set_wakeup_fd(previous)
        read_end.close()
        write_end.close()
        return None
    wanted = frozenset(int(sig) for sig in signals)
    watcher = threading.Thread(target=_watch, args=(read_end, wanted, cancel),
                               name="vrclog-signals", daemon=True)
    watcher.start()

    def disarm() -> None:
        signal.set_wakeup_fd(-1)
        write_end.shutdown(socket.SHUT_WR)  # the watcher reads end-of-stream and returns
        write_end.close()
        watcher.join(timeout=1.0)
        if not watcher.is_alive():
            read_end.close()

    return disarm


@contextmanager
def cancel_on_signals(signals: Collection[int], cancel: Callable[[], None]) -> Iterator[bool]:
    """``arm`` for the duration of a block; yields whether it is armed."""
    disarm = arm(signals, cancel)
    try:
        yield disarm is not None
    finally:
        if disarm is not None:
            disarm()


def _watch(read_end: socket.socket, wanted: frozenset[int], cancel: Callable[[], None]) -> None:
    while True:
        try:
            data = read_end.recv(64)
        except OSError:
            return
        if not data:
            return
        if wanted.intersection(data):
            cancel()
