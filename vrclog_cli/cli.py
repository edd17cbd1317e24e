"""The ``vrclog`` command line: options in, a ParseRun wired up, an exit code out.

Every error a user can cause is a VrclogError or a click usage error and is
shown as one line on stderr; a traceback appears only with --debug.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from dataclasses import replace
from types import FrameType
from typing import Any

import click
from rich.console import Console

from . import __version__
from .capi import wasmtime_version
from .durations import parse_duration, parse_size
from .errors import EXIT_OK, Cancelled, Terminated, UsageError, VrclogError
from .limits import Limits
from .plugin import PluginLog
from .runner import Diagnostic, ParseOptions, ParseRun
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
