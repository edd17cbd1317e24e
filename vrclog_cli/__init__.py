"""vrclog: a log parser whose parsing logic lives in WebAssembly plugins.

The library API (docs/library.md): load plugins into a ``Runtime`` and call
them line by line, or let ``parse_lines`` / ``parse_files`` run the CLI's
pipeline and hand back events.  Names are imported on first use, so that
``import vrclog_cli`` loads neither wasmtime nor rich.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "Runtime": "plugin", "Plugin": "plugin", "PluginLog": "plugin",
    "BuiltinParser": "builtin", "Event": "events", "Limits": "limits",
    "parse_lines": "api", "parse_files": "api", "plugin_info": "plugin_info", "PluginInfo": "plugin_info",
    "ExitCode": "errors", "VrclogError": "errors", "UsageError": "errors", "InputError": "errors",
    "PluginLoadError": "errors", "LineError": "errors", "PluginRuntimeError": "errors",
    "InputTooLarge": "errors", "PluginTimeout": "errors", "Cancelled": "errors",
    "Terminated": "errors", "LineProblem": "errors", "LineFailed": "errors",
}
__all__ = [
    "BuiltinParser",
    "Cancelled",
    "Event",
    "ExitCode",
    "InputError",
    "InputTooLarge",
    "Limits",
    "LineError",
    "LineFailed",
    "LineProblem",
    "Plugin",
    "PluginInfo",
    "PluginLoadError",
    "PluginLog",
    "PluginRuntimeError",
    "PluginTimeout",
    "Runtime",
    "Terminated",
    "UsageError",
    "VrclogError",
    "__version__",
    "parse_files",
    "parse_lines",
    "plugin_info",
]

if TYPE_CHECKING:
    from .api import parse_files, parse_lines
    from .builtin import BuiltinParser
    from .errors import (
        Cancelled,
        ExitCode,
        InputError,
        InputTooLarge,
        LineError,
        LineFailed,
        LineProblem,
        PluginLoadError,
        PluginRuntimeError,
        PluginTimeout,
        Terminated,
        UsageError,
        VrclogError,
    )
    from .events import Event
    from .limits import Limits
    from .plugin import Plugin, PluginLog, Runtime
    from .plugin_info import PluginInfo, plugin_info


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vrclog_cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
