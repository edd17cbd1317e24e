"""The ``vrclog`` command line: options in, a ParseRun wired up, an exit code out.

It is a client of the library's public API (``vrclog_cli.__all__``) and of
``console`` (what a person reads); tests/test_architecture.py keeps it so.
Every error a user can cause is a VrclogError or a click usage error and is
shown as one line on stderr; a traceback appears only with --debug.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from . import (
    ExitCode,
    Limits,
    OutputError,
    UsageError,
    VrclogError,
    __version__,
    forward_console_close,
    parse_duration,
    parse_size,
    stop_signals,
    take_early_stops,
)
from .console import (
    LazyStderr,
    ProgressDisplay,
    compile_notice,
    make_console,
    print_diagnostic,
    print_info,
    print_plugin_log,
    print_report,
    print_run_end,
    print_stats,
    print_types,
    print_visits,
    same_terminal,
    sturdy_stderr,
    types_text,
)
from .records import record, replace

if TYPE_CHECKING:  # the run, the parsers, rich, the plugin tools, progress and tables are
    # imported when used: start-up is paid on every run (see README, Performance), and
    # `vrclog --version` or `--help` needs none of them.
    from . import Diagnostic, EventWriter, ParseOptions, PluginLog, ReportSpec

F = TypeVar("F", bound=Callable[..., Any])
SIGNAL_EXIT = stop_signals()
#: Stop signals closer together than this are one stop: `timeout -s INT` sends SIGINT to
#: the process and to its group, and a person's second Ctrl-C comes later than that.
SAME_STOP_S = 0.5


def version_text() -> str:
    try:
        from . import wasmtime_version  # read without importing wasmtime (host/installed.py)

        wasmtime = wasmtime_version()
    except VrclogError as exc:  # a wasmtime without the C API vrclog needs
        wasmtime = f"unusable: {exc}"
    return f"vrclog {__version__} (wasmtime {wasmtime}, Python {sys.version.split()[0]})"


def show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_text())
        ctx.exit()


class ParsedParam(click.ParamType):  # type: ignore[type-arg]
    """A click type backed by one of our parse functions (ValueError means invalid)."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _parse_report_spec(text: str) -> ReportSpec:
    from . import parse_report_spec  # the reports module only when --report is given

    return parse_report_spec(text)


def Duration() -> ParsedParam:  # capitalised: reads like a type in option declarations
    return ParsedParam("DURATION", parse_duration)


def Size() -> ParsedParam:
    return ParsedParam("SIZE", parse_size)


class ReaderGone(Exception):
    """The reader of stdout went away (``vrclog types | head -1``).  Not an OSError:
    click would catch that itself and exit 1, which fails a ``set -o pipefail``
    script; main() ends quietly with 0 instead, as a parse run does."""


class Commands(click.Group):
    """The top-level group: a broken pipe anywhere under it becomes ReaderGone, in its
    own options (``vrclog --help``, ``--version``: make_context) as in a command's."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _reader_gone():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _reader_gone():
            return super().invoke(ctx)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[Any, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name not in ("parse", "tail"):  # (those take them over with their own handlers)
            # Stop signals held while vrclog started (__main__): Ctrl-C acts as usual again.
            if early := take_early_stops():
                raise SystemExit(SIGNAL_EXIT[early[0]])
        return name, command, rest


@contextlib.contextmanager
def _reader_gone() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError as exc:
        raise ReaderGone() from exc


@click.group(cls=Commands,
             context_settings={"help_option_names": ["-h", "--help"], "show_default": False})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=show_version,
              help="Show the version and exit.")
def cli() -> None:
    """Parse logs with WebAssembly plugins; events come out as JSON Lines."""


DEFAULTS = Limits()


def env_option(*decls: str, **attrs: Any) -> Callable[[F], F]:
    """A click option also readable from VRCLOG_<OPTION> (shown in --help)."""
    long_name = next(d for d in decls if d.startswith("--")).split("/")[0]
    attrs.setdefault("envvar", "VRCLOG_" + long_name.lstrip("-").replace("-", "_").upper())
    attrs.setdefault("show_envvar", True)
    if attrs.get("multiple"):  # click splits a repeatable option's variable: say how
        how = ("paths separated by ':' (';' on Windows)" if isinstance(attrs.get("type"), click.Path)
               else "values separated by spaces")
        attrs["help"] = f"{attrs.get('help', '').rstrip()} {attrs['envvar']} holds {how}."
    return click.option(*decls, **attrs)


def complete_types(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of event type lists: the last comma-separated name is completed."""
    from click.shell_completion import CompletionItem

    from . import BUILTIN_TYPES

    head, comma, last = incomplete.rpartition(",")
    names = [t.name for t in BUILTIN_TYPES] + (["any"] if param.name == "fail_on" else [])
    return [CompletionItem(head + comma + name) for name in names if name.startswith(last)]


