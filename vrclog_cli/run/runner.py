"""One ``vrclog parse`` run: sources -> pool -> parsers -> writer, and its exit code.

The main thread takes batches of lines (from a reader thread, or straight from
regular files), hands them to the ordered pool, and writes finished results in
input order.  With --jobs 1 it runs the lines itself; otherwise it only ever
waits briefly, so a signal handler's ``interrupt`` is acted on at once.  While
it runs lines itself, a watcher thread cancels the call in flight on SIGINT or
SIGTERM, so the handler gets to run just as soon.
"""

from __future__ import annotations

import contextlib
import os
import queue
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from ..errors import (
    ExitCode,
    InputTooLarge,
    LineProblem,
    OutputError,
    UsageError,
    stop_signals,
)
from ..events import Event, one_line
from ..limits import MIB, Limits
from ..records import field, record, replace
from ..sinks.writer import EventWriter
from .batch import (
    Batch,
    LineFailure,
    LineOutcome,
    Outcomes,
    Parser,
    ParserSpec,
    as_builtin,
    build_parsers,
    process_batch,
    sole_builtin,
)
from .filters import EventFilter
from .pool import Inline, OrderedPool
from .sources import (
    BATCH_LINES,
    Idle,
    Item,
    LineFinder,
    Lines,
    SourceFailed,
    SourceWarning,
    needled_bytes,
    read_items,
    snapshot_end,
)
from .stats import RunStats

if TYPE_CHECKING:  # wasmtime is loaded only when a plugin is: built-in runs start sooner
    from ..host.component import CompileNotice
    from ..host.plugin import LogHandler, Runtime
    from ..sinks.reports import Finding
    from ..sinks.state import CursorKeeper
    from .provenance import Stamper


def _builtin_types() -> tuple[str, ...]:
    """The built-in parser's event types; its module imported only when asked (a plugin
    run never needs its patterns, ~6 ms of start-up)."""
    from ..vrchat.event_types import EVENT_TYPES

    return EVENT_TYPES


def _builtin_line_finder() -> LineFinder:
    from ..vrchat.builtin import RAW_LINE_FINDER

    return RAW_LINE_FINDER

#: Batches where few lines reach a parser: the built-in parser alone, or plugins that
#: all declare a prefilter.  Per batch the pool costs ~30 µs, a prefiltered line ~0.1.
SKIM_BATCH_LINES = 1024
#: A per-line diagnostic's length at most (a plugin's message is cut at 500 characters).
DIAGNOSTIC_CHARS = 2000
POLL_S = 0.05  # longest the main thread waits before it looks at signals again
CANCEL_GRACE_S = 1.0  # how long cancelled worker processes get to hand back finished lines


@record(frozen=True)
class ParseOptions:
    paths: Sequence[str] = ()
    plugins: Sequence[str] = ()
    #: Run the built-in VRChat parser ahead of the plugins (always, without plugins).
    builtin: bool = False
    limits: Limits = field(default_factory=Limits)
    jobs: int = 1
    #: ``jobs`` is only the default (the CPU count), not asked for: workers="auto" may then
    #: run one job where the prefilters leave too little for workers (SPREAD_MIN_BYTES).
    #: An asked-for --jobs is what runs, whatever a plugin costs a line.
    default_jobs: bool = False
    fail_on: frozenset[str] = frozenset()
    fail_fast: bool = False
    capture_plugin_stderr: bool = False
    #: Honour the plugins' declared prefilters (--no-prefilter: every line to every plugin).
    prefilter: bool = True
    #: "error": a line too long for a plugin is an input_too_large error; "skip": it is
    #: counted (--stats, one summary line) and affects neither diagnostics nor exit code.
    long_lines: str = "error"
    #: Measure every plugin call's CPU time, for RunStats.slowest (--stats): ~0.6 µs a line.
    measure_cpu: bool = False
    #: Every event gets its source (file, line, byte offset) and id (run/provenance.py).
    provenance: bool = False
    #: A cursor file (sinks/state.py): each file starts where the last run with it
    #: finished writing, and the file is saved as the run goes.
    state: str | None = None
    #: Only what is written after the run starts: each file starts at its end as of then
    #: (with --follow, the file followed first; logs that appear later are read whole).
    new: bool = False

    @property
    def parser_spec(self) -> ParserSpec:
        return ParserSpec(tuple(self.plugins), self.builtin, self.limits, self.capture_plugin_stderr,
                          self.prefilter, instance_slots=self.jobs + 16, min_instance_slots=self.jobs + 1,
                          measure_cpu=self.measure_cpu, provenance=self.provenance)
    event_filter: EventFilter = field(default_factory=EventFilter)
    #: Follow the one path (a file, or a folder of VRChat logs) like tail -F.
    follow: bool = False
    #: "threads", "processes", or "auto": processes where they pay (see use_processes).
    workers: str = "auto"


