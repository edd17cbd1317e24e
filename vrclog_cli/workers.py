"""Worker processes for ``--jobs`` > 1 with plugins.

Threads share one interpreter lock, so only the wasm part of each call runs in
parallel; processes each have their own.  Every worker loads the plugins once
(compiled code comes from the disk cache) and returns, per batch, the outcomes
and the plugin log messages seen meanwhile.  Workers ignore SIGINT and SIGTERM:
the main process decides.  To interrupt calls in flight it sends SIGUSR1: the
interpreter's C-level handler writes to a wakeup fd at once, even while the
worker's main thread runs wasm, and a watcher thread cancels the runtime, so
the batch returns with the lines it finished (only an unresponsive worker is
killed).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.queues import SimpleQueue
from typing import TYPE_CHECKING

from .wakeup import arm

if TYPE_CHECKING:
    from .batch import Batch, Parser, ParserSpec
    from .plugin import PluginLog
    from .sources import Lines

CANCEL_SIGNAL = signal.SIGUSR1

_parsers: list[Parser] = []
_logs: list[PluginLog] = []
_max_line_bytes = 0


def _start(spec: ParserSpec, started: SimpleQueue[int]) -> None:
    started.put(os.getpid())  # the main process signals workers by pid
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from .batch import build_parsers

    global _max_line_bytes
    _max_line_bytes = spec.limits.max_line_bytes
    runtime, parsers = build_parsers(spec, _logs.append)
    _parsers.extend(parsers)
    if runtime is not None:
        signal.signal(CANCEL_SIGNAL, lambda *_: None)  # a handler must exist for the wakeup fd
        arm([CANCEL_SIGNAL], runtime.cancel)  # for the life of the worker


def run_batch(batch: Lines) -> Batch:
    from .batch import process_batch

    outcomes = process_batch(_parsers, batch, lambda: False, _max_line_bytes)
    logs = list(_logs)
    _logs.clear()
    return outcomes, logs


class ProcessWorkers:
    """A process pool and the two things the ordered pool may ask of it."""

    def __init__(self, spec: ParserSpec, jobs: int) -> None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        # Each worker reports its pid as it starts: the executor keeps its processes private.
        self._started: SimpleQueue[int] = context.SimpleQueue()
        self._pids: set[int] = set()
        self.executor = ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_start, initargs=(spec, self._started))

    def _signal(self, signum: int) -> None:
        while not self._started.empty():
            self._pids.add(self._started.get())
        for pid in self._pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # gone already
                pass

    def cancel_calls(self) -> None:
        """Interrupts the calls in flight; the batches return with the lines they finished."""
        self._signal(CANCEL_SIGNAL)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