@functools.cache
def path_type(**flags: Any) -> click.Path:
    """One click.Path per set of flags, shared by the options that take it: making each
    asks gettext for its messages' translations (~0.23 ms apiece, at every start)."""
    return click.Path(**flags)


def parse_options(f: F) -> F:
    """The options of `parse`, shared by its `tail` alias."""
    for decorator in reversed([
        env_option("--plugin", "plugins", multiple=True, metavar="PATH",
                   type=path_type(dir_okay=True, readable=False),  # for completion: the loader checks
                   help="A .wasm (or .wat) plugin; repeat for several (events in plugin order)."),
        env_option("--builtin", is_flag=True,
                   help="Run the built-in VRChat parser ahead of the plugins "
                        "(it runs alone without --plugin)."),
        env_option("--timeout", type=Duration(), default="50ms", show_default=True,
                   help="CPU time one line may take in one plugin (50ms, 2s, 250us): its own "
                        "work, never waiting for a CPU, garbage collection or one-time set-up."),
        env_option("--timeout-per-mib", type=Duration(), default="250ms", show_default=True,
                   help="More CPU time per MiB of a line, over --timeout (a 1 MiB line: 300 ms), so "
                        "a slow but linear plugin is not taken for an endless loop."),
        env_option("--jobs", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1,
                   show_default="number of CPUs",
                   help="Lines parsed at once (worker threads or processes: see --workers)."),
        env_option("--workers", type=click.Choice(["auto", "threads", "processes"]), default="auto",
                   show_default=True,
                   help="How --jobs runs: auto uses processes for plugins on large files "
                        "(they scale; threads start faster), and, unless --jobs is given, one "
                        "job where the plugins' prefilters let little through."),
        env_option("--format", "fmt", type=click.Choice(["jsonl", "pretty"]), default="jsonl",
                   show_default=True, help="jsonl for machines, pretty for people."),
        env_option("--raw", is_flag=True, help="Add each event's source line as raw_line."),
        env_option("--output", "output", metavar="TARGET", default="-",
                   help="Where events go: - (stdout, the default) or sqlite:PATH (a database "
                        "that keeps each event once, and its own cursor: see --db)."),
        env_option("--db", metavar="PATH", type=path_type(dir_okay=False),
                   help="Events into the SQLite database PATH (--output sqlite:PATH): each event "
                        "once by its id, and a rerun starts each file where the last one stopped."),
        env_option("--new", is_flag=True,
                   help="Only lines written after the run starts: each file starts at its end as "
                        "of then (tail: live events without the history)."),
        env_option("--state", metavar="FILE", type=path_type(dir_okay=False),
                   help="A cursor: each file starts where the last run with this FILE finished "
                        "writing (a replaced or truncated file from its start); saved as the run goes."),
        env_option("--provenance", is_flag=True,
                   help="Add each event's source (file, line, byte offset) and id: the same line "
                        "of the same log gives the same id on every run."),
        env_option("--fail-on", multiple=True, metavar="TYPE", shell_complete=complete_types,
                   help="Exit 1 if an event of this type is written; repeatable; 'any' for every type."),
        env_option("--fail-fast", is_flag=True, help="Stop at the first per-line error."),
        env_option("--include-types", multiple=True, metavar="TYPES", shell_complete=complete_types,
                   help="Write only these event types (comma-separated, repeatable)."),
        env_option("--exclude-types", multiple=True, metavar="TYPES", shell_complete=complete_types,
                   help="Leave out these event types (comma-separated, repeatable)."),
        env_option("--since", metavar="TIME", help="Only events at or after this RFC 3339 time."),
        env_option("--until", metavar="TIME", help="Only events at or before this RFC 3339 time."),
        env_option("--strict-time", is_flag=True,
                   help="With --since/--until, also drop events that have no timestamp."),
        env_option("--follow", "-f", is_flag=True,
                   help="Keep reading the FILE (or --log-dir's newest log) as it grows, like tail -F; "
                        "Ctrl-C ends it (exit 130)."),
        env_option("--log-dir", type=path_type(file_okay=False), metavar="DIR",
                   help="Read VRChat's output_log_*.txt files from DIR (oldest first)."),
        env_option("--stats", is_flag=True, help="Print a summary table on stderr at the end."),
        env_option("--report", "reports", multiple=True, metavar="FORMAT[=PATH]",
                   type=ParsedParam("FORMAT[=PATH]", _parse_report_spec),
                   help="Also write the findings (--fail-on matches, per-line errors) for CI: "
                        "github (annotations, on stderr), junit=PATH, sarif=PATH, gitlab=PATH, "
                        "markdown[=PATH] (default: $GITHUB_STEP_SUMMARY); repeatable."),
        env_option("--progress/--no-progress", default=None,
                   help="Progress on stderr (default: when stderr is a terminal and input is files)."),
        env_option("--memory-limit", type=Size(), default=DEFAULTS.max_memory_bytes,
                   show_default="64MiB", help="Linear memory per plugin instance."),
        env_option("--plugin-size-limit", type=Size(), default=None,
                   show_default="10MiB, components 64MiB", help="Largest plugin file accepted."),
        env_option("--output-limit", type=Size(), default=DEFAULTS.max_output_bytes, show_default="1MiB",
                   help="Largest plugin output per line."),
        env_option("--line-limit", type=Size(), default=DEFAULTS.max_line_bytes, show_default="1MiB",
                   help="Longest line read; longer ones are input_too_large. "
                        "ABI v2 plugins get every line up to it whole."),
        env_option("--long-lines", type=click.Choice(["error", "skip"]), default="error",
                   show_default=True,
                   help="A line too long for a plugin (ABI v1's 8 KiB input, or --line-limit): "
                        "an input_too_large error, or skipped and counted."),
        env_option("--prefilter/--no-prefilter", default=True, show_default=True,
                   help="Honour each plugin's declared prefilter (--no-prefilter: every line "
                        "to every plugin)."),
        env_option("--verbose", "-v", is_flag=True,
                   help="Also show plugins' debug/info logs and stderr."),
        env_option("--quiet", "-q", is_flag=True,
                   help="Hide per-line diagnostics (the exit code stays)."),
        env_option("--debug", is_flag=True, help="Show tracebacks for internal errors."),
    ]):
        f = decorator(f)
    return f


