"""Worker processes for ``--jobs`` > 1 with plugins, whose lifecycle vrclog owns.

Threads share one interpreter lock, so only the wasm part of each call runs in
parallel; processes each have their own.  Every worker loads the plugins once
(compiled code comes from the disk cache) and returns, per batch, the outcomes
and the plugin log messages seen meanwhile.

Why not ``concurrent.futures.ProcessPoolExecutor``: a worker killed from
outside (the OOM killer, ``kill -9``) broke the whole executor, lost every
batch in flight, and once left its manager thread spinning forever.  Here a
manager thread waits on every worker's pipe and process sentinel at once:

- a batch whose worker died runs again on a fresh worker (each line runs in a
  fresh instance, so running it twice has no side effects);
- a batch in flight at a second death is re-run line by line, each line on
  its own; a line in flight at two deaths is the cause: it gets a per-line
  ``runtime_error`` ("worker process died: killed by signal 9") and every
  other line its events;
- cancelling goes through a control pipe that a thread in each worker waits
  on (no signals: the same on every OS), which cancels the calls in flight;
- when the main process dies, that pipe closes and the worker exits at once.

Workers ignore SIGINT and SIGTERM (a terminal's Ctrl-C reaches the whole
process group): the main process decides.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any, cast

from ..errors import ExitCode, stop_signals
from ..host.budget import larger_share
from ..records import field, record
from .batch import Batch, LineFailure, LineOutcome, Outcomes

if sys.platform == "win32":  # what Pipe() gives there
    from multiprocessing.connection import PipeConnection as Connection
else:
    from multiprocessing.connection import Connection

if TYPE_CHECKING:
    from multiprocessing.context import SpawnContext
    from multiprocessing.process import BaseProcess

    from ..host.plugin import PluginLog
    from .batch import ParserSpec
    from .sources import Lines

#: Batches sent to a worker before its first result is back: the next one is waiting
#: in the pipe when the last finishes (one at a time left each worker idle for a round trip).
IN_FLIGHT = 2
#: Deaths a batch (or, when re-run line by line, a line) may be in flight for.
DEATHS_TO_BLAME = 2
CANCEL = b"c"


def _worker_main(spec: ParserSpec, tasks: Connection, control: Connection) -> None:
    """A worker process: batches in, (outcomes, logs) out, until its pipe closes."""
    for stop in stop_signals():  # the parent stops the run, and then its workers
        signal.signal(stop, signal.SIG_IGN)
    from .batch import build_parsers, process_batch

    logs: list[PluginLog] = []
    runtime, parsers = build_parsers(spec, logs.append)
    cancel = runtime.cancel if runtime is not None else (lambda: None)
    threading.Thread(target=_watch_control, args=(control, cancel), name="vrclog-control",
                     daemon=True).start()
    max_line_bytes = spec.limits.max_line_bytes
    stamper = None
    if spec.provenance:
        from .provenance import Stamper

        stamper = Stamper(parsers)
    while True:
        try:
            batch = tasks.recv()
        except (EOFError, OSError):
            return
        outcomes = process_batch(parsers, batch, lambda: False, max_line_bytes, stamper)
        result: Batch = (outcomes, list(logs))
        logs.clear()
        try:
            tasks.send(result)
        except OSError:  # the main process went away
            return


def _watch_control(control: Connection, cancel: Callable[[], None]) -> None:
    """Cancels the calls in flight when asked; ends the process when the main one is gone."""
    while True:
        try:
            message = control.recv_bytes()
        except (EOFError, OSError):
            os._exit(0)  # the main process died (or closed the pool): nothing is waiting for us
        if message == CANCEL:
            cancel()


@record(eq=False)
class _Task:
    batch: Lines
    future: Future[Batch]
    deaths: int = 0
    #: For a batch re-run line by line: the task this line belongs to.
    parent: _Split | None = None
    index: int = 0


@record(eq=False)
class _Split:
    """A batch re-run line by line: the lines' results, merged when all are back."""

    task: _Task
    results: list[Batch | None] = field(default_factory=list)
    missing: int = 0


@record(eq=False)
class _Worker:
    process: BaseProcess
    tasks: Connection
    control: Connection
    running: deque[_Task] = field(default_factory=deque)


def died(process: BaseProcess) -> str:
    """How a worker process ended, in words ("killed by signal 9")."""
    code = process.exitcode
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exited with code {code}"


#: File descriptors the parent takes for the pool (forkserver, resource tracker, wake
#: pipe; one spare) and for each worker (its pipes and sentinel).  Measured from a process
#: with only 0-2 open: the least ulimit -n that ran --jobs 1, 2, 4, 8 was 17, 21, 30, 50.
FDS_FOR_POOL = 8
FDS_PER_WORKER = 5


