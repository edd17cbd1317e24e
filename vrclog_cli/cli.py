"""The ``vrclog`` command line: options in, a ParseRun wired up, an exit code out.

Every error a user can cause is a VrclogError or a click usage error and is
shown as one line on stderr; a traceback appears only with --debug.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from . import __version__
from .capi import wasmtime_version
from .conformance import CheckReport, check_plugin
from .durations import parse_duration, parse_size
from .errors import EXIT_OK, Cancelled, PluginLoadError, Terminated, UsageError, VrclogError
from .limits import Limits
from .plugin import PluginLog
from .plugin_info import PluginInfo, plugin_info
from .runner import Diagnostic, ParseOptions, ParseRun
from .sources import read_items
from .writer import EventWriter, JsonLinesWriter, PrettyWriter

EXIT_INTERNAL = 70  # a bug in vrclog itself (sysexits EX_SOFTWARE)
SIGNAL_EXIT = {signal.SIGINT: Cancelled.exit_code, signal.SIGTERM: Terminated.exit_code}


def version_text() -> str:
    return (f"vrclog {__version__} (wasmtime {wasmtime_version()}, "
            f"Python {sys.version.split()[0]})")


class Duration(click.ParamType):  # type: ignore[type-arg]
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Size(click.ParamType):  # type: ignore[type-arg]
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message=version_text())
def cli() -> None:
    """Parse logs with WebAssembly plugins; events come out as JSON Lines."""


DEFAULTS = Limits()


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=True, allow_dash=True))
@click.option("--plugin", "plugins", multiple=True, metavar="PATH",
              help="A .wasm (or .wat) plugin; repeat for several (events in plugin order).")
@click.option("--builtin", is_flag=True,
              help="Run the built-in VRChat parser ahead of the plugins (it runs alone without --plugin).")
@click.option("--timeout", type=Duration(), default="50ms", show_default=True,
              help="Budget for one line in one plugin (50ms, 2s, 250us).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default="number of CPUs", help="Worker threads.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "pretty"]), default="jsonl",
              show_default=True, help="jsonl for machines, pretty for people.")
@click.option("--raw", is_flag=True, help="Add each event's source line as raw_line.")
@click.option("--fail-on", multiple=True, metavar="TYPE",
              help="Exit 1 if an event of this type is written; repeatable; 'any' for every type.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first per-line error.")
@click.option("--memory-limit", type=Size(), default=DEFAULTS.max_memory_bytes, show_default="64MiB",
              help="Linear memory per plugin instance.")
@click.option("--plugin-size-limit", type=Size(), default=DEFAULTS.max_plugin_bytes,
              show_default="10MiB", help="Largest plugin file accepted.")
@click.option("--output-limit", type=Size(), default=DEFAULTS.max_output_bytes, show_default="1MiB",
              help="Largest plugin output per line.")
@click.option("--verbose", "-v", is_flag=True, help="Also show plugins' debug/info logs and stderr.")
@click.option("--quiet", "-q", is_flag=True, help="Hide per-line diagnostics (the exit code stays).")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
def parse(files: tuple[str, ...], plugins: tuple[str, ...], builtin: bool, timeout: float, jobs: int,
          fmt: str, raw: bool, fail_on: tuple[str, ...], fail_fast: bool, memory_limit: int,
          plugin_size_limit: int, output_limit: int, verbose: bool, quiet: bool, debug: bool) -> None:
    """Parse FILEs (or standard input; '-' is stdin) and write events to stdout.

    \b
    Exit codes: 0 ok, 1 --fail-on matched, 2 usage or input error,
    3 plugin load error, 4 plugin runtime error, 5 plugin timeout,
    130 interrupted (SIGINT), 143 terminated (SIGTERM); the largest wins.
    """
    if verbose and quiet:
        raise UsageError("--verbose and --quiet cannot be used together")
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    limits = replace(DEFAULTS, timeout_s=timeout, max_memory_bytes=memory_limit,
                     max_plugin_bytes=plugin_size_limit, max_output_bytes=output_limit)
    options = ParseOptions(
        paths=list(files), plugins=list(plugins), builtin=builtin, limits=limits, jobs=jobs,
        fail_on=frozenset(t.strip() for t in fail_on), fail_fast=fail_fast,
        capture_plugin_stderr=verbose)

    def report(diag: Diagnostic) -> None:
        if not (quiet and diag.per_line):
            err.print(diag.text, markup=False, style="red" if err.is_terminal else None)

    def on_log(log: PluginLog) -> None:
        if verbose or log.level >= 2:
            err.print(f"{log.plugin.name}: {log.level_name}: {log.message}", markup=False)

    writer: EventWriter = (PrettyWriter(Console(highlight=False)) if fmt == "pretty"
                           else JsonLinesWriter(sys.stdout.buffer, raw_line=raw))
    run = ParseRun(options, writer, report, on_log)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if run.interrupted:  # a second Ctrl-C: leave at once
            os._exit(SIGNAL_EXIT.get(signal.Signals(signum), 130))
        run.interrupt(SIGNAL_EXIT.get(signal.Signals(signum), 130))

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNAL_EXIT}
    try:
        run.load()
        code = run.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if run.output_closed:
        silence_stdout()
    elif code in (Cancelled.exit_code, Terminated.exit_code):
        err.print(f"vrclog: {'interrupted' if code == 130 else 'terminated'} after {run.lines} lines "
                  f"({run.events} events written)", markup=False)
    raise SystemExit(code)


@cli.group()
def plugin() -> None:
    """Tools for plugin authors: inspect a plugin, or check it against the contract."""


@plugin.command()
@click.argument("path", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(path: str, as_json: bool) -> None:
    """Show a plugin's size, hash, exports, imports, memory and validity.

    Exits 0 if vrclog can load the plugin, 3 if not.
    """
    details = plugin_info(Path(path))
    if as_json:
        click.echo(json.dumps(details.to_json(), indent=2))
    else:
        print_info(Console(highlight=False, soft_wrap=True), details)
    raise SystemExit(0 if details.valid else PluginLoadError.exit_code)


def print_info(console: Console, details: PluginInfo) -> None:
    console.print(f"[bold]{details.path}[/]  {details.size_bytes} bytes  sha256 {details.sha256}")
    memory = (f"{details.memory_min_pages}..{details.memory_max_pages or 'unbounded'} pages"
              if details.memory_min_pages is not None else "none exported")
    console.print(f"ABI version: {details.abi_version or '-'}   WASI model: {details.wasi_model}   "
                  f"memory: {memory}")
    for title, items in (("exports", details.exports), ("imports", details.imports)):
        table = Table(title=title, title_justify="left")
        for column in ("name", "kind", "type"):
            table.add_column(column)
        for item in items:
            name = f"{item.module}.{item.name}" if item.module else item.name
            table.add_row(name, item.kind, item.type)
        console.print(table)
    if details.valid:
        console.print("[green]valid[/]: vrclog can load this plugin")
    else:
        console.print(f"[red]invalid[/]: {details.problem}", markup=True)


@plugin.command()
@click.argument("path", type=click.Path(dir_okay=True))
@click.option("--sample", "samples", multiple=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Also run every line of this log file (repeatable).")
@click.option("--timeout", type=Duration(), default="50ms", show_default=True, help="Budget per line.")
def check(path: str, samples: tuple[str, ...], timeout: float) -> None:
    """Drive a plugin with edge-case lines and report every contract violation.

    Exits 0 if nothing was violated, 1 if something was, 3 if it cannot load.
    """
    sample_lines = [(f"{line.source}:{line.number}", line.text)
                    for item in read_items(list(samples), DEFAULTS.max_input_bytes * 2)
                    if isinstance(item, list) for line in item] if samples else []
    report = check_plugin(path, replace(DEFAULTS, timeout_s=timeout), sample_lines)
    print_report(Console(highlight=False, soft_wrap=True), report)
    if any(f.where == "load" for f in report.violations):
        raise SystemExit(PluginLoadError.exit_code)
    raise SystemExit(0 if report.ok else 1)


def print_report(console: Console, report: CheckReport) -> None:
    for finding in report.findings:
        style = "red" if finding.severity == "violation" else "yellow"
        console.print(f"[{style}]{finding.severity}[/] {finding.where}: ", end="")
        console.print(finding.message, markup=False, end="")
        console.print(f"  [dim]hint: {finding.hint}[/]")
    stats = report.percentiles()
    if stats:
        console.print("per-line time: " + ", ".join(f"{k} {v * 1e6:.0f} µs" for k, v in stats.items()))
        console.print("slowest: " + ", ".join(f"{where} ({t * 1e6:.0f} µs)"
                                               for where, t in report.slowest(3)))
    violations = len(report.violations)
    warnings = len(report.findings) - violations
    verdict = "[green]PASS[/]" if report.ok else "[red]FAIL[/]"
    console.print(f"{verdict} {report.plugin}: {violations} violation(s), {warnings} warning(s), "
                  f"{len(report.timings)} line(s) timed")


def silence_stdout() -> None:
    """Points stdout at /dev/null so the interpreter's final flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: maps every outcome to an exit code in one place."""
    debug = "--debug" in (argv if argv is not None else sys.argv)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        cli.main(args=argv, prog_name="vrclog", standalone_mode=False)
        return EXIT_OK
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        return Cancelled.exit_code
    except VrclogError as exc:
        err.print(f"vrclog: error: {exc}", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        return Cancelled.exit_code
    except BrokenPipeError:
        silence_stdout()
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - last resort: one line, never a traceback
        if debug:
            traceback.print_exc()
        else:
            err.print(f"vrclog: internal error: {type(exc).__name__}: {exc} "
                      "(run with --debug for a traceback)", markup=False)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