#: parse's options that mean nothing to tail (it always follows its FILE or folder).
NOT_FOR_TAIL = ("follow", "log_dir")


@cli.command(short_help="Parse FILEs (or stdin) and write events as JSON Lines.")
@click.argument("files", nargs=-1, type=path_type(dir_okay=True, allow_dash=True, readable=False))
@parse_options
def parse(files: tuple[str, ...], **opts: Any) -> None:
    """Parse FILEs (or standard input; '-' is stdin) and write events to stdout.

    Without FILE and with nothing piped in, reads the VRChat log folder
    (or --log-dir). gzip-compressed inputs are read transparently.

    \b
    Exit codes: 0 ok, 1 --fail-on matched, 2 usage or input error,
    3 plugin load error, 4 plugin runtime error, 5 plugin timeout,
    70 internal error (a bug in vrclog), 130 interrupted (SIGINT),
    143 terminated (SIGTERM); the largest wins.
    """
    raise SystemExit(run_parse(*run_settings(list(files), opts)))


@cli.command(short_help="Follow a log as it grows: parse --follow.")
@click.argument("file", required=False, type=path_type(dir_okay=True, readable=False))
def tail(file: str | None, **opts: Any) -> None:
    """Follow FILE (or a folder's newest VRChat log; without FILE, VRChat's log
    folder) as it grows, like tail -F: parse --follow.  Ctrl-C ends it (exit 130)."""
    settings = run_settings([file] if file else [], {**opts, "follow": True, "log_dir": None})
    raise SystemExit(run_parse(*settings))


# tail takes parse's options but those two, the same objects: building them again cost
# ~2.5 ms of every start (each click type asks gettext for its messages' translations).
tail.params += [p for p in parse.params if isinstance(p, click.Option) and p.name not in NOT_FOR_TAIL]


def resolve_inputs(files: list[str], log_dir: str | None, follow: bool) -> list[str]:
    """FILEs as given; else --log-dir or the VRChat log folder when stdin has no data."""
    from . import default_log_dirs, find_default_logs, log_files

    if files:
        if log_dir is not None:
            raise UsageError("--log-dir reads a folder of VRChat logs: give it or FILEs, not both")
        if follow and (len(files) != 1 or files[0] == "-"):
            raise UsageError("--follow takes exactly one FILE or folder (not stdin)")
        return files
    if not follow and log_dir is None and sys.stdin is not None and not sys.stdin.isatty():
        return ["-"]  # (a closed stdin, `<&-`, has no data either)
    directory = Path(log_dir) if log_dir else find_default_logs()[0]
    if directory is not None and not directory.is_dir():
        raise UsageError(f"--log-dir {directory}: not a folder")
    if directory is None:
        searched = ", ".join(str(d) for d in default_log_dirs())
        if follow and sys.stdin is not None and not sys.stdin.isatty():
            raise UsageError("--follow needs a FILE or folder: it cannot follow stdin (to read a pipe, "
                             f"leave out --follow; no VRChat log folder found; looked in: {searched})")
        raise UsageError("no input: give FILEs, pipe a log into stdin, or use --log-dir DIR "
                         f"(no VRChat log folder found; looked in: {searched})")
    if follow:
        return [str(directory)]
    logs = log_files(directory)
    if not logs:
        raise UsageError(f"no VRChat logs (output_log_*.txt) in {directory}")
    return [str(p) for p in logs]


