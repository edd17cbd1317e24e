"""The ordered pool: batches of lines in, results out in input order.

It drives any executor: worker threads (wasm releases the GIL), worker
processes (each with its own interpreter lock), or none at all (``Inline``).  The main thread stays free to
handle signals and write output.  At most ``window`` batches are in flight,
which bounds memory whatever the input size.  A batch whose worker was
stopped comes back as its exception, so the caller can tell where output
must end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Outcome(Protocol[R_co]):
    """What the pool needs of a submitted call: a ``concurrent.futures.Future`` or a ``Done``."""

    def done(self) -> bool: ...
    def result(self) -> R_co: ...


class Submitter(Protocol):
    """An Executor, or ``Inline``."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Outcome[Any]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


class Done(Generic[R]):
    """A call that ran at submit: its result, or the exception it raised."""

    __slots__ = ("_error", "_value")

    def __init__(self, value: R | None, error: Exception | None = None) -> None:
        self._value = value
        self._error = error

    def done(self) -> bool:
        return True

    def result(self) -> R:
        if self._error is not None:
            raise self._error
        return cast(R, self._value)


class Inline:
    """Runs each item at submit, on the calling thread.

    With one job a worker thread buys nothing and costs much: every wasm call
    releases the interpreter lock, and taking it back from another runnable
    thread made each line about twice as slow.  Exceptions (not interrupts
    such as KeyboardInterrupt) are handed back in the outcome, as a pool would.
    No ``concurrent.futures`` here: importing it (and logging with it) costs
    ~4 ms of every start-up, and one job needs none of it.
    """

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Done[R]:
        try:
            return Done(fn(*args))
        except Exception as exc:  # noqa: BLE001 - handed to the caller as data, like a pool
            return Done(None, exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing runs after submit returns: nothing to wait for or cancel."""


class WorkerControl(Protocol):
    """What a pool of worker processes offers beyond an Executor (threads need neither:
    their calls are cancelled through the runtime)."""

    def cancel_calls(self) -> None: ...
    def kill(self) -> None: ...


class OrderedPool(Generic[T, R]):
    def __init__(self, executor: Submitter, work: Callable[[T], R], window: int, *,
                 control: WorkerControl | None = None) -> None:
        self._executor = executor
        self._control = control
        self._work = work
        self._pending: deque[tuple[T, Outcome[R]]] = deque()
        self.window = window

    @property
    def inline(self) -> bool:
        """Items run on the thread that submits them."""
        return isinstance(self._executor, Inline)

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.window

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(self, item: T) -> None:
        self._pending.append((item, self._executor.submit(self._work, item)))

    def completed(self) -> Generator[tuple[T, R | BaseException], None, None]:
        """Items at the head that are done, in order, with their result or exception."""
        while self._pending and self._pending[0][1].done():
            item, future = self._pending.popleft()
            result: R | BaseException
            try:
                result = future.result()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller as data
                result = exc
            yield item, result  # outside the try: closing the generator must not be caught

    def wait_head(self, timeout: float) -> None:
        """Waits (briefly, so signals are seen) for the oldest batch to finish."""
        if self._pending and not (head := self._pending[0][1]).done():
            from concurrent.futures import wait  # not done: a real Future, from a real pool

            wait([cast("Future[R]", head)], timeout=timeout)

    def cancel_workers(self) -> None:
        """Asks worker processes to cancel their calls in flight (threads are cancelled
        through the runtime)."""
        if self._control is not None:
            self._control.cancel_calls()

    def shutdown(self, kill: bool = False) -> None:
        if kill and self._control is not None:
            self._control.kill()
        self._executor.shutdown(wait=not kill, cancel_futures=True)
