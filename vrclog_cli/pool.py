"""The ordered pool: batches of lines in, results out in input order.

It drives any executor: worker threads (wasm releases the GIL) or worker
processes (each with its own interpreter lock).  The main thread stays free to
handle signals and write output.  At most ``window`` batches are in flight,
which bounds memory whatever the input size.  A batch whose worker was
stopped comes back as its exception, so the caller can tell where output
must end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class OrderedPool(Generic[T, R]):
    def __init__(self, executor: Executor, work: Callable[[T], R], window: int) -> None:
        self._executor = executor
        self._work = work
        self._pending: deque[tuple[T, Future[R]]] = deque()
        self.window = window

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.window

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(self, item: T) -> None:
        self._pending.append((item, self._executor.submit(self._work, item)))

    def completed(self) -> Iterator[tuple[T, R | BaseException]]:
        """Items at the head that are done, in order, with their result or exception."""
        while self._pending and self._pending[0][1].done():
            item, future = self._pending.popleft()
            try:
                yield item, future.result()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller as data
                yield item, exc

    def wait_head(self, timeout: float) -> None:
        """Waits (briefly, so signals are seen) for the oldest batch to finish."""
        if self._pending:
            wait_futures([self._pending[0][1]], timeout=timeout)

    def cancel_workers(self) -> None:
        """Asks worker processes to cancel their calls in flight (threads are cancelled
        through the runtime)."""
        if isinstance(self._executor, ProcessPoolExecutor):
            from .workers import cancel_workers

            cancel_workers(self._executor)

    def shutdown(self, kill: bool = False) -> None:
        if kill and isinstance(self._executor, ProcessPoolExecutor):
            from .workers import kill_workers

            kill_workers(self._executor)
        self._executor.shutdown(wait=not kill, cancel_futures=True)