@record(frozen=True)
class View:
    """How a run shows itself: the choices that concern a person, not the library."""

    fmt: str = "jsonl"
    raw: bool = False
    stats: bool = False
    progress: bool | None = None
    verbose: bool = False
    quiet: bool = False
    reports: tuple[ReportSpec, ...] = ()
    #: An SQLite database the events go to (--output sqlite:PATH, --db), instead of stdout.
    database: str | None = None


def _is_default(name: str) -> bool:
    """Whether the running command's option ``name`` was left at its default (neither
    given on the command line nor by its VRCLOG_ variable)."""
    source = click.get_current_context().get_parameter_source(name)
    return source in (click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP)


def run_settings(files: list[str], opts: dict[str, Any]) -> tuple[ParseOptions, View]:
    """parse's option values as the library's ParseOptions and the CLI's View."""
    from . import EventFilter, ParseOptions, split_types

    if opts["verbose"] and opts["quiet"]:
        raise UsageError("--verbose and --quiet cannot be used together")
    limits = replace(DEFAULTS, timeout_s=opts["timeout"], timeout_per_mib_s=opts["timeout_per_mib"],
                     max_memory_bytes=opts["memory_limit"],
                     max_output_bytes=opts["output_limit"], max_line_bytes=opts["line_limit"])
    if opts["plugin_size_limit"] is not None:  # one limit for both kinds when given
        limits = replace(limits, max_plugin_bytes=opts["plugin_size_limit"],
                         max_component_bytes=opts["plugin_size_limit"])
    options = ParseOptions(
        paths=resolve_inputs(files, opts["log_dir"], opts["follow"]), plugins=list(opts["plugins"]),
        builtin=opts["builtin"], limits=limits, jobs=opts["jobs"], default_jobs=_is_default("jobs"),
        fail_on=split_types(opts["fail_on"]),
        fail_fast=opts["fail_fast"], capture_plugin_stderr=opts["verbose"],
        event_filter=EventFilter.from_text(opts["include_types"], opts["exclude_types"], opts["since"],
                                           opts["until"], opts["strict_time"]),
        follow=opts["follow"], workers=opts["workers"], prefilter=opts["prefilter"],
        long_lines=opts["long_lines"], measure_cpu=opts["stats"], provenance=opts["provenance"],
        state=opts["state"], new=opts["new"])
    database = _database(opts["output"], opts["db"], opts)
    if database is not None:
        options = replace(options, provenance=True)  # a database stores every event's source and id
    view = View(fmt=opts["fmt"], raw=opts["raw"], stats=opts["stats"], progress=opts["progress"],
                verbose=opts["verbose"], quiet=opts["quiet"], reports=tuple(opts["reports"]),
                database=database)
    return options, view


def _database(output: str, db: str | None, opts: dict[str, Any]) -> str | None:
    """The SQLite database of --output sqlite:PATH or --db PATH, or None for stdout."""
    if output not in ("-", "") and not output.startswith("sqlite:"):
        raise UsageError(f"--output {output!r}: give - (stdout) or sqlite:PATH")
    database = output.removeprefix("sqlite:") if output.startswith("sqlite:") else None
    if db is not None:
        if database is not None and database != db:
            raise UsageError("--db and --output sqlite: name two databases: give one")
        database = db
    if database is None:
        return None
    if not database:
        raise UsageError("--output sqlite: needs a PATH (sqlite:events.db)")
    for name, value in (("--format pretty", opts["fmt"] == "pretty"), ("--raw", opts["raw"]),
                        ("--state", opts["state"] is not None)):
        if value:
            hint = " (the database is its own cursor)" if name == "--state" else ""
            raise UsageError(f"{name} cannot be used with SQLite output{hint}")
    return database


