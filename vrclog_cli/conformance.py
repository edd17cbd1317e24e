"""``vrclog plugin check``: drive a plugin with edge cases and report every contract violation.

Each finding carries a one-line hint on how to fix it.  Violations fail the
check; warnings (a line using most of its time budget, "ok": false answers)
are reported but do not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import capi
from .errors import InputTooLarge, PluginLoadError, PluginRuntimeError, PluginTimeout
from .limits import INPUT_OFFSET, INPUT_REGION, Limits
from .plugin import Plugin, Runtime, encode_input

_HINTS = (
    ("not valid UTF-8", "encode every output string as UTF-8"),
    ("not valid JSON", "return one JSON object; escape quotes, backslashes and control characters"),
    ('"ok" must be', 'answer {"ok": true, "events": [...]} or {"ok": false, "error": "..."}'),
    ("expected a JSON object", 'answer {"ok": true, "events": [...]} (an object, not an array)'),
    ('"events" must be', '"events" must be a JSON array of event objects'),
    ('has no "type"', 'give every event a non-empty string "type"'),
    ("data value", 'quote it: every value in "data" must be a string'),
    ("must be a string", "event fields other than data are strings"),
    ('"data" must be an object', '"data" is an object of string to string'),
    ("not RFC 3339", "write timestamps as RFC 3339, e.g. 2024-01-15T23:59:59+09:00"),
    ("not a valid date", "write a real date and time, e.g. 2024-01-15T23:59:59+09:00"),
    ("outside memory", "return (out_len << 32) | out_ptr of a buffer inside linear memory"),
    ("MiB limit", "keep the output of one line under the output limit"),
    ("unreachable", "the plugin trapped (an explicit trap, abort or panic): check that path"),
    ("stack", "call stack exhausted: avoid deep or unbounded recursion"),
    ("out of bounds", "a memory access was out of bounds: check pointers and lengths"),
    ("exited with code", "do not call proc_exit from parse_line"),
)


def hint_for(message: str) -> str:
    for needle, hint in _HINTS:
        if needle in message:
            return hint
    return "see docs/plugin-abi.md"


def edge_cases(limits: Limits) -> list[tuple[str, str]]:
    """(label, line) pairs every plugin must survive."""
    room = limits.max_input_bytes - len(encode_input(""))
    return [
        ("empty line", ""),
        ("whitespace only", " \t  "),
        ("quotes and backslashes", 'say "hi" \\ and \\" and \\\\ done'),
        ("control characters", "a\x00b\x01c\x1fd\x7fe\tf"),
        ("non-ASCII", "日本語 \uff23\uff48\uff45\uff52\uff52\uff59 🍒 émile"),  # full-width "Cherry"
        ("JSON-looking line", '{"line": "x", "ok": false}'),
        ("VRChat line", "2024.01.15 23:59:59 Log        -  [Behaviour] OnPlayerJoined Alice (usr_1)"),
        ("input of exactly the limit", "a" * room),
        ("input one byte over the limit", "a" * (room + 1)),
    ]


@dataclass
class Finding:
    severity: str  # "violation" or "warning"
    where: str
    message: str
    hint: str


@dataclass
class CheckReport:
    plugin: str
    findings: list[Finding] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "violation"]

    @property
    def ok(self) -> bool:
        return not self.violations

    def percentiles(self) -> dict[str, float]:
        times = sorted(t for _, t in self.timings)
        if not times:
            return {}
        cut = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times * 99
        return {"p50": cut[49], "p90": cut[89], "p99": cut[98], "max": times[-1]}

    def slowest(self, count: int = 5) -> list[tuple[str, float]]:
        return sorted(self.timings, key=lambda item: -item[1])[:count]


def _check_layout(plugin: Plugin, report: CheckReport) -> None:
    """The input region must be free of the plugin's data, and alloc must not hand it out."""
    inst = plugin._new_instance()
    try:
        region = inst.read(INPUT_OFFSET, INPUT_REGION)
        if any(region):
            report.findings.append(Finding(
                "violation", "memory layout",
                f"memory at {INPUT_OFFSET:#x}-{INPUT_OFFSET + INPUT_REGION:#x} is not empty after "
                "instantiation: data or stack lies in the input region the host overwrites",
                "link with --global-base=0x12000 (data, stack and heap above the input region)"))
        pointer = inst.call(inst.func(b"alloc"), 64) & 0xFFFFFFFF
        _, size = inst.memory()
        if pointer + 64 > size or (pointer < INPUT_OFFSET + INPUT_REGION and pointer + 64 > INPUT_OFFSET):
            report.findings.append(Finding(
                "violation", "alloc(64)",
                f"returned {pointer:#x}, which is outside memory or inside the input region",
                "start the heap at __heap_base, above 0x12000"))
    except capi.CallFailed as exc:
        report.findings.append(Finding("violation", "alloc(64)", f"failed: {exc}", hint_for(str(exc))))
    finally:
        inst.close()


def check_plugin(path: str, limits: Limits | None = None,
                 sample: Iterable[tuple[str, str]] = ()) -> CheckReport:
    limits = limits or Limits()
    report = CheckReport(plugin=path)
    runtime = Runtime(limits)
    try:
        plugin = runtime.load(path)
    except PluginLoadError as exc:
        report.findings.append(Finding("violation", "load", str(exc), hint_for(str(exc))))
        runtime.close()
        return report
    _check_layout(plugin, report)
    budget = limits.timeout_s
    for where, line in [*edge_cases(limits), *sample]:
        started = time.perf_counter()
        try:
            first = plugin.call(line)
            if plugin.call(line) != first:
                report.findings.append(Finding(
                    "violation", where, "the same line gave different events on a second run",
                    "keep parse_line deterministic: no state between calls"))
        except InputTooLarge:
            if "over the limit" not in where:
                report.findings.append(Finding("violation", where, "input unexpectedly too large",
                                               "see docs/plugin-abi.md"))
            continue
        except PluginTimeout:
            report.findings.append(Finding(
                "violation", where, f"parse_line did not finish within the {budget * 1000:g} ms budget",
                "avoid unbounded loops; keep per-line work small"))
            continue
        except PluginRuntimeError as exc:
            if exc.kind == "plugin_error":
                report.findings.append(Finding(
                    "warning", where, f'answered "ok": false: {exc}',
                    "fine for lines the plugin rejects; an unmatched line should give no events"))
            else:
                report.findings.append(Finding("violation", where, str(exc), hint_for(str(exc))))
            continue
        elapsed = (time.perf_counter() - started) / 2
        report.timings.append((where, elapsed))
        if elapsed > budget / 2:
            report.findings.append(Finding(
                "warning", where, f"parse_line took {elapsed * 1000:.0f} ms of the "
                f"{budget * 1000:g} ms budget", "a slower machine may time out on such lines"))
    runtime.close()
    return report
