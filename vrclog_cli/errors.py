"""The error hierarchy, and the one place that maps each error to an exit code."""

from __future__ import annotations


class VrclogError(Exception):
    """Base of every error vrclog reports to a user (never with a traceback)."""

    exit_code = 1


class UsageError(VrclogError):
    """A bad option value or command line."""

    exit_code = 2


class InputError(VrclogError):
    """An input file that could not be read."""

    exit_code = 2


class PluginLoadError(VrclogError):
    """A plugin file that cannot be used at all: refused before any line runs."""

    exit_code = 3


class LineError(VrclogError):
    """A failure confined to one line; the run goes on with the next line."""

    exit_code = 4
    kind = "runtime_error"


class PluginRuntimeError(LineError):
    """The plugin trapped, broke the output contract, or answered "ok": false.

    An "ok": false answer is the plugin's own verdict on the line, so it is
    reported as kind ``plugin_error`` with the plugin's message and code; every
    other fault is a ``runtime_error``.  Both exit with code 4.
    """

    def __init__(self, message: str, *, code: str | None = None, from_plugin: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.kind = "plugin_error" if from_plugin else "runtime_error"


class InputTooLarge(LineError):
    """The line's input JSON exceeds the input region; it is never sent."""

    kind = "input_too_large"


class PluginTimeout(LineError):
    """The plugin used up its time budget on one line."""

    exit_code = 5
    kind = "timeout"


class Cancelled(VrclogError):
    """The run was cancelled (Ctrl-C); calls in flight were interrupted."""

    exit_code = 130


class Terminated(Cancelled):
    """The run was ended by SIGTERM."""

    exit_code = 143


EXIT_OK = 0
EXIT_FAIL_ON = 1