def run_parse(options: ParseOptions, view: View, writer: EventWriter | None = None,
              outputs: tuple[tuple[str, str], ...] = ()) -> int:
    """Runs one parse, its events to ``writer`` (by default the view's: stdout or a
    database); its exit code.  Ctrl-C and SIGTERM stop it cleanly.  ``outputs``: more
    (option, path) the run writes, refused if one is an input."""
    from . import JsonLinesWriter, ParseRun, PrettyWriter, Reports, RunOutcome, partial_reason

    err = LazyStderr()
    paths = options.paths
    show_progress = view.progress if view.progress is not None else (
        sys.stderr.isatty() and not options.follow and "-" not in paths)
    # Pretty events on the bar's own terminal are printed on one console with it, above it.
    together = (show_progress and view.fmt == "pretty" and sys.stdout is not None
                and same_terminal(sys.stdout.fileno(), sys.stderr.fileno()))
    shared = make_console(highlight=False) if together else None
    bar = ProgressDisplay(paths, force=view.progress is True, console=shared) if show_progress else None

    def report(diag: Diagnostic) -> None:
        if not (view.quiet and diag.per_line):
            print_diagnostic(bar.console if bar else err, diag, colour=err.is_terminal)

    def on_log(log: PluginLog) -> None:
        if view.verbose or log.level >= 2:
            print_plugin_log(err, log)

    if writer is None and view.database is None and sys.stdout is None:  # started with `>&-`
        raise OutputError("cannot write output: standard output is closed")
    reports = Reports(view.reports)
    # A path that cannot be written, or that is an input, stdout's file or another report's,
    # is a usage error before any line is read and before anything is truncated.
    outputs += tuple((option, path) for option, path in (("--db", view.database), ("--state", options.state))
                     if path is not None)
    reports.open(paths or ["-"], sys.stdout.fileno() if sys.stdout is not None else None,
                 outputs=list(outputs))
    if writer is None and view.database is not None:
        from . import SqliteWriter

        writer = SqliteWriter(view.database)
    elif writer is None:
        writer = (PrettyWriter(shared or make_console(highlight=False)) if view.fmt == "pretty"
                  else JsonLinesWriter(sys.stdout.buffer, raw_line=view.raw))
    run = ParseRun(options, writer, report, on_log, on_tick=bar.update if bar else None,
                   on_finding=reports.add if view.reports else None,
                   on_compile=None if view.quiet else functools.partial(compile_notice, err))

    reports_due = [bool(view.reports)]  # written once, by the run's end or a second Ctrl-C

    def write_reports(code: int, failure: str | None) -> int:
        """Every report, whole, however the run ended; the exit code (the largest wins)."""
        if not reports_due[0]:
            return code
        reports_due[0] = False
        try:
            reports.write(RunOutcome(
                code, partial_reason(run.stopped_code, failure), paths, run.stats.lines,
                dict(run.stats.events_by_type), dict(run.stats.errors_by_kind)))
        except OutputError as exc:
            code = max(code, print_error(err, exc))
        return code

    first_stop: list[float] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        code: int = SIGNAL_EXIT.get(signum, ExitCode.INTERRUPTED)
        if first_stop:
            if time.monotonic() - first_stop[0] < SAME_STOP_S:
                return  # the same Ctrl-C: `timeout -s INT` signals the process and its group
            # A second Ctrl-C: leave at once, with what was already decided written.
            with contextlib.suppress(OSError):
                writer.flush()
            code = write_reports(code, None)
            print_run_end(err, run, code)
            os._exit(code)
        first_stop.append(time.monotonic())
        run.interrupt(code)

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNAL_EXIT}
    for signum in take_early_stops(restore=False):  # Ctrl-C while vrclog started: a stop as any
        on_signal(signum, None)
    forward_console_close()  # Windows: a closed console window stops the run as Ctrl-Break does
    code: int = ExitCode.INTERNAL
    failure: str | None = "internal error"  # until the run ends as it should
    try:
        if not run.interrupted:
            run.load()
        if bar:
            bar.start()
        code = run.run()
        failure = None
    except VrclogError as exc:
        code, failure = exc.exit_code, str(exc)
        raise
    finally:
        if bar:
            bar.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        code = write_reports(code, failure)
    if run.output_closed:
        silence_stdout()
    else:
        print_run_end(err, run, code)
    if view.stats:
        print_stats(err, run.stats, code)
    return code


#: parse's options that sessions takes as they are (the same objects, as tail's).
FOR_SESSIONS = ("jobs", "workers", "include_types", "exclude_types", "log_dir", "progress", "quiet", "debug",
                "stats")


@cli.command(short_help="Visits: where you were in VRChat, how long, with whom.")
@click.argument("files", nargs=-1, type=path_type(dir_okay=True, allow_dash=True, readable=False))
@click.option("--format", "fmt", type=click.Choice(["pretty", "jsonl", "html"]), default=None,
              show_default="pretty on a terminal, else jsonl",
              help="pretty: a table; jsonl: one visit per line; html: one page (with -o FILE).")
@click.option("--output", "-o", metavar="FILE", default="-", type=path_type(dir_okay=False, allow_dash=True),
              help="Write the visits to FILE (whole, once the run is done) instead of stdout.")
@click.option("--db", metavar="PATH", type=path_type(dir_okay=False),
              help="Visits from the SQLite database of `parse --db PATH`; with FILEs or --log-dir, "
                   "their new lines go into it first.")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="People listed under 'Most time with' (pretty).")
