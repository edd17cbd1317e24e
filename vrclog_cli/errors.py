"""The exit codes (design.md section 5), and the error hierarchy that maps onto them."""

from __future__ import annotations

import sys
from enum import IntEnum

from .records import record


class ExitCode(IntEnum):
    """Every exit code vrclog gives; when several apply, the largest wins."""

    OK = 0
    FAIL_ON = 1  # an event matched --fail-on
    USAGE = 2  # a usage error, or an input that could not be read
    PLUGIN_LOAD = 3
    RUNTIME_ERROR = 4  # on at least one line (input_too_large counts here)
    TIMEOUT = 5  # on at least one line
    INTERNAL = 70  # a bug in vrclog itself (sysexits EX_SOFTWARE)
    HUNG_UP = 129  # SIGHUP: the terminal closed, the ssh session dropped
    INTERRUPTED = 130  # SIGINT, Ctrl-C
    TERMINATED = 143  # SIGTERM (Ctrl-Break or a closed console on Windows)


def stop_signals() -> dict[int, ExitCode]:
    """The signals that stop a run cleanly, and the exit code of each.  Windows has no
    SIGTERM to receive: Ctrl-Break (SIGBREAK) is its clean stop, with SIGTERM's code."""
    import signal

    from .stops import stop_signal_numbers

    codes = {int(signal.SIGINT): ExitCode.INTERRUPTED}
    if sys.platform != "win32":  # a closed terminal or a dropped ssh session: a clean stop too
        codes[int(signal.SIGHUP)] = ExitCode.HUNG_UP
    return {int(sig): codes.get(int(sig), ExitCode.TERMINATED) for sig in stop_signal_numbers()}


#: How long a closed console's stop may take: Windows ends the process 5 s after the
#: close event, or as soon as the handler returns.
CLOSE_GRACE_S = 4.5
_console_handler: object = None  # kept alive as long as Windows may call it


def forward_console_close() -> None:
    """Closing a console window (or logging off) sends CTRL_CLOSE_EVENT, which Python does
    not turn into a signal: the process would just be killed.  Forward it as SIGBREAK, so
    a closed console is Ctrl-Break's clean stop (exit 143) with every finished line written.
    Windows only; elsewhere nothing to do."""
    if sys.platform != "win32":
        return
    import ctypes
    import signal
    import time

    close_events = (2, 5, 6)  # CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT

    def on_console_event(event: int) -> int:
        if event not in close_events:
            return 0  # Ctrl-C and Ctrl-Break: Python's own handlers
        signal.raise_signal(signal.SIGBREAK)
        time.sleep(CLOSE_GRACE_S)  # the run stops and exits meanwhile; returning ends the process
        return 1

    global _console_handler
    _console_handler = ctypes.WINFUNCTYPE(ctypes.c_int, ctypes.c_uint)(on_console_event)
    ctypes.windll.kernel32.SetConsoleCtrlHandler(_console_handler, True)


class VrclogError(Exception):
    """Base of every error vrclog reports to a user (never with a traceback)."""

    exit_code: int = ExitCode.FAIL_ON


class UsageError(VrclogError):
    """A bad option value or command line."""

    exit_code = ExitCode.USAGE


class InputError(VrclogError):
    """An input file that could not be read."""

    exit_code = ExitCode.USAGE


class OutputError(VrclogError):
    """The events cannot be written (a full disk, a closed descriptor): the run stops.
    Not a bug of vrclog's (70), and not the quiet end of a reader gone (``| head``)."""

    exit_code = ExitCode.USAGE

    @classmethod
    def writing(cls, exc: OSError) -> OutputError:
        """A failed write to the output, in the user's words (``No space left on device``)."""
        return cls(f"cannot write output: {exc.strerror or exc}")


class PluginLoadError(VrclogError):
    """A plugin file that cannot be used at all: refused before any line runs."""

    exit_code = ExitCode.PLUGIN_LOAD

    @classmethod
    def invalid(cls, path: object, what: str, reason: object) -> PluginLoadError:
        """A binary wasmtime refused (``what``: module or component), its multi-line
        message on one line."""
        return cls(f"{path}: invalid WebAssembly {what}: {' '.join(str(reason).split())}")


class PluginFileError(PluginLoadError):
    """A plugin path that names no readable plugin file (missing, a folder, a pipe):
    no contract is in question, so `plugin check` reports it as `parse` does."""


class LineError(VrclogError):
    """A failure confined to one line; the run goes on with the next line."""

    exit_code = ExitCode.RUNTIME_ERROR
    kind = "runtime_error"


class PluginRuntimeError(LineError):
    """The plugin trapped, broke the output contract, or answered "ok": false.

    An "ok": false answer is the plugin's own verdict on the line, so it is
    reported as kind ``plugin_error`` with the plugin's message and code; every
    other fault is a ``runtime_error``.  Both exit with code 4.
    """

    def __init__(self, message: str, *, code: str | None = None, from_plugin: bool = False,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.kind = "plugin_error" if from_plugin else "runtime_error"
        #: More than the message's one line: an uncaught exception's whole traceback.
        self.detail = detail


class InputTooLarge(LineError):
    """The line's input JSON exceeds the input region; it is never sent."""

    kind = "input_too_large"


class PluginTimeout(LineError):
    """The plugin used up its time budget on one line."""

    exit_code = ExitCode.TIMEOUT
    kind = "timeout"


@record(frozen=True)
class LineProblem:
    """A per-line error as data: where, which parser, what kind and why.

    ``kind``: timeout, runtime_error, plugin_error or input_too_large (and, for a
    file that cannot be read, input_error at line 0, or at the first line a damaged
    one could not give whole); ``code`` is a plugin's own.
    """

    source: str
    line: int
    parser: str
    kind: str
    message: str
    code: str | None = None

    def __str__(self) -> str:
        kind = f"{self.kind} ({self.code})" if self.code else self.kind
        who = f"{self.parser}: " if self.parser else ""
        return f"{self.source}:{self.line}: {kind}: {who}{self.message}"


class LineFailed(LineError):
    """A per-line error raised where no ``on_error`` takes it (library API)."""

    def __init__(self, problem: LineProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem
        self.kind = problem.kind
        self.exit_code = ExitCode.TIMEOUT if problem.kind == "timeout" else ExitCode.RUNTIME_ERROR


class Cancelled(VrclogError):
    """The run was cancelled (Ctrl-C); calls in flight were interrupted."""

    exit_code = ExitCode.INTERRUPTED


class Terminated(Cancelled):
    """The run was ended by SIGTERM."""

    exit_code = ExitCode.TERMINATED