PROCESS_MIN_BYTES = 4 * MIB  # below this, starting worker processes costs more than it saves
#: Where every plugin's prefilter lets through lines of fewer bytes than this (estimated
#: from the files' first MiB), one job runs them: on the 38 MB bench log (0.28 MB reach
#: vrpoker.wasm) 0.22 s, against 0.39 s with worker processes and 0.29-0.35 s with threads;
#: on the 190 MB one (1.4 MB) one job was no slower than processes either (0.75-1.09 s
#: against 0.96-1.04), but a plugin slower than vrpoker's 20 µs a line may gain there.
SPREAD_MIN_BYTES = 1 * MIB


def regular_file_bytes(paths: Sequence[str]) -> int | None:
    """Total size of the paths when all are regular files (those that exist); None otherwise."""
    total = 0
    for path in paths or ["-"]:
        if path == "-":
            return None
        try:
            info = os.stat(path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            return None
        total += info.st_size
    return total


def use_processes(options: ParseOptions) -> bool:
    """Worker processes scale on several cores but take ~0.4 s to start and add latency:
    by default they are used only for plugins, --jobs > 1 and at least a few MiB of files."""
    if options.workers != "auto":
        return options.workers == "processes" and bool(options.plugins)
    if options.jobs < 2 or not options.plugins or options.follow:
        return False
    return (regular_file_bytes(options.paths) or 0) >= PROCESS_MIN_BYTES


def nearest_type(name: str, types: Sequence[str]) -> str | None:
    """The type a misspelt ``name`` most likely meant (a near spelling, or the same in
    another case), for a usage error's or a note's "did you mean"."""
    import difflib  # only for a misspelt type: ~2 ms of every start-up otherwise

    near = difflib.get_close_matches(name, types, n=1, cutoff=0.6) or [
        t for t in types if t.lower() == name.lower()]
    return near[0] if near else None


def _address_space_limited() -> bool:
    """Whether an address-space limit (`ulimit -v`) is in force."""
    if sys.platform == "win32":  # no such limit
        return False
    import resource

    return resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY


@record
class FailOnHit:
    count: int
    first: str  # SOURCE:LINE


@record
class Diagnostic:
    """One problem for stderr: ``SOURCE:LINE: KIND: [plugin: ]message`` for a line;
    otherwise a message of the given severity ("error", "warning") about a whole
    source or plugin."""

    text: str
    per_line: bool
    severity: str | None = None


_EOF = object()
#: The most lines of an error's detail (a traceback) --verbose shows under it.
DETAIL_LINES = 40
TICK_S = 0.1  # how often output is flushed, stdout looked at and the progress hook called
#: How often the cursor (--state) is saved, after a flush: an fsync and a rename each time.
STATE_SAVE_S = 1.0


@record(slots=True)
class _ReaderFailed:
    """The reader thread's own failure (a bug), for the main thread to raise: the main
    thread would otherwise wait for its next item for ever."""

    error: Exception


class ParseRun:
    def __init__(self, options: ParseOptions, writer: EventWriter,
                 report: Callable[[Diagnostic], None], on_log: LogHandler | None = None,
                 on_tick: Callable[[RunStats], None] | None = None,
                 on_finding: Callable[[Finding], None] | None = None,
                 on_compile: CompileNotice | None = None) -> None:
        self.options = options
        self._on_compile = on_compile  # a component's first compilation takes seconds
        self.writer = writer
        self.report = report
        self.runtime: Runtime | None = None
        self.parsers: list[Parser] = []
        self._stamper: Stamper | None = None
        self.exit_code: int = ExitCode.OK
        # Named before they load: a Ctrl-C during a busy host's start-up still has a summary
        # naming what was run.
        self.stats = RunStats(plugins=[os.path.basename(plugin) for plugin in options.plugins])
        self._on_log = on_log
        self._on_tick = on_tick
        self._on_finding = on_finding  # --fail-on matches and per-line errors, for CI reports
        self._last_tick = 0.0
        self._stop_code: int | None = None  # set by interrupt or --fail-fast
        self._halted = False  # set by a Cancelled line: nothing after it is written
        self.output_closed = False  # stdout's reader went away (e.g. `| head`)
        #: Per event type that --fail-on matched: how many were written, and the first's place.
        self.fail_on_hits: dict[str, FailOnHit] = {}
        #: The cursor: a --state file, or the writer itself where it keeps one (SQLite).
        self._state: CursorKeeper | None = writer if getattr(writer, "keeps_cursor", False) else None  # type: ignore[assignment]
        self._state_saved = 0.0

    def load(self) -> None:
        """Loads every plugin; raises PluginLoadError naming the first bad one, or a
        UsageError for a --fail-on type the built-in parser alone can never give (or a
        StateError for a --state file vrclog cannot read)."""
        opts = self.options
        if self._state is not None and not opts.provenance:  # a database stores every event's id
            self.options = opts = replace(opts, provenance=True)
        if opts.state is not None:
            if self._state is not None:
                raise UsageError("--state: this output keeps its own cursor (a database is its own); "
                                 "leave --state out")
            from ..sinks.state import State

            self._state = State.load(opts.state)
        if not opts.plugins and opts.fail_on and (unknown := sorted(opts.fail_on - {"any"}
                                                                   - set(_builtin_types()))):
            near = nearest_type(unknown[0], _builtin_types())
            hint = f"did you mean {near}? " if near else ""
            raise UsageError(
                f"--fail-on: the built-in parser gives no event of type {', '.join(unknown)} "
                f"({hint}`vrclog types` lists its types; 'any' for every type)")
        if not opts.plugins or _address_space_limited():
            # Under `ulimit -v`, on this thread: another's first malloc may reserve a 64 MiB
            # arena of address space (glibc), and the load failed with MemoryError.
            self.runtime, self.parsers = build_parsers(opts.parser_spec, self._on_log, self._on_compile)
        elif (built := self._load_interruptibly()) is None:
            return  # stopped while loading (a Ctrl-C during a component's seconds-long compile)
        else:
            self.runtime, self.parsers = built
        self.stats.plugins = [p.name for p in self.parsers]
        if opts.provenance:
            from .provenance import Stamper

            self._stamper = Stamper(self.parsers)
        self._refuse_types_no_parser_gives()
        for parser in self.parsers:
            for warning in getattr(parser, "warnings", ()):
                self.report(Diagnostic(warning, per_line=False, severity="warning"))

    def _refuse_types_no_parser_gives(self) -> None:
        """Where every parser of the run declares its event types (the built-in parser
        does; a plugin in its vrclog.types section), a type in --fail-on, --include-types
        or --exclude-types that none of them gives is a misspelling: a UsageError with
        the nearest type, before any line (it matched nothing, and the run exited 0)."""
        if not (self.options.fail_on - {"any"} or self.options.event_filter.include
                or self.options.event_filter.exclude):
            return  # no type asked for: none to check (and no parser's types to load)
        declared: list[tuple[str, ...]] = []
        for parser in self.parsers:
            if (types := getattr(parser, "event_types", None)) is None:
                return
            declared.append(types)
        if not declared:
            return
        known = sorted(set().union(*declared))
        asked = (("--fail-on", self.options.fail_on - {"any"}),
                 ("--include-types", self.options.event_filter.include),
                 ("--exclude-types", self.options.event_filter.exclude))
        for option, names in asked:
            for name in sorted(set(names) - set(known)):
                if name in _builtin_types():
                    hint = f"{name} is a built-in type: add --builtin"
                else:
                    near = nearest_type(name, known)
                    hint = (f"did you mean {near}? " if near else "") + (
                        f"the run's types: {', '.join(known)}" if len(known) <= 12 else
                        "`vrclog types` and `vrclog plugin info PLUGIN` list them")
                raise UsageError(f"{option}: no parser in this run gives events of type {name} ({hint})")

    def _load_interruptibly(self) -> tuple[Runtime | None, list[Parser]] | None:
        """build_parsers on a thread of its own, the calling thread waiting for it or for
        a stop, whichever comes first (None: a stop).  Compiling a large component takes
        seconds inside wasmtime, where no signal handler runs: a Ctrl-C then took 4-14 s.
        A compile left behind ends with the process; its cache entry is written atomically
        (a crashed write's temporary file is swept by the next writer), never half."""
        result: list[tuple[Runtime | None, list[Parser]] | BaseException] = []

        def build() -> None:
            try:
                result.append(build_parsers(self.options.parser_spec, self._on_log, self._on_compile))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                result.append(exc)

        loader = threading.Thread(target=build, name="vrclog-load", daemon=True)
        loader.start()
        while loader.is_alive():
            loader.join(POLL_S)
            if self._stop_code is not None:
                return None
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    @property
    def interrupted(self) -> bool:
        return self._stop_code is not None

    @property
    def stopped_code(self) -> int | None:
        """Why the run stopped before the end of its input (an exit code), or None."""
        return self._stop_code

    def interrupt(self, code: int) -> None:
        """Stops the run (safe from a signal handler): calls in flight are cancelled."""
        if self._stop_code is None:
            self._stop_code = code
        if self.runtime is not None:
            self.runtime.cancel()

    # --- workers ---

    def _process(self, batch: Lines) -> Batch:
        return process_batch(self.parsers, batch, lambda: self._stop_code is not None,
                             self.options.limits.max_line_bytes, self._stamper), []

    # --- main thread ---

    def _record(self, code: int) -> None:
        self.exit_code = max(self.exit_code, code)

    def _write(self, batch: Lines, outcomes: Outcomes) -> None:
        if self._halted:
            return
        stats = self.stats
        fail_fast = self.options.fail_fast
        fail_on = self.options.fail_on
        skip_long = self.options.long_lines == "skip"
        event_filter = self.options.event_filter
        filtering = event_filter.active
        by_type = stats.events_by_type
        write = self.writer.write
        counted = 0  # lines of the batch done: before an outcome, every line found nothing
        if outcomes.slowest is not None:
            stats.note_call(*outcomes.slowest)
        stats.unheaded += outcomes.unheaded
        if outcomes.skipped is not None:
            for parser, skipped in zip(self.parsers, outcomes.skipped, strict=True):
                if parser.prefilter is not None:
                    stats.prefilter_skipped[parser.name] += skipped
        try:
            for outcome in outcomes.found:
                counted = outcome.index
                if outcome.cancelled or self.output_closed:
                    self._halted = True
                    return
                errors = outcome.errors
                if errors and skip_long:
                    errors = self._skip_long(errors)
                    outcome.errors = errors
                if errors and fail_fast:
                    self._halted = True
                    self._report_errors(batch, outcome)
                    self.interrupt(max(failure.exit_code for failure in errors))
                    return
                counted += 1
                events = outcome.events
                if events and filtering:
                    kept = [e for e in events if event_filter.keep(e)]
                    stats.filtered_out += len(events) - len(kept)
                    events = kept
                if events:
                    for event in events:
                        by_type[event.type] += 1
                    if not self.output_closed:
                        try:
                            write(batch.source, batch.first + outcome.index, batch.texts[outcome.index],
                                  events)
                        except OSError as exc:
                            self._write_failed(exc)
                    if fail_on and ("any" in fail_on or any(e.type in fail_on for e in events)):
                        self._record(ExitCode.FAIL_ON)
                        self._note_fail_on(batch, outcome.index, events)
                if errors:
                    self._report_errors(batch, outcome)
            counted = outcomes.done
            if self._state is not None and (point := batch.resume_point(counted)) is not None:
                self._state.advance(batch.source, *point)
        finally:
            stats.lines += counted

    def _skip_long(self, errors: list[LineFailure]) -> list[LineFailure]:
        kept = [failure for failure in errors if failure.kind != InputTooLarge.kind]
        if len(kept) < len(errors):
            self.stats.long_lines_skipped += 1
        return kept

    def _note_fail_on(self, batch: Lines, index: int, events: list[Event]) -> None:
        fail_on = self.options.fail_on
        for event in events:
            if "any" in fail_on or event.type in fail_on:
                if self._on_finding is not None:
                    from ..sinks.reports import Finding, event_message  # only with --report

                    self._on_finding(Finding(batch.source, batch.first + index, event.type, "error",
                                             event_message(event.type, event.to_dict())))
                hit = self.fail_on_hits.get(event.type)
                if hit is None:
                    self.fail_on_hits[event.type] = FailOnHit(1, f"{batch.source}:{batch.first + index}")
                else:
                    hit.count += 1

    def fail_on_report(self) -> list[str]:
        """Why --fail-on failed the run (one line per matched type), then a note for each
        asked-for type that matched nothing, with the nearest type seen."""
        lines = [f"--fail-on matched {kind}: {hit.count:,} event{'' if hit.count == 1 else 's'}, "
                 f"first at {hit.first}" for kind, hit in self.fail_on_hits.items()]
        unmatched = sorted(self.options.fail_on - {"any"} - set(self.fail_on_hits))
        if not self.options.plugins or not unmatched:  # load() refused the built-in parser's misspellings
            return lines
        seen = sorted((set(self.stats.events_by_type) | set(_builtin_types())) - {kind for kind in
                                                                               self.options.fail_on})
        for kind in unmatched:
            near = nearest_type(kind, seen)
            hint = f" (did you mean {near}?)" if near else ""
            lines.append(f"note: --fail-on {kind} matched no event{hint}")
        return lines

    # A closed stdout (the reader of `| head` went away) ends the run quietly.

    def _flush(self, final: bool = False) -> None:
        if not self.output_closed:
            try:
                self.writer.flush()
            except OSError as exc:
                self._write_failed(exc)
                return
            if self._state is not None and (final or time.perf_counter() - self._state_saved >= STATE_SAVE_S):
                self._save_state()

    def _save_state(self) -> None:
        """The cursor, after the output it covers was flushed (``_flush``)."""
        assert self._state is not None
        self._state_saved = time.perf_counter()
        try:
            self._state.save()
        except OutputError as exc:
            self.report(Diagnostic(str(exc), per_line=False, severity="error"))
            self._record(exc.exit_code)
            self._state = None  # one message; the run goes on without a cursor

    def _write_failed(self, exc: OSError) -> None:
        """A reader gone (BrokenPipeError) ends the run quietly; any other failure (a full
        disk, a bad descriptor) is one error and exit 2.  Either way no later event could
        reach the output, so the run stops."""
        if isinstance(exc, BrokenPipeError):
            self._close_output()
            return
        failure = OutputError.writing(exc)
        self.report(Diagnostic(str(failure), per_line=False, severity="error"))
        self._close_output(failure.exit_code)

    def _close_output(self, code: int = ExitCode.OK) -> None:
        """Stops at once, with ``code``; what was not written does not count."""
        self.output_closed = True
        self._halted = True
        self.interrupt(code)

    def _report_errors(self, batch: Lines, outcome: LineOutcome) -> None:
        for failure in outcome.errors:
            self._record(failure.exit_code)
            self.stats.errors_by_kind[failure.kind] += 1
            problem = LineProblem(batch.source, batch.first + outcome.index, failure.plugin,
                                  failure.kind, failure.message, failure.code)
            # One line each, the plugin's newlines and controls written out: the problem
            # itself keeps the plugin's own text (a library caller's on_error gets it).
            text = one_line(str(problem), DIAGNOSTIC_CHARS)
            if failure.detail and self.options.capture_plugin_stderr:  # --verbose: the traceback
                text += "".join(f"\n    {one_line(line, DIAGNOSTIC_CHARS)}"
                                for line in failure.detail.splitlines()[:DETAIL_LINES])
            self.report(Diagnostic(text, per_line=True))
            if self._on_finding is not None:
                from ..sinks.reports import Finding

                code = f" ({one_line(failure.code, 100)})" if failure.code else ""
                self._on_finding(Finding(batch.source, problem.line, failure.kind, "warning",
                                         f"{failure.plugin}: {one_line(failure.message)}{code}"))

    def _drain(self, pool: OrderedPool[Lines, Batch]) -> None:
        for batch, result in pool.completed():
            if isinstance(result, BaseException):
                if self._stop_code is None:
                    # Not a worker stopped at the run's end: a bug in the batch core.  Raised,
                    # it is an internal error (exit 70), never a silently shortened output.
                    raise result
                self._halted = True  # a worker was stopped: nothing of it is written
                continue
            outcomes, logs = result
            if self._on_log is not None:
                for log in logs:
                    self._on_log(log)
            self._write(batch, outcomes)

    def _drain_all(self, pool: OrderedPool[Lines, Batch]) -> None:
        while pool.busy and self._stop_code is None:
            pool.wait_head(POLL_S)
            self._drain(pool)
            self._tick()

    def _pool(self) -> OrderedPool[Lines, Batch]:
        opts = self.options
        window = max(4, opts.jobs * 4)
        if opts.workers == "auto" and opts.default_jobs and opts.jobs > 1 \
                and self._little_reaches_plugins():
            return OrderedPool(Inline(), self._process, window)
        if use_processes(opts):
            # Threads share one interpreter lock; processes scale (see README, Performance).
            from .workers import ProcessWorkers, workers_that_fit

            fit, limit, want = workers_that_fit(opts.jobs)
            if fit < opts.jobs:  # a low `ulimit -n`: EMFILE while starting them was exit 70
                need = f"--jobs {opts.jobs} needs about {want}"
                if fit == 0 and opts.workers == "processes":
                    raise UsageError(f"ulimit -n {limit}: too few file descriptors for worker processes "
                                     f"({need}); raise the limit, or use --workers threads")
                how = f"{fit} worker process{'es' if fit > 1 else ''}" if fit else "threads"
                self.report(Diagnostic(f"ulimit -n {limit} leaves room for {fit} of {opts.jobs} worker "
                                       f"processes ({need}): running on {how}", per_line=False,
                                       severity="warning"))
                if fit:
                    workers = ProcessWorkers(opts.parser_spec, fit)
                    return OrderedPool(workers, self._process, max(4, fit * 4), control=workers)
            else:
                workers = ProcessWorkers(opts.parser_spec, opts.jobs)
                return OrderedPool(workers, self._process, window, control=workers)
        if opts.jobs == 1 or not opts.plugins:
            # One job, or only the built-in parser (pure Python: threads would only
            # take turns holding the interpreter lock).
            return OrderedPool(Inline(), self._process, window)
        from concurrent.futures import ThreadPoolExecutor  # only for threads: see pool.Inline

        return OrderedPool(
            ThreadPoolExecutor(max_workers=opts.jobs, thread_name_prefix="vrclog-worker"),
            self._process, window)

    def _raw_needles(self) -> tuple[bytes, ...] | None:
        """prefilter.raw_needles of the run's parsers: None, without importing it, when
        one has no prefilter (the built-in parser: raw_needles' answer then too)."""
        prefilters = [getattr(p, "prefilter", None) for p in self.parsers]
        if None in prefilters:
            return None
        from ..host.prefilter import raw_needles

        return raw_needles(prefilters)

    def _little_reaches_plugins(self) -> bool:
        """Whether the prefilters leave too little for workers to pay (regular files,
        substring prefilters on every parser, SPREAD_MIN_BYTES)."""
        needles = self._raw_needles()
        if needles is None or self.options.follow:
            return False
        passing = needled_bytes(self.options.paths, needles)
        return passing is not None and passing < SPREAD_MIN_BYTES

    def _feed(self, window: int) -> Callable[[], object]:
        """The next item, _EOF at the end, or None when nothing is ready within POLL_S.

        Regular files are read by the thread that calls this: a read never
        blocks for long, and a reader thread would only compete for the
        interpreter lock.  Pipes, terminals and --follow get a reader thread,
        so a quiet input never keeps the main thread from signals.
        """
        if not self.options.follow and regular_file_bytes(self.options.paths) is not None:
            iterator = self._items()
            return lambda: next(iterator, _EOF)
        items: queue.Queue[object] = queue.Queue(maxsize=window * 2)

        def read() -> None:
            try:
                for item in self._items():
                    items.put(item)
                    if self._stop_code is not None:
                        return
                items.put(_EOF)
            except Exception as exc:  # noqa: BLE001 - a bug: raised on the main thread, not a hang
                items.put(_ReaderFailed(exc))

        threading.Thread(target=read, name="vrclog-reader", daemon=True).start()

        def get() -> object:
            try:
                item = items.get(timeout=POLL_S)
            except queue.Empty:
                return None
            if isinstance(item, _ReaderFailed):
                raise item.error
            return item

        return get

    def _cancel_calls(self) -> None:
        if self.runtime is not None:
            self.runtime.cancel()

    def run(self) -> int:
        """Processes every input; returns the exit code (the largest that applies)."""
        pool = self._pool()
        inline = pool.inline
        next_item = self._feed(pool.window)
        # Lines run on this thread: a signal must cancel the call in flight from outside it.
        wants_arming = inline and self.runtime is not None
        try:
            with contextlib.ExitStack() as armed:
                def arm() -> None:
                    """From the first lines on: an empty input never runs wasm (the socket
                    pair and its module are ~6 ms of start-up)."""
                    from .wakeup import cancel_on_signals  # a socket pair: only where wasm runs here

                    armed.enter_context(cancel_on_signals(tuple(stop_signals()), self._cancel_calls))

                self._loop(pool, next_item, arm if wants_arming else None)
        finally:
            if self._stop_code is not None and self.runtime is not None:
                self.runtime.cancel()
            pool.shutdown(kill=self._stop_code is not None)
            self._flush(final=True)
        if self._stop_code is not None:
            self._record(self._stop_code)
        self.stats.finished = time.perf_counter()
        self._tick(force=True)
        return self.exit_code

    def _loop(self, pool: OrderedPool[Lines, Batch], next_item: Callable[[], object],
              arm: Callable[[], None] | None = None) -> None:
        """Feeds the pool and writes what it gives back; ``arm``: called before the first
        lines go to a pool that runs them on this thread (signals must then cancel the
        call in flight from outside it)."""
        while self._stop_code is None:
            self._tick()
            self._drain(pool)
            if pool.full:
                pool.wait_head(POLL_S)
                continue
            item = next_item()
            if item is None:
                continue
            if item is _EOF:
                break
            if isinstance(item, Idle):
                self._drain_all(pool)
                self._flush()
            elif isinstance(item, SourceFailed):
                self._drain_all(pool)
                self._record(item.error.exit_code)
                self.report(Diagnostic(str(item.error), per_line=False, severity="error"))
                if self._on_finding is not None and item.source:
                    from ..sinks.reports import Finding

                    self._on_finding(Finding(item.source, item.line, "input_error", "error",
                                             str(item.error)))
            elif isinstance(item, Lines):
                if arm is not None:
                    arm()
                    arm = None
                pool.submit(item)
            elif isinstance(item, SourceWarning):
                self._drain_all(pool)  # after the lines read before it, as a SourceFailed is
                self.report(Diagnostic(item.message, per_line=False, severity="warning"))
        if self._stop_code is None:
            self._drain_all(pool)
        if self._stop_code is not None:  # also when stopped during that last drain
            # Cancelled calls return at once; write what finished before the first gap.
            # A worker process that does not answer in time is killed in shutdown.
            pool.cancel_workers()
            deadline = time.perf_counter() + CANCEL_GRACE_S
            while pool.busy and time.perf_counter() < deadline:
                pool.wait_head(POLL_S / 5)
                self._drain(pool)

    def _items(self) -> Iterator[Item]:
        opts = self.options
        # Plugin lines are spread over workers in small batches.  Where parsers skim
        # (the built-in parser, prefiltered plugins), a batch holds little work and
        # costs the same whatever its size: wide ones.
        skims = all(p.prefilter is not None or as_builtin(p) is not None for p in self.parsers)
        batch_lines = SKIM_BATCH_LINES if skims else BATCH_LINES
        offsets = opts.provenance or self._state is not None
        if opts.follow:
            from .follow import follow_items  # here: only tail and --follow need it

            return follow_items(opts.paths[0], opts.limits.max_line_bytes,
                                lambda: self._stop_code is not None, batch_lines, offsets=offsets,
                                start_of=self._state.start_of if self._state is not None else None,
                                new=opts.new)

        def count(n: int) -> None:
            self.stats.bytes_read += n

        return read_items(list(opts.paths), opts.limits.max_line_bytes, batch_lines, on_bytes=count,
                          needles=self._raw_needles(),
                          finder=_builtin_line_finder() if sole_builtin(self.parsers) is not None else None,
                          offsets=offsets, starts=self._starts())

    def _starts(self) -> dict[str, tuple[int, int]] | None:
        """Where each file starts: its end as of now (--new), the cursor's place (--state),
        or its beginning."""
        paths = [path for path in self.options.paths if path != "-"]
        if self.options.new:
            starts = {}
            for path in paths:
                with contextlib.suppress(OSError):  # unreadable: the reader reports it
                    starts[path] = snapshot_end(path)
            return starts
        if self._state is None:
            return None
        return {path: self._state.start_of(path) for path in paths}

    def _tick(self, force: bool = False) -> None:
        """Every TICK_S: the progress hook, and a look at whether stdout's reader left."""
        now = time.perf_counter()
        if force or now - self._last_tick >= TICK_S:
            self._last_tick = now
            # Events reach the reader within a tick, even from a big file with few of
            # them (its reader may be `head`, waiting for one); and a reader that left
            # stops the run at once.
            self._flush()
            if not self.output_closed and self.writer.reader_gone():
                self._close_output()
            if self._on_tick is not None:
                self._on_tick(self.stats)
