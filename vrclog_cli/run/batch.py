"""One batch of lines through every parser: the core a worker (thread or process) runs.

It knows nothing of sources, pools or output: lines in, outcomes out, as plain
data that can cross a process boundary.  A prefilter selects its lines for the
whole batch at once, so rejected lines cost no Python call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from ..errors import Cancelled, InputTooLarge, LineError
from ..events import Event
from ..host.budget import take_slowest
from ..limits import Limits, format_size
from ..records import field, record
from .sources import Lines

if TYPE_CHECKING:  # wasmtime is loaded only when a plugin is: built-in runs start sooner
    from ..host.component import CompileNotice
    from ..host.plugin import LogHandler, PluginLog, Runtime
    from ..host.prefilter import Prefilter
    from ..vrchat.builtin import BuiltinParser
    from .provenance import Stamper


class Parser(Protocol):
    @property
    def name(self) -> str: ...

    #: Lines it rejects give no events and are never parsed; None: every line is parsed.
    @property
    def prefilter(self) -> Prefilter | None: ...

    def call(self, line: str) -> list[Event]: ...

    def parse(self, line: str) -> list[Event]:
        """``call`` without the prefilter: for lines the batch already selected."""
        ...


@record(frozen=True, slots=True)
class LineFailure:
    """A per-line error as plain data (it may cross a process boundary)."""

    plugin: str
    kind: str
    message: str
    code: str | None
    exit_code: int
    #: More than the message (an uncaught exception's traceback): shown with --verbose.
    detail: str | None = None

    @classmethod
    def of(cls, plugin: str, error: LineError) -> LineFailure:
        return cls(plugin, error.kind, str(error), getattr(error, "code", None), error.exit_code,
                   getattr(error, "detail", None))


_NO_EVENTS: list[Event] = []  # shared, never appended to: most lines have no events
_NO_ERRORS: list[LineFailure] = []


@record(slots=True)
class LineOutcome:
    #: Where in its batch: batch.line(index) is the line.
    index: int
    events: list[Event] = field(default_factory=list)
    errors: list[LineFailure] = field(default_factory=list)
    cancelled: bool = False


@record(slots=True)
class Outcomes:
    """What a batch gave.  Outcomes only for the lines where something was found
    (most lines of a log have nothing: nothing to build, pickle or look at)."""

    #: In line order; the last may be the cancelled line, where the batch stopped.
    found: list[LineOutcome]
    #: How many lines of the batch were finished (the cancelled line is not).
    done: int
    #: Per parser (in parser order), finished lines its prefilter kept from it; None: no prefilter.
    skipped: list[int] | None = None
    #: (CPU seconds, budget) of the plugin call that used the largest share of its budget
    #: (None: not measured; see ParserSpec.measure_cpu).
    slowest: tuple[float, float] | None = None
    #: Lines holding a message the built-in parser reads but no valid VRChat header
    #: (an impossible date or time): no event comes from them.
    unheaded: int = 0


_BUILTIN_MODULE = __name__.rsplit(".", 2)[0] + ".vrchat.builtin"


def as_builtin(parser: object) -> BuiltinParser | None:
    """The parser if it is the built-in one.  Asked of the module only once it is loaded:
    no parser can be one before, and a plugin-only run never imports the built-in
    parser (its patterns are ~6 ms of start-up)."""
    module = sys.modules.get(_BUILTIN_MODULE)
    if module is not None and isinstance(parser, module.BuiltinParser):
        return cast("BuiltinParser", parser)
    return None


def sole_builtin(parsers: Sequence[Parser]) -> BuiltinParser | None:
    """The built-in parser when it is the only parser: it never fails or blocks, and can
    skim a batch (and the reader can skip decoding the lines it cannot use)."""
    return as_builtin(parsers[0]) if len(parsers) == 1 else None


def process_batch(parsers: Sequence[Parser], batch: Lines, stopped: Callable[[], bool],
                  max_line_bytes: int, stamper: Stamper | None = None) -> Outcomes:
    """Every parser on every line of a batch it selects; stops at the first cancelled line.

    The hot loop of every run: an outcome is built only when something was
    found, and gets lists of its own only for what it holds.  A prefilter
    selects its lines for the whole batch in one pass, so rejected lines cost
    no Python call at all.  ``stamper``: events get their source and id (provenance).
    """
    texts = batch.texts
    too_large = batch.too_large
    if (builtin := sole_builtin(parsers)) is not None and not too_large:
        # The built-in parser alone: it never fails or blocks, and skips a whole batch at once.
        if stopped():
            return Outcomes([LineOutcome(0, _NO_EVENTS, _NO_ERRORS, True)], 0)
        found_events, unheaded = builtin.find_events(texts)
        if stamper is not None:
            stamper.stamp_lines(batch, 0, found_events)
        return Outcomes([LineOutcome(i, events, _NO_ERRORS) for i, events in found_events], len(texts),
                        unheaded=unheaded)
    chosen = _select(parsers, texts, too_large)
    selected = [mine for mine in chosen if mine is not None] if chosen is not None else []
    if chosen is None or len(selected) < len(chosen):
        indices: Iterable[int] = range(len(texts))
    else:  # every parser has a prefilter: only the lines one of them selected
        indices = sorted(set().union(*selected, too_large or ()))
    found: list[LineOutcome] = []
    done = len(texts)
    unheaded = 0
    # The built-in parser among plugins tells a line without a valid header apart (read).
    among = next((b for parser in parsers if (b := as_builtin(parser)) is not None), None)
    for index in indices:
        if stopped():
            found.append(LineOutcome(index, _NO_EVENTS, _NO_ERRORS, True))
            done = index
            break
        if too_large and index in too_large:
            found.append(LineOutcome(index, _NO_EVENTS, [LineFailure.of("", InputTooLarge(
                f"line is {too_large[index]} bytes, over the {format_size(max_line_bytes)} "
                "line limit (--line-limit)"))]))
            continue
        text = texts[index]
        events: list[Event] = _NO_EVENTS
        errors: list[LineFailure] = _NO_ERRORS
        cancelled = False
        for k, parser in enumerate(parsers):
            if chosen is not None and (mine := chosen[k]) is not None and index not in mine:
                continue
            try:
                if parser is among and among is not None:
                    if (read := among.read(text)) is None:
                        unheaded += 1
                        continue
                    got = read
                else:
                    got = parser.parse(text)
            except LineError as exc:
                if errors is _NO_ERRORS:
                    errors = []
                errors.append(LineFailure.of(parser.name, exc))
                continue
            except Cancelled:
                cancelled = True
                break
            if got:
                if stamper is not None:
                    stamper.stamp(batch, index, k, got)
                events = got if events is _NO_EVENTS else [*events, *got]
        if cancelled:
            found.append(LineOutcome(index, events, errors, True))
            done = index
            break
        if events or errors:
            found.append(LineOutcome(index, events, errors))
    return Outcomes(found, done, _skipped(chosen, done, too_large), take_slowest(), unheaded)


def _select(parsers: Sequence[Parser], texts: list[str],
            too_large: dict[int, int] | None) -> list[set[int] | None] | None:
    """Per parser, the indices its prefilter lets through (None: all); None when no
    parser has a prefilter.  Lines too large to hold are never selected."""
    if all(parser.prefilter is None for parser in parsers):
        return None
    chosen: list[set[int] | None] = []
    for parser in parsers:
        prefilter = parser.prefilter
        if prefilter is None:
            chosen.append(None)
            continue
        picked = set(prefilter.select(texts))
        if too_large:
            picked.difference_update(too_large)
        chosen.append(picked)
    return chosen


def _skipped(chosen: list[set[int] | None] | None, done: int,
             too_large: dict[int, int] | None) -> list[int] | None:
    """Per parser, how many of the first ``done`` lines its prefilter kept from it."""
    if chosen is None:
        return None
    held = sum(1 for i in too_large if i < done) if too_large else 0
    return [0 if mine is None else done - held - sum(1 for i in mine if i < done) for mine in chosen]


@record(frozen=True)
class ParserSpec:
    """What it takes to build a run's parsers: all a worker process is sent."""

    plugins: tuple[str, ...] = ()
    #: Run the built-in VRChat parser ahead of the plugins (always, without plugins).
    builtin: bool = False
    limits: Limits = field(default_factory=Limits)
    capture_plugin_stderr: bool = False
    prefilter: bool = True
    #: Instances alive at once in one process (the pool's slots).
    instance_slots: int = 17
    #: The fewest it can work with (its calls at once): under an address-space limit, the
    #: pool may shrink to this rather than give up code without bounds checks.
    min_instance_slots: int = 2
    #: Whether plugin calls measure their CPU time (Outcomes.slowest): for --stats.
    measure_cpu: bool = False
    #: Whether events get their source and id (--provenance).
    provenance: bool = False


def build_parsers(spec: ParserSpec, on_log: LogHandler | None,
                  on_compile: CompileNotice | None = None) -> tuple[Runtime | None, list[Parser]]:
    """The built-in parser (when asked for, or without plugins) and every plugin, loaded."""
    parsers: list[Parser] = []
    if spec.builtin or not spec.plugins:
        from ..vrchat.builtin import BuiltinParser

        parsers.append(BuiltinParser())
    runtime = None
    if spec.plugins:
        from ..host.plugin import Runtime

        runtime = Runtime(spec.limits, on_log=on_log, capture_stderr=spec.capture_plugin_stderr,
                          instance_slots=spec.instance_slots, min_instance_slots=spec.min_instance_slots,
                          on_compile=on_compile, measure_cpu=spec.measure_cpu)
        try:
            parsers.extend(runtime.load(path, prefilter=spec.prefilter) for path in spec.plugins)
        except BaseException:
            runtime.close()
            raise
    return runtime, parsers




#: What a worker returns for a batch: its outcomes, and the plugin logs seen meanwhile.
Batch = tuple[Outcomes, list["PluginLog"]]
