"""Events as an iterator, for programs: ``parse_lines`` and ``parse_files``.

The CLI's semantics on the same core (``batch.process_batch``): events in line
order, then parser order; every line in a fresh instance under the time
budget; per-line errors handed to ``on_error`` as ``LineProblem``s (the run
goes on), or raised as ``LineFailed`` when there is no ``on_error``.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, LineFailed, LineProblem
from ..events import Event
from ..limits import Limits
from ..vrchat.builtin import BuiltinParser
from .batch import Outcomes, Parser, ParserSpec, build_parsers, process_batch
from .provenance import Stamper, line_bytes, line_offsets
from .sources import BATCH_LINES, Lines, SourceFailed, read_items

if TYPE_CHECKING:
    from ..host.plugin import Plugin, Runtime
    from ..sinks.state import State

ErrorHandler = Callable[[LineProblem], None]


def parse_lines(lines: Iterable[str], *, plugins: Sequence[str | Path | Plugin] = (),
                builtin: bool = False, jobs: int = 1, limits: Limits | None = None,
                prefilter: bool = True, on_error: ErrorHandler | None = None,
                source: str = "<lines>", provenance: bool = False) -> Iterator[Event]:
    """The events of ``lines`` (a trailing line ending on each is dropped).

    ``plugins``: paths (loaded for this call) or loaded ``Plugin``s; without any,
    or with ``builtin=True`` ahead of them, the built-in VRChat parser.  ``jobs``
    threads parse at once; the order stays the input's.  Plugins are loaded at the
    call (a PluginLoadError comes here, not at the first event); the lines are read
    as the events are asked for.  ``provenance``: each event gets its ``source`` and ``id``
    (the README's Provenance), ``source`` naming the lines and each line's offset
    counting the UTF-8 bytes of the lines before it, each with one newline.
    """
    if isinstance(lines, str | bytes):
        raise TypeError("parse_lines takes an iterable of lines, not one string: "
                        "parse_lines([line]) or parse_lines(text.splitlines())")
    limits = limits or Limits()
    return _events(_batches(lines, source, limits.max_line_bytes, provenance), plugins, builtin, jobs,
                   limits, prefilter, on_error, provenance)


def located_events(lines: Iterable[str], *, plugins: Sequence[str | Path | Plugin] = (),
                   builtin: bool = False, limits: Limits | None = None, prefilter: bool = True,
                   on_error: ErrorHandler | None = None, source: str = "<lines>",
                   provenance: bool = False) -> Iterator[tuple[str, int, Event]]:
    """``parse_lines``, each event with its source and line number (for parse_bag's records)."""
    limits = limits or Limits()
    runtime, parsers = _parsers(plugins, builtin, 1, limits, prefilter)
    return _run(_batches(lines, source, limits.max_line_bytes, provenance), runtime, parsers, 1, limits,
                on_error, located=True, provenance=provenance)


def parse_files(paths: Sequence[str | Path], *, plugins: Sequence[str | Path | Plugin] = (),
                builtin: bool = False, jobs: int = 1, limits: Limits | None = None,
                prefilter: bool = True, on_error: ErrorHandler | None = None,
                provenance: bool = False, state: str | Path | None = None) -> Iterator[Event]:
    """``parse_lines`` over files read as the CLI reads them (gzip, BOM, CRLF, invalid
    UTF-8 replaced); a file that cannot be read or is damaged (a truncated gzip) is an
    InputError, or, with ``on_error``, a ``LineProblem`` of kind ``input_error`` at line 0
    (cannot be read) or at the first line it could not give whole (the other files are
    still read).  ``provenance``: each event gets its ``source`` (the file as given, the
    line, its byte offset) and ``id``, as ``vrclog parse --provenance`` gives them.
    ``state``: a cursor file, as ``vrclog parse --state`` keeps it: each file starts where
    the last call with it stopped, and the file is saved (every second, and when the
    iterator ends or is closed) up to the events handed out; a StateError (a UsageError)
    at the call for a file vrclog cannot read."""
    if isinstance(paths, str | bytes | Path):
        raise TypeError("parse_files takes a sequence of paths, not one: parse_files([path])")
    limits = limits or Limits()
    names = [str(p) for p in paths]
    cursor = None
    if state is not None:
        from ..sinks.state import State

        cursor = State.load(state)

    def batches() -> Iterator[Lines]:
        starts = {name: cursor.start_of(name) for name in names if name != "-"} if cursor else None
        for item in read_items(names, limits.max_line_bytes, BATCH_LINES,
                               offsets=provenance or cursor is not None, starts=starts):
            if isinstance(item, SourceFailed):
                if on_error is None:
                    raise item.error
                on_error(LineProblem(item.source or _source_of(item.error), item.line, "", "input_error",
                                     str(item.error)))
            elif isinstance(item, Lines):
                yield item

    return _events(batches(), plugins, builtin, jobs, limits, prefilter, on_error, provenance, cursor)


def _source_of(error: InputError) -> str:
    return str(error).split(": ", 1)[0]


def _batches(lines: Iterable[str], source: str, max_line_bytes: int,
             offsets: bool = False) -> Iterator[Lines]:
    """Lines batches; a line longer than the line limit is held as its size only; a byte
    order mark before the first line is left out of its text, as the file reader does;
    ``offsets``: each line's byte offset, counting the lines before it as given (a line
    without its ending, as one newline more)."""
    it = iter(lines)
    first = 1
    at = 0
    while chunk := list(itertools.islice(it, BATCH_LINES)):
        texts: list[str] = []
        too_large: dict[int, int] = {}
        for index, line in enumerate(chunk):
            text = line.removesuffix("\n").removesuffix("\r")
            if first == 1 and index == 0:
                text = text.removeprefix("\ufeff")
            size = len(text.encode("utf-8", "replace"))
            if size > max_line_bytes:
                too_large[index] = size
                text = ""
            texts.append(text)
        starts = None
        if offsets:
            starts = line_offsets(chunk, at)
            at = starts[-1] + line_bytes(chunk[-1])
        yield Lines(source, first, texts, too_large or None, starts)
        first += len(chunk)


def _events(batches: Iterable[Lines], plugins: Sequence[str | Path | Plugin] = (), builtin: bool = False,
            jobs: int = 1, limits: Limits | None = None, prefilter: bool = True,
            on_error: ErrorHandler | None = None, provenance: bool = False,
            cursor: State | None = None) -> Iterator[Event]:
    """The plugins loaded now (a load error at the call); the events as they are asked for."""
    limits = limits or Limits()
    runtime, parsers = _parsers(plugins, builtin, jobs, limits, prefilter)
    return _run(batches, runtime, parsers, jobs, limits, on_error, provenance=provenance, cursor=cursor)


#: How often a library call's cursor (parse_files' state) is saved, as events are handed out.
STATE_SAVE_S = 1.0


def _run(batches: Iterable[Lines], runtime: Runtime | None, parsers: list[Parser], jobs: int,
         limits: Limits, on_error: ErrorHandler | None, located: bool = False,
         provenance: bool = False, cursor: State | None = None) -> Iterator[Any]:
    stopped = False
    saved = time.perf_counter()
    stamper = Stamper(parsers) if provenance else None

    def run(batch: Lines) -> Outcomes:
        return process_batch(parsers, batch, lambda: stopped, limits.max_line_bytes, stamper)

    try:
        for batch, outcomes in _in_order(batches, run, jobs):
            for outcome in outcomes.found:
                for failure in outcome.errors:
                    problem = LineProblem(batch.source, batch.first + outcome.index, failure.plugin,
                                          failure.kind, failure.message, failure.code)
                    if on_error is None:
                        raise LineFailed(problem)
                    on_error(problem)
                if located:
                    where = batch.first + outcome.index
                    for event in outcome.events:
                        yield batch.source, where, event
                else:
                    yield from outcome.events
            if cursor is not None and (point := batch.resume_point(outcomes.done)) is not None:
                cursor.advance(batch.source, *point)
                if time.perf_counter() - saved >= STATE_SAVE_S:
                    cursor.save()
                    saved = time.perf_counter()
    finally:  # done, failed, or abandoned by the caller: stop the calls in flight
        stopped = True
        if runtime is not None:
            runtime.cancel()
            runtime.close()
        if cursor is not None:  # up to the last batch whose events were all handed out
            cursor.save()


def _parsers(plugins: Sequence[str | Path | Plugin], builtin: bool, jobs: int, limits: Limits,
             prefilter: bool) -> tuple[Runtime | None, list[Parser]]:
    """The parsers of a call; the runtime this call made (for plugins given as paths)."""
    paths = tuple(str(p) for p in plugins if isinstance(p, (str, Path)))
    if paths and len(paths) != len(plugins):
        raise TypeError("give plugins as paths or as loaded Plugins, not both")
    if paths or not plugins:
        return build_parsers(ParserSpec(paths, builtin, limits, prefilter=prefilter,
                                        instance_slots=jobs + 16, min_instance_slots=jobs + 1), None)
    loaded: list[Parser] = [p for p in plugins if not isinstance(p, (str, Path))]
    return None, ([BuiltinParser()] if builtin else []) + loaded


def _in_order(batches: Iterable[Lines], run: Callable[[Lines], Outcomes],
              jobs: int) -> Iterator[tuple[Lines, Outcomes]]:
    """Each batch with its outcomes, in input order; ``jobs`` threads at once."""
    if jobs <= 1:
        for batch in batches:
            yield batch, run(batch)
        return
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="vrclog-api") as pool:
        pending: deque[tuple[Lines, Future[Outcomes]]] = deque()
        for batch in batches:
            pending.append((batch, pool.submit(run, batch)))
            if len(pending) >= jobs * 4:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
