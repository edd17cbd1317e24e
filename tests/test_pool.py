"""The ordered pool's inline executor and the signal watcher used while lines run on the main thread."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from vrclog_cli.run.pool import Inline, OrderedPool
from vrclog_cli.run.wakeup import arm, cancel_on_signals


def test_inline_runs_at_submit_and_keeps_order() -> None:
    ran: list[int] = []

    def work(n: int) -> int:
        ran.append(n)
        return n * 10

    pool: OrderedPool[int, int] = OrderedPool(Inline(), work, window=4)
    assert pool.inline
    for n in (1, 2, 3):
        pool.submit(n)
    assert ran == [1, 2, 3]  # done before submit returned
    assert list(pool.completed()) == [(1, 10), (2, 20), (3, 30)]
    assert not pool.busy


def test_inline_hands_back_errors_but_not_interrupts() -> None:
    def work(n: int) -> int:
        if n == 2:
            raise ValueError("bad batch")
        if n == 3:
            raise KeyboardInterrupt
        return n

    pool: OrderedPool[int, int] = OrderedPool(Inline(), work, window=4)
    pool.submit(1)
    pool.submit(2)
    with pytest.raises(KeyboardInterrupt):
        pool.submit(3)
    results = list(pool.completed())
    assert results[0] == (1, 1)
    assert results[1][0] == 2 and isinstance(results[1][1], ValueError)


@pytest.mark.posix
def test_signal_is_seen_while_the_main_thread_is_busy() -> None:
    """The watcher acts while the main thread is still inside a long call (a sleep
    standing in for a wasm call), not after it."""
    seen_at: list[float] = []
    previous = signal.signal(signal.SIGUSR2, lambda *_: None)
    try:
        with cancel_on_signals([signal.SIGUSR2], lambda: seen_at.append(time.monotonic())) as armed:
            assert armed
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR2)).start()
            started = time.monotonic()
            time.sleep(1.5)
            returned = time.monotonic()
        assert len(seen_at) == 1
        assert started < seen_at[0] < returned - 0.5
        assert signal.set_wakeup_fd(-1) == -1  # disarmed: the wakeup fd is released
    finally:
        signal.signal(signal.SIGUSR2, previous)


@pytest.mark.posix
def test_other_signals_do_not_cancel() -> None:
    seen = threading.Event()
    previous = signal.signal(signal.SIGUSR2, lambda *_: None)
    try:
        with cancel_on_signals([signal.SIGUSR1], seen.set):
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(0.2)
        assert not seen.is_set()
    finally:
        signal.signal(signal.SIGUSR2, previous)


@pytest.mark.posix
def test_not_armed_off_the_main_thread_or_over_another_wakeup_fd() -> None:
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(arm([signal.SIGINT], lambda: None)))
    worker.start()
    worker.join()
    assert result == [None]
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    try:
        assert arm([signal.SIGINT], lambda: None) is None
        assert signal.set_wakeup_fd(write_end) == write_end  # left as it was
    finally:
        signal.set_wakeup_fd(-1)
        os.close(read_end)
        os.close(write_end)


def test_completed_can_be_abandoned_midway() -> None:
    """A writer failing halfway through the results closes the generator; that must not
    turn into 'generator ignored GeneratorExit' on the user's terminal."""
    pool: OrderedPool[int, int] = OrderedPool(Inline(), lambda n: n, window=4)
    pool.submit(1)
    pool.submit(2)
    results = pool.completed()
    assert next(results) == (1, 1)
    results.close()  # raised RuntimeError when the yield sat inside the try