def open_descriptors() -> int:
    """How many file descriptors this process has open (16 when it cannot be told)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1  # (the listing's own)
        except OSError:
            continue
    return 16


def workers_that_fit(jobs: int) -> tuple[int, int | None, int]:
    """How many of ``jobs`` worker processes the file-descriptor limit leaves room for, that
    limit (None: no limit applies, Windows or unlimited), and how many descriptors all
    ``jobs`` would want.  The soft limit is raised toward the hard one first, as far as
    the workers need."""
    if sys.platform == "win32":
        return jobs, None, 0
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    base = open_descriptors() + FDS_FOR_POOL
    if soft == resource.RLIM_INFINITY:
        return jobs, None, base + FDS_PER_WORKER * jobs
    want = base + FDS_PER_WORKER * jobs
    if want > soft and (hard == resource.RLIM_INFINITY or hard > soft):
        raised = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    return max(0, min(jobs, (soft - base) // FDS_PER_WORKER)), soft, want


class ProcessWorkers(Executor):
    """``jobs`` worker processes behind an Executor; ``cancel_calls`` and ``kill`` for the pool."""

    def __init__(self, spec: ParserSpec, jobs: int) -> None:
        methods = multiprocessing.get_all_start_methods()
        # forkserver where there is one (a worker starts from a small, clean process), spawn
        # elsewhere (Windows); both have the API of SpawnContext.
        method = "forkserver" if "forkserver" in methods else "spawn"
        self._context = cast("SpawnContext", multiprocessing.get_context(method))
        self._spec = spec
        self._lock = threading.Lock()
        self._queue: deque[_Task] = deque()
        self._workers: list[_Worker] = []
        self._closed = False
        self._wake_r, self._wake_w = self._context.Pipe(duplex=False)
        for _ in range(jobs):
            self._workers.append(self._start_worker())
        self._manager = threading.Thread(target=self._manage, name="vrclog-workers", daemon=True)
        self._manager.start()
        # Before multiprocessing's own exit handler (atexit runs the latest first), which
        # joins its children: workers ignore SIGTERM, so they must be gone by then.
        atexit.register(self.kill)

    def _start_worker(self) -> _Worker:
        tasks, their_tasks = self._context.Pipe()
        their_control, control = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_worker_main, args=(self._spec, their_tasks, their_control),
                                        name="vrclog-worker", daemon=True)
        process.start()
        their_tasks.close()  # the worker's ends: held only by the worker, so a death closes them
        their_control.close()
        return _Worker(process, tasks, control)

    # --- Executor ---

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Runs one batch: what ``fn`` would do with it, in a worker process (which runs
        the batch core on it; only the batch is sent)."""
        (batch,) = args
        future: Future[Batch] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            self._queue.append(_Task(batch, future))
        self._wake()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            if cancel_futures:
                for task in self._queue:
                    if task.parent is None:
                        task.future.cancel()
                self._queue.clear()
        self._wake()
        if wait:  # the manager closes every pipe as it ends: a worker exits when its control pipe closes
            self._manager.join()
            for worker in self._workers:
                worker.process.join(timeout=5)
        atexit.unregister(self.kill)

    # --- what the ordered pool asks of worker processes ---

    def cancel_calls(self) -> None:
        """Interrupts the calls in flight; the batches return with the lines they finished."""
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            try:
                worker.control.send_bytes(CANCEL)
            except OSError:  # that worker is gone already
                pass

    def kill(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._workers)
        for worker in workers:
            if worker.process.exitcode is None:
                worker.process.kill()  # SIGKILL; TerminateProcess on Windows
        self._wake()

    # --- the manager thread ---

    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"w")
        except OSError:  # the manager is gone: nothing to wake
            pass

    def _manage(self) -> None:
        """The manager thread: the only one that reads or closes the workers' pipes (the main
        thread only writes a cancel to their control pipes, and a closed one is skipped)."""
        try:
            self._serve()
        except BaseException as exc:  # noqa: BLE001 - a pool that broke: every waiting batch is told
            with self._lock:
                self._closed = True
                tasks = [t for w in self._workers for t in w.running] + list(self._queue)
                self._queue.clear()
            for task in tasks:
                _fail_whole(task, f"worker pool failed: {exc!r}", self._finish)
        finally:
            for worker in self._workers:
                for conn in (worker.tasks, worker.control):
                    conn.close()
            self._wake_r.close()

    def _serve(self) -> None:
        while True:
            with self._lock:
                self._dispatch()
                idle = self._closed and not any(w.running for w in self._workers)
                if idle:
                    return
                waiting: dict[Any, tuple[str, _Worker | None]] = {self._wake_r: ("wake", None)}
                for worker in self._workers:
                    waiting[worker.process.sentinel] = ("death", worker)
                    if worker.running:
                        waiting[worker.tasks] = ("result", worker)
            for ready in wait(list(waiting)):
                kind, which = waiting[ready]
                if kind == "wake":
                    while self._wake_r.poll():
                        self._wake_r.recv_bytes()
                elif which is not None and which in self._workers:
                    if kind == "result":
                        self._receive(which)
                    else:
                        self._bury(which)

    def _dispatch(self) -> None:
        """Sends queued batches to workers with room (lock held)."""
        if self._closed and not self._queue:
            return
        for worker in sorted(self._workers, key=lambda w: len(w.running)):
            while self._queue and len(worker.running) < IN_FLIGHT:
                task = self._queue.popleft()
                if task.future.cancelled():
                    continue
                try:
                    worker.tasks.send(task.batch)
                except OSError:  # it died: its sentinel tells the rest
                    self._queue.appendleft(task)
                    break
                worker.running.append(task)

    def _receive(self, worker: _Worker) -> None:
        try:
            result: Batch = worker.tasks.recv()
        except (EOFError, OSError):
            self._bury(worker)
            return
        with self._lock:
            task = worker.running.popleft()
        self._finish(task, result)

    def _finish(self, task: _Task, result: Batch) -> None:
        split = task.parent
        if split is None:
            if not task.future.cancelled():
                task.future.set_result(result)
            return
        split.results[task.index] = result
        split.missing -= 1
        if split.missing == 0:
            self._finish(split.task, _merge(split))

    def _bury(self, worker: _Worker) -> None:
        """A worker died: start another; its batches run again, or line by line, or the
        line in flight at its second death is given the death as its error."""
        while worker.running:  # what it finished before it died still counts
            try:
                if not worker.tasks.poll():
                    break
                result: Batch = worker.tasks.recv()
            except (EOFError, OSError):
                break
            self._finish(worker.running.popleft(), result)
        worker.process.join(timeout=1)
        how = died(worker.process)
        with self._lock:
            self._workers.remove(worker)
            for conn in (worker.tasks, worker.control):
                conn.close()
            if not self._closed:
                self._workers.append(self._start_worker())
            running = list(worker.running)
            retry: list[_Task] = []
            failed: list[_Task] = []
            for position, task in enumerate(running):
                if position == 0:  # the batch it was working on
                    task.deaths += 1
                if task.deaths < DEATHS_TO_BLAME:
                    retry.append(task)
                elif len(task.batch) > 1:
                    retry.extend(_split(task))
                else:
                    failed.append(task)
            if self._closed:
                for task in retry:  # nobody will run them: the run is being stopped
                    _fail_whole(task, how, self._finish)
            else:
                self._queue.extendleft(reversed(retry))
        for task in failed:
            self._finish(task, _death_outcome(how))


