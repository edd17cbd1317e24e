"""vrclog: a log parser whose parsing logic lives in WebAssembly plugins.

The library API (docs/library.md): load plugins into a ``Runtime`` and call
them line by line, or let ``parse_lines`` / ``parse_files`` run the CLI's
pipeline and hand back events.  Names are imported on first use, so that
``import vrclog_cli`` loads neither wasmtime nor rich.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing costs ~11 ms before __main__ holds Ctrl-C

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    # loading and calling plugins
    "Runtime": "host.plugin", "Plugin": "host.plugin", "PluginLog": "host.plugin",
    "cancel_all_calls": "host.plugin",
    "BuiltinParser": "vrchat.builtin",
    "BUILTIN_TYPES": "vrchat.event_types", "EventType": "vrchat.event_types",
    "Event": "events", "EventSource": "events",
    "Limits": "limits",
    # events as an iterator
    "parse_lines": "run.api", "parse_files": "run.api",
    # a whole run, as `vrclog parse` makes it (the CLI is a client of these)
    "ParseOptions": "run.runner", "ParseRun": "run.runner", "Diagnostic": "run.runner",
    "EventFilter": "run.filters", "split_types": "run.filters",
    "EventWriter": "sinks.writer", "JsonLinesWriter": "sinks.writer", "PrettyWriter": "sinks.writer",
    "SqliteWriter": "sinks.sqlite", "State": "sinks.state", "StateError": "sinks.state",
    "database_events": "sinks.sqlite",
    # VRChat visits (`vrclog sessions`): events folded, written, drawn as a page
    "sessions": "vrchat.sessions", "Visit": "vrchat.sessions", "VisitFolder": "vrchat.sessions",
    "people_met": "vrchat.sessions", "VisitWriter": "sinks.visits",
    "save_visits": "sinks.visits", "visits_bytes": "sinks.visits", "visits_page": "vrchat.page",
    "RunStats": "run.stats",
    # CI reports of a run's findings
    "Finding": "sinks.reports", "ReportSpec": "sinks.reports", "Reports": "sinks.reports",
    "RunOutcome": "sinks.reports",
    "parse_report_spec": "sinks.reports", "partial_reason": "sinks.reports",
    # where VRChat keeps its logs
    "default_log_dirs": "run.discovery", "find_default_logs": "run.discovery", "log_files": "run.discovery",
    # option values as people type them
    "parse_duration": "durations", "parse_size": "durations",
    # plugin authors' tools
    "plugin_info": "authoring.inspection", "PluginInfo": "authoring.inspection",
    "check_plugin": "authoring.conformance", "CheckReport": "authoring.conformance",
    "Prefilter": "host.prefilter", "PrefilterError": "host.prefilter", "make_prefilter": "host.prefilter",
    "embed_prefilter": "host.embed", "embed_event_types": "host.embed",
    "wasmtime_version": "host.installed",
    # errors, and the exit code each maps to
    "ExitCode": "errors", "VrclogError": "errors", "UsageError": "errors", "InputError": "errors",
    "OutputError": "errors", "PluginLoadError": "errors", "stop_signals": "errors",
    "forward_console_close": "errors", "LineError": "errors", "take_early_stops": "stops",
    "PluginRuntimeError": "errors",
    "InputTooLarge": "errors", "PluginTimeout": "errors", "Cancelled": "errors", "Terminated": "errors",
    "LineProblem": "errors", "LineFailed": "errors",
    # a record (ParseOptions, Limits, Event, ...) copied with some fields changed
    "replace": "records",
}
__all__ = [
    "BUILTIN_TYPES",
    "BuiltinParser",
    "Cancelled",
    "CheckReport",
    "Diagnostic",
    "Event",
    "EventFilter",
    "EventSource",
    "EventType",
    "EventWriter",
    "ExitCode",
    "Finding",
    "InputError",
    "InputTooLarge",
    "JsonLinesWriter",
    "Limits",
    "LineError",
    "LineFailed",
    "LineProblem",
    "OutputError",
    "ParseOptions",
    "ParseRun",
    "Plugin",
    "PluginInfo",
    "PluginLoadError",
    "PluginLog",
    "PluginRuntimeError",
    "PluginTimeout",
    "Prefilter",
    "PrefilterError",
    "PrettyWriter",
    "ReportSpec",
    "Reports",
    "RunOutcome",
    "RunStats",
    "Runtime",
    "SqliteWriter",
    "State",
    "StateError",
    "Terminated",
    "UsageError",
    "Visit",
    "VisitFolder",
    "VisitWriter",
    "VrclogError",
    "__version__",
    "cancel_all_calls",
    "check_plugin",
    "database_events",
    "default_log_dirs",
    "embed_event_types",
    "embed_prefilter",
    "find_default_logs",
    "forward_console_close",
    "log_files",
    "make_prefilter",
    "parse_duration",
    "parse_files",
    "parse_lines",
    "parse_report_spec",
    "parse_size",
    "partial_reason",
    "people_met",
    "plugin_info",
    "replace",
    "save_visits",
    "sessions",
    "split_types",
    "stop_signals",
    "take_early_stops",
    "visits_bytes",
    "visits_page",
    "wasmtime_version",
]

if TYPE_CHECKING:
    from typing import Any

    from .authoring.conformance import CheckReport, check_plugin
    from .authoring.inspection import PluginInfo, plugin_info
    from .durations import parse_duration, parse_size
    from .errors import (
        Cancelled,
        ExitCode,
        InputError,
        InputTooLarge,
        LineError,
        LineFailed,
        LineProblem,
        OutputError,
        PluginLoadError,
        PluginRuntimeError,
        PluginTimeout,
        Terminated,
        UsageError,
        VrclogError,
        stop_signals,
    )
    from .events import Event, EventSource
    from .host.embed import embed_event_types, embed_prefilter
    from .host.installed import wasmtime_version
    from .host.plugin import Plugin, PluginLog, Runtime, cancel_all_calls
    from .host.prefilter import Prefilter, PrefilterError, make_prefilter
    from .limits import Limits
    from .records import replace
    from .run.api import parse_files, parse_lines
    from .run.discovery import default_log_dirs, find_default_logs, log_files
    from .run.filters import EventFilter, split_types
    from .run.runner import Diagnostic, ParseOptions, ParseRun
    from .run.stats import RunStats
    from .sinks.reports import Finding, Reports, ReportSpec, RunOutcome, parse_report_spec, partial_reason
    from .sinks.sqlite import SqliteWriter, database_events
    from .sinks.state import State, StateError
    from .sinks.visits import VisitWriter, save_visits, visits_bytes
    from .sinks.writer import EventWriter, JsonLinesWriter, PrettyWriter
    from .stops import take_early_stops
    from .vrchat.builtin import BuiltinParser
    from .vrchat.event_types import BUILTIN_TYPES, EventType
    from .vrchat.page import visits_page
    from .vrchat.sessions import Visit, VisitFolder, people_met, sessions


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vrclog_cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
