"""One ``vrclog parse`` run: sources -> pool -> parsers -> writer, and its exit code.

The main thread reads batches from a reader thread, hands them to the
ordered pool, and writes finished results in input order.  It only ever
waits briefly, so a signal handler's ``interrupt`` is acted on at once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .builtin import BuiltinParser
from .errors import (
    EXIT_FAIL_ON,
    EXIT_OK,
    Cancelled,
    InputTooLarge,
    LineError,
)
from .events import Event
from .filters import EventFilter
from .follow import follow_items
from .limits import MIB, Limits
from .plugin import LogHandler, Runtime
from .pool import OrderedPool
from .sources import Idle, Item, Line, SourceFailed, read_items
from .stats import RunStats
from .writer import EventWriter

POLL_S = 0.05  # longest the main thread waits before it looks at signals again


class Parser(Protocol):
    @property
    def name(self) -> str: ...

    def call(self, line: str) -> list[Event]: ...


@dataclass(frozen=True)
class ParseOptions:
    paths: Sequence[str] = ()
    plugins: Sequence[str] = ()
    #: Run the built-in VRChat parser ahead of the plugins (always, without plugins).
    builtin: bool = False
    limits: Limits = field(default_factory=Limits)
    jobs: int = 1
    fail_on: frozenset[str] = frozenset()
    fail_fast: bool = False
    #: Lines longer than this are reported as too large without being held whole.
    max_line_bytes: int = 1 * MIB
    capture_plugin_stderr: bool = False
    event_filter: EventFilter = field(default_factory=EventFilter)
    #: Follow the one path (a file, or a folder of VRChat logs) like tail -F.
    follow: bool = False


@dataclass(slots=True)
class LineOutcome:
    line: Line
    events: list[Event] = field(default_factory=list)
    errors: list[tuple[str, LineError]] = field(default_factory=list)
    cancelled: bool = False


@dataclass
class Diagnostic:
    """One problem for stderr: ``SOURCE:LINE: KIND: [plugin: ]message``."""

    text: str
    per_line: bool


_EOF = object()
TICK_S = 0.1  # how often the progress hook is called


class ParseRun:
    def __init__(self, options: ParseOptions, writer: EventWriter,
                 report: Callable[[Diagnostic], None], on_log: LogHandler | None = None,
                 on_tick: Callable[[RunStats], None] | None = None) -> None:
        self.options = options
        self.writer = writer
        self.report = report
        self.runtime: Runtime | None = None
        self.parsers: list[Parser] = []
        self.exit_code = EXIT_OK
        self.stats = RunStats()
        self._on_log = on_log
        self._on_tick = on_tick
        self._last_tick = 0.0
        self._stop_code: int | None = None  # set by interrupt or --fail-fast
        self._halted = False  # set by a Cancelled line: nothing after it is written
        self.output_closed = False  # stdout's reader went away (e.g. `| head`)

    def load(self) -> None:
        """Loads every plugin; raises PluginLoadError naming the first bad one."""
        opts = self.options
        if opts.builtin or not opts.plugins:
            self.parsers.append(BuiltinParser())
        if opts.plugins:
            self.runtime = Runtime(opts.limits, on_log=self._on_log,
                                   capture_stderr=opts.capture_plugin_stderr,
                                   instance_slots=opts.jobs + 16)
            for path in opts.plugins:
                self.parsers.append(self.runtime.load(path))
        self.stats.plugins = [p.name for p in self.parsers]

    @property
    def interrupted(self) -> bool:
        return self._stop_code is not None

    def interrupt(self, code: int) -> None:
        """Stops the run (safe from a signal handler): calls in flight are cancelled."""
        if self._stop_code is None:
            self._stop_code = code
        if self.runtime is not None:
            self.runtime.cancel()

    # --- workers ---

    def _process(self, batch: list[Line]) -> list[LineOutcome]:
        outcomes = []
        for line in batch:
            outcome = LineOutcome(line)
            outcomes.append(outcome)
            if self._stop_code is not None:
                outcome.cancelled = True
                break
            if line.too_large:
                outcome.errors.append(("", InputTooLarge(
                    f"line is {line.too_large} bytes, over the "
                    f"{self.options.max_line_bytes}-byte line limit")))
                continue
            for parser in self.parsers:
                try:
                    outcome.events.extend(parser.call(line.text))
                except LineError as exc:
                    outcome.errors.append((parser.name, exc))
                except Cancelled:
                    outcome.cancelled = True
                    break
            if outcome.cancelled:
                break
        return outcomes

    # --- main thread ---

    def _record(self, code: int) -> None:
        self.exit_code = max(self.exit_code, code)

    def _write(self, outcomes: list[LineOutcome]) -> None:
        for outcome in outcomes:
            if self._halted:
                return
            if outcome.cancelled:
                self._halted = True
                return
            if outcome.errors and self.options.fail_fast:
                self._halted = True
                self._report_errors(outcome)
                self.interrupt(max(exc.exit_code for _, exc in outcome.errors))
                return
            self.stats.lines += 1
            line = outcome.line
            events = outcome.events
            if events and self.options.event_filter.active:
                kept = [e for e in events if self.options.event_filter.keep(e)]
                self.stats.filtered_out += len(events) - len(kept)
                events = kept
            if events:
                self.stats.events_by_type.update(e.type for e in events)
                self._write_events(line, events)
                fail_on = self.options.fail_on
                if fail_on and ("any" in fail_on or any(e.type in fail_on for e in events)):
                    self._record(EXIT_FAIL_ON)
            self._report_errors(outcome)

    # A closed stdout (the reader of `| head` went away) ends the run quietly.

    def _write_events(self, line: Line, events: list[Event]) -> None:
        if not self.output_closed:
            try:
                self.writer.write(line.source, line.number, line.text, events)
            except BrokenPipeError:
                self._close_output()

    def _flush(self) -> None:
        if not self.output_closed:
            try:
                self.writer.flush()
            except BrokenPipeError:
                self._close_output()

    def _close_output(self) -> None:
        self.output_closed = True
        self.interrupt(EXIT_OK)

    def _report_errors(self, outcome: LineOutcome) -> None:
        for plugin, exc in outcome.errors:
            self._record(exc.exit_code)
            kind = exc.kind
            self.stats.errors_by_kind[kind] += 1
            code = getattr(exc, "code", None)
            if code:
                kind = f"{kind} ({code})"
            who = f"{plugin}: " if plugin else ""
            line = outcome.line
            self.report(Diagnostic(f"{line.source}:{line.number}: {kind}: {who}{exc}", per_line=True))

    def _drain(self, pool: OrderedPool[list[Line], list[LineOutcome]]) -> None:
        for outcomes in pool.completed():
            self._write(outcomes)

    def _drain_all(self, pool: OrderedPool[list[Line], list[LineOutcome]]) -> None:
        while pool.busy and self._stop_code is None:
            pool.wait_head(POLL_S)
            self._drain(pool)
            self._tick()

    def run(self) -> int:
        """Processes every input; returns the exit code (the largest that applies)."""
        opts = self.options
        window = max(4, opts.jobs * 4)
        items: queue.Queue[object] = queue.Queue(maxsize=window * 2)

        def read() -> None:
            for item in self._items():
                items.put(item)
                if self._stop_code is not None:
                    return
            items.put(_EOF)

        threading.Thread(target=read, name="vrclog-reader", daemon=True).start()
        pool: OrderedPool[list[Line], list[LineOutcome]] = OrderedPool(self._process, opts.jobs, window)
        try:
            while self._stop_code is None:
                self._tick()
                self._drain(pool)
                if pool.full:
                    pool.wait_head(POLL_S)
                    continue
                try:
                    item = items.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if item is _EOF:
                    break
                if isinstance(item, Idle):
                    self._drain_all(pool)
                    self._flush()
                elif isinstance(item, SourceFailed):
                    self._drain_all(pool)
                    self._record(item.error.exit_code)
                    self.report(Diagnostic(str(item.error), per_line=False))
                elif isinstance(item, list):
                    pool.submit(item)
            if self._stop_code is None:
                self._drain_all(pool)
            else:
                # Cancelled calls return at once; write what finished before the first gap.
                while pool.busy:
                    pool.wait_head(POLL_S)
                    self._drain(pool)
        finally:
            if self._stop_code is not None and self.runtime is not None:
                self.runtime.cancel()
            pool.shutdown()
            self._flush()
        if self._stop_code is not None:
            self._record(self._stop_code)
        self.stats.finished = time.perf_counter()
        self._tick(force=True)
        return self.exit_code

    def _items(self) -> Iterator[Item]:
        opts = self.options
        if opts.follow:
            return follow_items(opts.paths[0], opts.max_line_bytes, lambda: self._stop_code is not None)

        def count(n: int) -> None:
            self.stats.bytes_read += n

        return read_items(list(opts.paths), opts.max_line_bytes, on_bytes=count)

    def _tick(self, force: bool = False) -> None:
        if self._on_tick is None:
            return
        now = time.perf_counter()
        if force or now - self._last_tick >= TICK_S:
            self._last_tick = now
            self._on_tick(self.stats)
