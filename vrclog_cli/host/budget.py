"""What a line's time budget counts: that line's own work, whatever the load.

A call's clock is its thread's CPU time (``time.thread_time``), never the wall
clock: time spent waiting for a core, for the interpreter lock or in a queue is
not counted, so a busy machine or ``--jobs`` above the core count cannot turn
ordinary lines into timeouts.  Work the host does on that thread during the call
that is not the plugin's run on this line is taken off the clock (credited):

- garbage collection: a full collection runs in whichever thread allocates at
  the wrong moment, often inside a host function; 10-13 ms of CPU in a plain
  ``vrclog parse`` at --jobs 8, 40-120 ms in a program holding a large heap;
- one-time set-up: re2's import on the first regex (2-5 ms).  Compiling a
  pattern is counted: it is cached, but a plugin could make new ones for ever.

Long lines get more: ``line_budget`` adds an allowance per MiB of the line, so
a plugin whose work grows linearly with the line is never taken for a loop.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

MIB = 1 << 20


class Clock(Protocol):
    """A running call's budget, as the deadline hook reads it."""

    cpu_deadline: float


#: ``local.call``: the call running on this thread (a Clock), or None.
local = threading.local()


def line_budget(base_s: float, per_mib_s: float, line_bytes: int) -> float:
    """The CPU time one line may take: the base budget, plus the allowance for its length."""
    return base_s + per_mib_s * line_bytes / MIB


def clock_start(now: float, budget_s: float) -> float:
    """Where a call's CPU clock starts: this thread's CPU time now, or a little later, never
    earlier (``now``: the wall clock, time.monotonic).

    Reading the thread's CPU clock is a system call: 0.7 µs in a loop, but 3.4 µs a
    line inside a run (an echo run on 40 000 lines: 1.65 against 1.51 s without it).
    So it is read once every tenth of a budget per thread, and a call starting later
    adds the wall time since that reading: CPU time never runs ahead of the wall clock,
    so the start is never early (a line is never charged for another's work), and late
    by at most the time the thread waited for a core in between.
    """
    reading: tuple[float, float] | None = getattr(local, "cpu_reading", None)
    if reading is None or now - reading[1] > budget_s / 10:
        reading = local.cpu_reading = (time.thread_time(), now)
    return reading[0] + (now - reading[1])


def credit(seconds: float) -> None:
    """Gives the call running on this thread ``seconds`` more: host work, not the plugin's."""
    call: Clock | None = getattr(local, "call", None)
    if call is not None:
        call.cpu_deadline += seconds


@contextmanager
def off_the_clock() -> Iterator[None]:
    """The CPU time of the block is not charged to the call running on this thread."""
    started = time.thread_time()
    try:
        yield
    finally:
        credit(time.thread_time() - started)


def _on_gc(phase: str, _info: dict[str, Any]) -> None:
    # Called around every collection (a few hundred a run), in the collecting thread.
    if phase == "start":
        if getattr(local, "call", None) is not None:
            local.gc_started = time.thread_time()
    elif (started := getattr(local, "gc_started", None)) is not None:
        local.gc_started = None
        credit(time.thread_time() - started)


def keep_collections_off_the_clock() -> None:
    """Credits every garbage collection to the call it interrupts (idempotent)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


Share = tuple[float, float]  # (CPU seconds a call used, its budget)


def larger_share(kept: Share | None, new: Share) -> Share:
    """Whichever of two calls used the larger share of its budget (cross-multiplied)."""
    if kept is None or new[0] * kept[1] > kept[0] * new[1]:
        return new
    return kept


def take_slowest() -> tuple[float, float] | None:
    """(CPU seconds, budget) of the call on this thread that used the largest share of its
    budget since the last take (None: none measured); recorded only where the runtime
    measures CPU (plugin.Runtime's measure_cpu)."""
    slowest: tuple[float, float] | None = getattr(local, "slowest", None)
    local.slowest = None
    return slowest