@click.option("--title", default="VRChat visits", show_default=True, help="The HTML page's title.")
@click.option("--since", metavar="TIME", help="Only visits that end at or after this RFC 3339 time.")
@click.option("--until", metavar="TIME", help="Only visits that start at or before this RFC 3339 time.")
# Not parse's --state (nor its VRCLOG_STATE): given here, it is refused with the way that works.
@click.option("--state", metavar="FILE", hidden=True)
def sessions(files: tuple[str, ...], fmt: str | None, output: str, db: str | None, top: int, title: str,
             **opts: Any) -> None:
    """Fold VRChat logs (FILEs, --log-dir, piped stdin, or the VRChat log folder)
    into visits: each stay in one instance, with its world, start, end and
    duration, the people there and how long you overlapped, videos, screenshots
    and notable events.  --since/--until keep the visits that overlap that time.

    \b
    Exit codes as for parse: 0 ok, 2 usage or input error, 130 interrupted...
    """
    from . import EventFilter, ParseOptions, Reports, VisitWriter, database_events, people_met, save_visits

    to_stdout = output in ("-", "")
    terminal = to_stdout and sys.stdout is not None and sys.stdout.isatty()
    fmt = fmt or ("pretty" if terminal else "jsonl")
    if opts["state"] is not None:
        raise UsageError("--state: sessions folds a whole history, and a visit can span two runs; "
                         "keep the events in a database instead: --db PATH reads each line once")
    if fmt == "html" and terminal:
        raise UsageError("--format html writes a page: give -o FILE (or redirect stdout)")
    if fmt == "pretty" and not to_stdout:
        raise UsageError("--format pretty is for the terminal: -o FILE takes jsonl or html")
    if to_stdout and sys.stdout is None:
        raise OutputError("cannot write output: standard output is closed")
    chosen = EventFilter.from_text(opts["include_types"], opts["exclude_types"], opts["since"], opts["until"])
    by_type = replace(chosen, since=None, until=None)  # a visit is folded whole, then kept or not
    # JSON Lines to stdout go out as each visit ends; anything else is written once all are folded.
    stream = sys.stdout.buffer if fmt == "jsonl" and to_stdout and sys.stdout is not None else None
    writer = VisitWriter(stream, since=chosen.since, until=chosen.until)
    view = View(progress=opts["progress"], quiet=opts["quiet"], stats=opts["stats"])
    extra = () if to_stdout else (("--output", output),)
    code = 0
    if db is None or files or opts["log_dir"]:
        options = ParseOptions(
            paths=resolve_inputs(list(files), opts["log_dir"], follow=False), builtin=True,
            jobs=opts["jobs"], default_jobs=_is_default("jobs"), workers=opts["workers"],
            event_filter=by_type, measure_cpu=opts["stats"], provenance=db is not None)
        if db is not None:  # the new lines into the database (its own cursor), then all from it
            code = run_parse(options, replace(view, database=db), outputs=extra)
        else:
            code = run_parse(options, view, writer=writer, outputs=extra)
    if db is not None:
        Reports(()).open([db], sys.stdout.fileno() if to_stdout and sys.stdout is not None else None,
                         outputs=list(extra))
        with _reader_gone():
            for event in database_events(db):
                if by_type.keep(event) and event.source is not None:
                    writer.write(event.source.file, event.source.line, "", [event])
    with _reader_gone():
        visits = writer.finish()
    if not to_stdout:
        save_visits(output, visits, fmt, title=title)
    elif fmt == "html":
        from . import visits_bytes

        sys.stdout.buffer.write(visits_bytes(visits, "html", title=title))
        sys.stdout.flush()
    elif fmt == "pretty":
        print_visits(make_console(highlight=False), visits, people_met(visits), top=top)
    raise SystemExit(code)


sessions.params += [p for p in parse.params if isinstance(p, click.Option) and p.name in FOR_SESSIONS]


@cli.command(short_help="The built-in parser's event types, their fields and example lines.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def types(as_json: bool) -> None:
    """List the event types the built-in parser gives (without --plugin): what each
    means, its fields, and a log line that gives it.  The names are those that
    --include-types, --exclude-types and --fail-on take."""
    from . import BUILTIN_TYPES

    if as_json:
        from . import BuiltinParser

        parser = BuiltinParser()
        click.echo(json.dumps([{"type": t.name, "summary": t.summary, "fields": list(t.fields),
                                "example": t.example,
                                "gives": [e.to_dict() for e in parser.call(t.example)]}
                               for t in BUILTIN_TYPES], indent=2, ensure_ascii=False))
    elif sys.stdout.isatty():
        print_types(make_console(highlight=False), BUILTIN_TYPES)
    else:
        click.echo(types_text(BUILTIN_TYPES), nl=False)


@cli.command(short_help="Print the shell completion script.")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(vrclog completion bash)"."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "vrclog", "_VRCLOG_COMPLETE").source())


@cli.group(short_help="Tools for plugin authors: info, check, prefilter.")
def plugin() -> None:
    """Tools for plugin authors: inspect a plugin, or check it against the contract."""