def _split(task: _Task) -> list[_Task]:
    lines = list(task.batch.batches(1))
    split = _Split(task, [None] * len(lines), len(lines))
    return [_Task(line, Future(), parent=split, index=i) for i, line in enumerate(lines)]


def _death_outcome(how: str) -> Batch:
    failure = LineFailure("worker", "runtime_error", f"worker process died: {how}", None,
                          ExitCode.RUNTIME_ERROR)
    return Outcomes([LineOutcome(0, [], [failure])], 1), []


def _fail_whole(task: _Task, how: str, finish: Callable[[_Task, Batch], None]) -> None:
    """A batch that cannot run again (the pool is stopping): handed back as not done."""
    if task.parent is None:
        if not task.future.done():
            task.future.set_exception(RuntimeError(f"worker process died: {how}"))
        return
    finish(task, (Outcomes([LineOutcome(0, [], [], True)], 0), []))


def _merge(split: _Split) -> Batch:
    """The results of a batch's lines, run one by one, as the batch's result."""
    found: list[LineOutcome] = []
    logs: list[PluginLog] = []
    done = 0
    skipped: list[int] | None = None
    slowest: tuple[float, float] | None = None
    unheaded = 0
    for index, result in enumerate(split.results):
        assert result is not None
        outcomes, line_logs = result
        logs.extend(line_logs)
        for outcome in outcomes.found:
            outcome.index = index
            found.append(outcome)
        if outcomes.skipped is not None:
            skipped = ([a + b for a, b in zip(skipped, outcomes.skipped, strict=True)]
                       if skipped is not None else list(outcomes.skipped))
        if outcomes.slowest is not None:
            slowest = larger_share(slowest, outcomes.slowest)
        unheaded += outcomes.unheaded
        if outcomes.done < 1:  # cancelled on this line: the batch stops here
            break
        done = index + 1
    return Outcomes(found, done, skipped, slowest, unheaded), logs
