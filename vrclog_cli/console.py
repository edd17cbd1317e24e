"""Everything a person reads on stderr (and pretty tables on stdout): rich, imported
only when something is printed with it (~30 ms of every start-up otherwise)."""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from .errors import ExitCode
from .events import one_line, printable

if TYPE_CHECKING:
    from rich.console import Console

    from .authoring.conformance import CheckReport
    from .authoring.inspection import PluginInfo
    from .host.plugin import PluginLog
    from .run.runner import Diagnostic, ParseRun
    from .run.stats import RunStats
    from .vrchat.event_types import EventType
    from .vrchat.sessions import Visit


class SturdyStderr(io.TextIOBase):
    """stderr that never changes a run: a message that cannot be written (its reader gone,
    ``2>&1 >out | head -1``; a full disk, ``2>/dev/full``) is dropped, with every later
    one, and the run goes on to the exit code it would have had.  Descriptor 2 is then
    pointed at /dev/null, so nothing fails again on the way out."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self.lost = False

    def _lose(self) -> None:
        self.lost = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                self._stream.write(text)
            except OSError:
                self._lose()
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._stream.flush()
            except OSError:
                self._lose()

    def isatty(self) -> bool:
        return not self.lost and self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._stream.errors

    def writable(self) -> bool:
        return True


def sturdy_stderr() -> None:
    """Makes sys.stderr a SturdyStderr (once)."""
    if sys.stderr is not None and not isinstance(sys.stderr, SturdyStderr):
        sys.stderr = SturdyStderr(sys.stderr)


class Printer(Protocol):
    def print(self, *objects: Any, **options: Any) -> None: ...


def make_console(**options: Any) -> Console:
    """A rich Console, rich imported only now (see LazyStderr)."""
    return _console_class()(**options)


@functools.cache
def _console_class() -> type[Console]:
    """rich's Console, except where the reader goes away (``vrclog types | head -1``):
    rich then exits with 1, which fails a ``set -o pipefail`` script; this raises
    BrokenPipeError, which ends every command quietly with 0, as parse does."""
    from rich.console import Console

    class QuietWhenReaderGone(Console):
        def render_str(self, text: str, **options: Any) -> Any:
            # Every string printed goes through here: one place where no text from a log
            # or a plugin can reach the terminal as a control sequence.
            return super().render_str(printable(text), **options)

        def on_broken_pipe(self) -> None:
            self.quiet = True  # nothing more is rendered on the way out
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    return QuietWhenReaderGone


class LazyStderr:
    """rich's Console on stderr, made on first use: importing rich costs ~30 ms of
    every start-up, and most runs print nothing there."""

    def __init__(self) -> None:
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = make_console(stderr=True, highlight=False, soft_wrap=True)
        return self._console

    @property
    def is_terminal(self) -> bool:
        return self.console.is_terminal

    def print(self, *objects: Any, **options: Any) -> None:
        try:
            self.console.print(*objects, **options)
        except (OSError, MemoryError):  # rich could not be imported (EMFILE, ulimit -v)
            if all(isinstance(o, str) for o in objects) and sys.stderr is not None:
                sys.stderr.write(printable(" ".join(objects)) + "\n")
                sys.stderr.flush()


@contextmanager
def compile_notice(err: LazyStderr, path: Path, size: int) -> Iterator[None]:
    """While a component compiles on first use (seconds): one line saying so, and on a
    terminal a spinner with the time so far, then how long it took."""
    from .limits import format_size

    what = f"vrclog: compiling {path} ({format_size(size)} component) for its first use"
    if not err.is_terminal:
        err.print(what + "; later runs load it from the cache", markup=False)
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    started = time.monotonic()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err.console, transient=True) as progress:
        progress.add_task(f"vrclog: compiling {path.name} ({format_size(size)} component, first use)",
                          total=None)
        yield
    err.print(f"vrclog: compiled {path.name} in {time.monotonic() - started:.1f} s "
              "(cached: later runs start at once)", markup=False)


class ProgressDisplay:
    """Rich progress on stderr: bytes and lines done, lines/s, events, errors, ETA."""

    def __init__(self, paths: Sequence[str], force: bool, console: Console | None = None) -> None:
        """``console``: the one the events are printed on, when they share the bar's terminal:
        what is printed there while the bar is live goes above it (rich's render hook),
        where printing to stdout behind its back overprinted the bar."""
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = console or make_console(stderr=True, force_terminal=True if force else None)
        total = 0
        for path in paths:
            try:
                total += os.stat(path).st_size
            except OSError:
                pass
        # One row within 80 columns (a wider one wraps, and its second row stays behind).
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=10),
            TextColumn("{task.fields[lines]:,} lines {task.fields[rate]:,.0f} lines/s "
                       "{task.fields[events]:,} events {task.fields[errors]:,} errors"),
            TimeRemainingColumn(), console=self.console, transient=True, auto_refresh=False)
        self.task = self.progress.add_task("parsing", total=total or None, lines=0, rate=0.0,
                                           events=0, errors=0)
        self._drawn = 0.0

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    REDRAW_S = 0.25

    def update(self, stats: RunStats) -> None:
        """Called by the run's main loop every 0.1 s; redraws here, at most every REDRAW_S.

        rich's own refresh thread took the interpreter lock from the parsing
        thread at every wasm call it made (10-30 % of a run), and a redraw costs
        a few milliseconds of the parsing thread's time.
        """
        now = time.monotonic()
        if now - self._drawn < self.REDRAW_S:
            return
        self._drawn = now
        elapsed = stats.elapsed
        self.progress.update(self.task, completed=stats.bytes_read, lines=stats.lines,
                             rate=stats.lines / elapsed if elapsed > 0 else 0.0,
                             events=stats.events, errors=stats.errors)
        self.progress.refresh()


def print_diagnostic(out: Printer, diag: Diagnostic, *, colour: bool) -> None:
    text = f"vrclog: {diag.severity}: {diag.text}" if diag.severity else diag.text
    out.print(text, markup=False, style="red" if colour else None)


def print_plugin_log(out: Printer, log: PluginLog) -> None:
    out.print(f"{log.plugin.name}: {log.level_name}: {one_line(log.message)}", markup=False)


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def print_run_end(out: Printer, run: ParseRun, code: int) -> None:
    """Why --fail-on failed the run, skipped long lines, and an interruption, in words."""
    for line in run.fail_on_report():
        out.print(f"vrclog: {line}", markup=False)
    if run.stats.long_lines_skipped:
        count = run.stats.long_lines_skipped
        out.print(f"vrclog: skipped {plural(count, 'line')} too long for a plugin "
                  "(--long-lines skip)", markup=False)
    if code in STOPPED:
        lines, events = run.stats.lines, run.stats.events
        out.print(f"vrclog: {STOPPED[code]} after "
                  f"{plural(lines, 'line')} ({plural(events, 'event')} written)", markup=False)


#: How a run stopped by a signal says so.
STOPPED: dict[int, str] = {ExitCode.INTERRUPTED: "interrupted", ExitCode.TERMINATED: "terminated",
           ExitCode.HUNG_UP: "hung up (SIGHUP)"}


def print_stats(out: Printer, stats: RunStats, code: int) -> None:
    stopped = code in STOPPED
    out.print(stats.table("vrclog summary" + (" (interrupted)" if stopped else "")))


def print_info(console: Console, details: PluginInfo) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print(f"[bold]{escape(details.path)}[/]  {details.size_bytes} bytes  sha256 {details.sha256}")
    memory = (f"{details.memory_min_pages}..{details.memory_max_pages or 'unbounded'} pages"
              if details.memory_min_pages is not None else "none exported")
    if details.kind == "component":
        console.print(f"component, world {details.world}   {details.wasi_model}", markup=False)
    else:
        console.print(f"ABI version: {details.abi_version or '-'}   WASI model: {details.wasi_model}   "
                      f"memory: {memory}")
    if details.prefilter is not None:
        console.print("prefilter: " + json.dumps(details.prefilter, ensure_ascii=False), markup=False)
    elif details.prefilter_problem:
        console.print(f"prefilter: [yellow]{escape(details.prefilter_problem)}[/]")
    else:
        console.print("prefilter: none (every line goes to the plugin)")
    console.print("event types: " + (", ".join(details.event_types) if details.event_types is not None
                                     else "not declared (vrclog plugin types declares them)"), markup=False)
    for title, items in (("exports", details.exports), ("imports", details.imports)):
        if not items:  # an empty table is only its borders
            console.print(f"{title}: none")
            continue
        table = Table(title=title, title_justify="left")
        for column in ("name", "kind", "type"):
            table.add_column(column)
        for item in items:
            name = (f"{item.module}#{item.name}" if details.kind == "component" else
                    f"{item.module}.{item.name}") if item.module else item.name
            table.add_row(name, item.kind, item.type)
        console.print(table)
    if details.valid:
        console.print("[green]valid[/]: vrclog can load this plugin")
    else:
        console.print(f"[red]invalid[/]: {details.problem}", markup=True)


TYPES_TITLE = "event types of the built-in parser (no --plugin)"
TYPES_FOOTER = ("Every event has type and timestamp; fields are left out when empty. "
                "Use the names with --include-types, --exclude-types and --fail-on.")


def types_text(types: Sequence[EventType]) -> str:
    """The built-in event types as plain text, for a pipe or a file: one line a type (name,
    meaning, fields), then a line that gives each; ``grep`` finds a type by its name.
    rich's table is for a terminal (importing rich is ~25 ms, most of such a run)."""
    width = max(len(kind.name) for kind in types)
    rows = [f"{kind.name:<{width}}  {kind.summary}  [{', '.join(kind.fields) or '-'}]" for kind in types]
    examples = [f"{kind.name:<{width}}  {kind.example}" for kind in types]
    return "\n".join([TYPES_TITLE, "", *rows, "", "example lines", *examples, "", TYPES_FOOTER]) + "\n"


def print_types(console: Console, types: Sequence[EventType]) -> None:
    """The built-in event types: name, meaning and fields, then a line that gives each."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=TYPES_TITLE, title_justify="left")
    for column in ("type", "what", "fields (data.* inside data)"):
        table.add_column(column)
    for kind in types:
        table.add_row(f"[bold]{kind.name}[/]", escape(kind.summary), escape(", ".join(kind.fields) or "-"))
    console.print(table)
    console.print("\n[bold]example lines[/]")
    for kind in types:
        console.print(f"[bold]{kind.name}[/]")
        console.print(f"  {escape(kind.example)}", style="dim", soft_wrap=True)
    console.print("\n" + TYPES_FOOTER)


def print_report(console: Console, report: CheckReport) -> None:
    for finding in report.findings:
        style = "red" if finding.severity == "violation" else "yellow"
        console.print(f"[{style}]{finding.severity}[/] {finding.where}: ", end="")
        console.print(finding.message, markup=False, end="")
        console.print(f"  [dim]hint: {finding.hint}[/]")
    stats = report.percentiles()
    if stats:
        console.print("per-line CPU time: " + ", ".join(f"{k} {v * 1e6:.0f} µs" for k, v in stats.items()))
        console.print("slowest: " + ", ".join(f"{where} ({t * 1e6:.0f} µs)"
                                               for where, t in report.slowest(3)))
    if report.abi_version is not None or report.world is not None:
        what = f"component, world {report.world}" if report.world else f"ABI version {report.abi_version}"
        console.print(f"{what}; prefilter: "
                      + (json.dumps(report.prefilter, ensure_ascii=False) if report.prefilter
                         else "none"), markup=False)
    if report.prefilter is not None and report.sample_lines:
        console.print(f"the prefilter skips {report.sample_skipped:,} of {report.sample_lines:,} sample "
                      f"lines ({report.sample_skipped / report.sample_lines:.1%}): no instance for them")
    violations = len(report.violations)
    warnings = len(report.findings) - violations
    verdict = "[green]PASS[/]" if report.ok else "[red]FAIL[/]"
    console.print(f"{verdict} {report.plugin}: {violations} violation(s), {warnings} warning(s), "
                  f"{len(report.timings)} line(s) timed")


def same_terminal(first: int, second: int) -> bool:
    """Whether two descriptors are one terminal (stdout and stderr on the same screen)."""
    try:
        return os.isatty(first) and os.isatty(second) and os.path.samestat(os.fstat(first), os.fstat(second))
    except OSError:
        return False


def duration_text(seconds: float) -> str:
    """2 h 05 min, 12 min, 40 s: how long, as a person says it."""
    whole = round(seconds)
    hours, minutes = divmod(whole // 60, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min" if minutes else f"{whole} s"


def print_visits(console: Console, visits: Sequence[Visit], met: Sequence[dict[str, Any]], *,
                 top: int = 10) -> None:
    """``vrclog sessions --format pretty``: a table of the visits, then who you spent most
    time with.  Names are a log's text: printable() keeps its escapes off the terminal."""
    from rich.table import Table
    from rich.text import Text

    if not visits:
        console.print("no visits: these logs have no world joins", style="dim", highlight=False)
        return
    table = Table(title=plural(len(visits), "visit"), title_justify="left", box=None,
                  header_style="bold underline", pad_edge=False)
    for name, justify, least in (("start", "left", 0), ("time", "right", 0), ("world", "left", 16),
                                 ("instance", "left", 0), ("people", "right", 0), ("notes", "left", 12)):
        table.add_column(name, justify=justify, overflow="fold",  # type: ignore[arg-type]
                         no_wrap=not least, min_width=least or None)
    for visit in visits:
        notes = [plural(len(visit.videos), "video")] if visit.videos else []
        if visit.screenshots:
            notes.append(plural(len(visit.screenshots), "screenshot"))
        if visit.notable:
            notes.append(f"{len(visit.notable)} notable")
        if visit.open:
            notes.append("open: log ended")
        kind = " ".join(filter(None, (visit.instance_type, visit.region)))
        table.add_row(visit.start.strftime("%Y-%m-%d %H:%M"), duration_text(visit.duration.total_seconds()),
                      Text(printable(visit.world_name or visit.world_id or "?"), style="bold"),
                      printable(kind), str(sum(not p.you for p in visit.people.values())),
                      Text(printable(", ".join(notes)), style="yellow" if visit.open else "dim"))
    console.print(table)
    if met and top:
        console.print()
        people = Table(title="Most time with", title_justify="left", box=None,
                       header_style="bold underline", pad_edge=False)
        people.add_column("player", overflow="fold")
        people.add_column("together", justify="right", no_wrap=True)
        people.add_column("visits", justify="right", no_wrap=True)
        for person in met[:top]:
            people.add_row(printable(person["name"] or person["id"] or "?"),
                           duration_text(person["overlap_s"]), str(person["visits"]))
        console.print(people)