@plugin.command(short_help="A plugin's ABI, prefilter, exports, imports and validity.")
@click.argument("path", type=path_type(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(path: str, as_json: bool) -> None:
    """Show a plugin's size, hash, exports, imports, memory and validity.

    Exits 0 if vrclog can load the plugin, 3 if not.
    """
    from . import plugin_info

    details = plugin_info(Path(path))
    if as_json:
        click.echo(json.dumps(details.to_json(), indent=2))
    else:
        print_info(make_console(highlight=False, soft_wrap=True), details)
    raise SystemExit(ExitCode.OK if details.valid else ExitCode.PLUGIN_LOAD)


@plugin.command(short_help="Check a plugin against the contract with edge cases and samples.")
@click.argument("path", type=path_type(dir_okay=True))
@click.option("--sample", "samples", multiple=True, type=path_type(dir_okay=False, allow_dash=True),
              help="Also run every line of this log file (repeatable).")
@click.option("--timeout", type=Duration(), default="50ms", show_default=True,
              help="CPU time per line, as parse's --timeout.")
@click.option("--timeout-per-mib", type=Duration(), default="250ms", show_default=True,
              help="More CPU time per MiB of a line, as parse's --timeout-per-mib.")
def check(path: str, samples: tuple[str, ...], timeout: float, timeout_per_mib: float) -> None:
    """Drive a plugin with edge-case lines and report every contract violation.

    Exits 0 if nothing was violated, 1 if something was, 3 if it cannot load.
    """
    from . import Cancelled, cancel_all_calls, check_plugin

    stopped: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # No exception from here: one raised while the main thread is inside a plugin's
        # deadline callback is swallowed by ctypes, and the call would go on.
        stopped.append(signum)
        cancel_all_calls()

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNAL_EXIT}
    try:
        report = check_plugin(path, replace(DEFAULTS, timeout_s=timeout, timeout_per_mib_s=timeout_per_mib),
                              sample_files=samples)
    except Cancelled:
        if not stopped:
            raise
        raise SystemExit(SIGNAL_EXIT[stopped[0]]) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped:  # (between two calls)
        raise SystemExit(SIGNAL_EXIT[stopped[0]])
    print_report(make_console(highlight=False, soft_wrap=True), report)
    if any(f.where == "load" for f in report.violations):
        raise SystemExit(ExitCode.PLUGIN_LOAD)
    raise SystemExit(ExitCode.OK if report.ok else ExitCode.FAIL_ON)


@plugin.command(name="prefilter", short_help="Write a plugin's prefilter section.")
@click.argument("source", type=path_type(dir_okay=True))
@click.option("--substring", "substrings", multiple=True, metavar="TEXT",
              help="A line containing TEXT goes to the plugin (repeatable, case-sensitive).")
@click.option("--regex", metavar="RE2", help="A line matching this RE2 pattern goes to the plugin.")
@click.option("--remove", is_flag=True, help="Remove the prefilter section instead.")
@click.option("-o", "--output", required=True, type=path_type(dir_okay=False, allow_dash=False),
              help="Where to write the plugin (may be SOURCE itself).")
def prefilter_command(source: str, substrings: tuple[str, ...], regex: str | None, remove: bool,
                      output: str) -> None:
    """Write (or replace) the vrclog.prefilter section of a plugin built by any toolchain.

    \b
    vrclog plugin prefilter parser.wasm --substring '[MyWorld]' -o parser.wasm
    Lines that contain none of the substrings and do not match the regex never
    reach the plugin (no instance is made for them).  Check the result with
    `vrclog plugin check parser.wasm --sample my.log`.
    """
    from . import PrefilterError, embed_prefilter, make_prefilter

    if remove == bool(substrings or regex is not None):
        raise UsageError("give --substring and/or --regex, or --remove")
    try:
        chosen = None if remove else make_prefilter(list(substrings) or None, regex)
    except PrefilterError as exc:
        raise UsageError(f"prefilter: {exc}") from None
    embed_prefilter(Path(source), Path(output), chosen)
    what = "removed the prefilter" if chosen is None else \
        "prefilter " + json.dumps(chosen.to_json(), ensure_ascii=False)
    click.echo(f"{output}: {what}")


@plugin.command(name="types", short_help="Declare the event types a plugin can emit.")
@click.argument("source", type=path_type(dir_okay=True))
@click.option("--type", "types", multiple=True, metavar="NAME",
              help="An event type the plugin can emit (repeatable, or comma-separated).")
@click.option("--remove", is_flag=True, help="Remove the declaration instead.")
@click.option("-o", "--output", required=True, type=path_type(dir_okay=False, allow_dash=False),
              help="Where to write the plugin (may be SOURCE itself).")
def types_command(source: str, types: tuple[str, ...], remove: bool, output: str) -> None:
    """Write (or replace) the vrclog.types section: the event types the plugin can emit.

    \b
    vrclog plugin types parser.wasm --type myworld_score,myworld_round -o parser.wasm
    `plugin info` shows them, `plugin check` fails a plugin that emits another type, and
    where every parser of a run declares its types, a misspelt type in --fail-on,
    --include-types or --exclude-types is a usage error.
    """
    from . import embed_event_types

    names = [name.strip() for given in types for name in given.split(",") if name.strip()]
    if remove == bool(names):
        raise UsageError("give --type NAME (one or more), or --remove")
    embed_event_types(Path(source), Path(output), None if remove else names)
    click.echo(f"{output}: " + ("removed the event types" if remove else "event types " + ", ".join(
        dict.fromkeys(names))))


def silence_stdout() -> None:
    """Points stdout at /dev/null so the interpreter's final flush cannot fail."""
    if sys.stdout is None:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def usage_message(exc: click.ClickException) -> str:
    """click's error on one line, led by the option it is about (``--timeout: ...``)."""
    if isinstance(exc, click.BadParameter) and exc.param is not None and exc.message:
        names = [*exc.param.opts] or [exc.param.human_readable_name]
        name = max(names, key=len) if exc.param.param_type_name == "option" else names[0].upper()
        envvar = getattr(exc.param, "envvar", None)
        if (exc.ctx is not None and exc.param.name and isinstance(envvar, str)
                and exc.ctx.get_parameter_source(exc.param.name) == click.core.ParameterSource.ENVIRONMENT):
            name += f" (from {envvar})"
        return f"{name}: {exc.message}"
    text = " ".join(exc.format_message().split())  # MissingParameter builds its message here
    return text[:1].lower() + text[1:] if not text[:2].isupper() else text


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: maps every outcome to an exit code in one place."""
    if sys.stderr is None:  # started with descriptor 2 closed (`2>&-`): messages go nowhere,
        sys.stderr = open(os.devnull, "w")  # the run goes on (kept open for the process)
    sturdy_stderr()  # a message that cannot be written is dropped: the run goes on
    debug = "--debug" in (argv if argv is not None else sys.argv) or \
        os.environ.get("VRCLOG_DEBUG", "").lower() in ("1", "true", "yes", "on")
    err = LazyStderr()
    try:
        cli.main(args=argv, prog_name="vrclog", standalone_mode=False)
        return ExitCode.OK
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitCode.OK
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # `vrclog`, `vrclog plugin`: the help as is
        exc.show()
        return ExitCode.USAGE
    except click.ClickException as exc:
        return print_error(err, usage_message(exc))
    except click.exceptions.Abort:
        return ExitCode.INTERRUPTED
    except VrclogError as exc:
        return print_error(err, exc)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except (BrokenPipeError, ReaderGone):
        silence_stdout()
        return ExitCode.OK
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS:
            return internal_error(exc, debug, err)
        # What `vrclog types`, `plugin info`, --help... print could not be written (a
        # parse run reports it itself): the user's disk, not a bug of vrclog's.
        code = print_error(err, OutputError.writing(exc))
        silence_stdout()  # what is still buffered goes nowhere, instead of failing again at exit
        return code
    except Exception as exc:  # noqa: BLE001 - last resort: one line, never a traceback
        return internal_error(exc, debug, err)


#: Errors of a write that no longer has room or a device behind it.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def print_error(err: LazyStderr, problem: VrclogError | str) -> int:
    """``vrclog: error: ...`` on stderr, one line; the exit code of an error (2 for a text)."""
    err.print(f"vrclog: error: {problem}", markup=False)
    return problem.exit_code if isinstance(problem, VrclogError) else ExitCode.USAGE


def internal_error(exc: Exception, debug: bool, err: LazyStderr) -> int:
    """A bug of vrclog's: one line (the traceback with --debug), exit 70."""
    if debug:
        import traceback

        traceback.print_exc()
    else:
        err.print(f"vrclog: internal error: {type(exc).__name__}: {exc} "
                  "(run with --debug for a traceback)", markup=False)
    return ExitCode.INTERNAL


def entry() -> NoReturn:
    """The ``vrclog`` command: main(), then an exit without the interpreter's teardown.

    That teardown frees every module and object one by one: ~10 ms of a run
    without plugins and 20-30 ms with one (wasmtime's thousands of ctypes
    bindings), a tenth of a prefiltered run over the 200 000-line bench log,
    spent after the last byte is out.  Nothing left needs it once the output is
    flushed, except multiprocessing's clean-up of worker processes: runs that
    used those, and a flush that fails, exit the usual way.
    """
    code = main()
    if "multiprocessing" not in sys.modules:
        try:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:  # None: started with the descriptor closed
                    stream.flush()
        except (OSError, ValueError):
            pass  # the usual exit reports it as it always has
        else:
            os._exit(code)
    # The run is over: a stop signal now (the second of `timeout -s INT`'s two) has nothing
    # to stop, and would kill the process mid-teardown (Python restores the default handler).
    for stop in SIGNAL_EXIT:
        signal.signal(stop, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    entry()
