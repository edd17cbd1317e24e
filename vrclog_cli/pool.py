"""The ordered worker pool: batches of lines in, results out in input order.

Wasm runs in the worker threads (the C calls release the GIL), so the main
thread stays free to handle signals and write output.  At most ``window``
batches are in flight, which bounds memory whatever the input size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class OrderedPool(Generic[T, R]):
    """Runs ``work`` on submitted items in threads; ``completed`` yields results in order."""

    def __init__(self, work: Callable[[T], R], jobs: int, window: int) -> None:
        self._work = work
        self._executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="vrclog-worker")
        self._pending: deque[Future[R]] = deque()
        self.window = window

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.window

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(self, item: T) -> None:
        self._pending.append(self._executor.submit(self._work, item))

    def completed(self) -> Iterator[R]:
        """Results at the head that are already done, in order, without waiting."""
        while self._pending and self._pending[0].done():
            yield self._pending.popleft().result()

    def wait_head(self, timeout: float) -> None:
        """Waits (briefly, so signals are seen) for the oldest batch to finish."""
        if self._pending:
            wait_futures([self._pending[0]], timeout=timeout)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
