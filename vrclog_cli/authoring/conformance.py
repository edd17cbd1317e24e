"""``vrclog plugin check``: drive a plugin with edge cases and report every contract violation.

Each finding carries a one-line hint on how to fix it.  Violations fail the
check; warnings (a line using most of its time budget, "ok": false answers)
are reported but do not.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import InputTooLarge, PluginFileError, PluginLoadError, PluginRuntimeError, PluginTimeout
from ..events import Event
from ..host import budget, capi
from ..host.abi import INPUT_OFFSET, INPUT_REGION, PREFILTER_SECTION, TYPES_SECTION
from ..host.component import WORLD
from ..host.plugin import Plugin, Runtime, encode_input
from ..limits import Limits, format_size
from ..records import field, record, replace
from ..run.sources import Lines, SourceFailed, read_items

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


def edge_cases(limits: Limits, abi_version: int = 1) -> list[tuple[str, str]]:
    """(label, line) pairs every plugin must survive."""
    cases = [
        ("empty line", ""),
        ("whitespace only", " \t  "),
        ("quotes and backslashes", 'say "hi" \\ and \\" and \\\\ done'),
        ("control characters", "a\x00b\x01c\x1fd\x7fe\tf"),
        ("non-ASCII", "日本語 \uff23\uff48\uff45\uff52\uff52\uff59 🍒 émile"),  # full-width "Cherry"
        ("JSON-looking line", '{"line": "x", "ok": false}'),
        ("VRChat line", "2024.01.15 23:59:59 Log        -  [Behaviour] OnPlayerJoined Alice (usr_1)"),
    ]
    if abi_version == 1:
        room = limits.max_input_bytes - len(encode_input(""))
        cases += [("input of exactly the limit", "a" * room),
                  ("input one byte over the limit", "a" * (room + 1))]
    else:
        cases += [("line of 8 KiB + 1 bytes (over ABI v1's input region)", "a" * (INPUT_REGION + 1)),
                  (f"line of exactly the line limit ({format_size(limits.max_line_bytes)})",
                   "a" * limits.max_line_bytes)]
    return cases


@record
class Finding:
    severity: str  # "violation" or "warning"
    where: str
    message: str
    hint: str


@record
class CheckReport:
    plugin: str
    findings: list[Finding] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)
    abi_version: int | None = None
    #: A component's world (named instead of an ABI version).
    world: str | None = None
    #: The prefilter in force, as its section's JSON (None: the plugin sees every line).
    prefilter: dict[str, object] | None = None
    #: Sample lines, and how many of them the prefilter keeps from the plugin.
    sample_lines: int = 0
    sample_skipped: int = 0

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
    """alloc must hand out usable memory; in ABI v1, clear of the input region, which
    must also be free of the plugin's own data."""
    with plugin.budgeted():  # a start function or alloc that never ends is stopped
        _check_instance(plugin, report)


def _check_instance(plugin: Plugin, report: CheckReport) -> None:
    try:
        inst = plugin.new_instance()
    except capi.CallFailed as exc:
        report.findings.append(Finding("violation", "instantiation", f"failed: {exc}", hint_for(str(exc))))
        return
    v1 = plugin.abi_version == 1
    try:
        region = inst.read(INPUT_OFFSET, INPUT_REGION) if v1 else b""
        if any(region):
            report.findings.append(Finding(
                "violation", "memory layout",
                f"memory at {INPUT_OFFSET:#x}-{INPUT_OFFSET + INPUT_REGION:#x} is not empty after "
                "instantiation: data or stack lies in the input region the host overwrites",
                "link with --global-base=0x12000 (data, stack and heap above the input region)"))
        pointer = inst.call(inst.func(b"alloc"), 64) & 0xFFFFFFFF
        _, size = inst.memory()
        if pointer == 0 or pointer + 64 > size or (
                v1 and pointer < INPUT_OFFSET + INPUT_REGION and pointer + 64 > INPUT_OFFSET):
            report.findings.append(Finding(
                "violation", "alloc(64)",
                f"returned {pointer:#x}, which is 0, outside memory"
                + (" or inside the input region" if v1 else ""),
                "start the heap at __heap_base" + (", above 0x12000" if v1 else "")))
    except capi.CallFailed as exc:
        report.findings.append(Finding("violation", "alloc(64)", f"failed: {exc}", hint_for(str(exc))))
    finally:
        inst.close()


#: A line over its budget is run again with this many times the budget, to tell a plugin
#: that is slow on it from one that never ends; for at most RETRIED lines (a plugin that
#: loops on every line would make the check wait ROOMY budgets for each).
ROOMY = 10
RETRIED = 3


class _Rerun:
    """The plugin loaded again with ROOMY times the budget (on first need), and how many
    lines it ran."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path = path
        self.limits = replace(limits, timeout_s=limits.timeout_s * ROOMY,
                              timeout_per_mib_s=limits.timeout_per_mib_s * ROOMY)
        self.plugin: Plugin | None = None
        self.lines = 0

    def cpu_time(self, line: str) -> float | None:
        """The CPU time the line takes with the larger budget (None: it does not end)."""
        self.lines += 1
        try:
            if self.plugin is None:
                self.plugin = Runtime(self.limits, measure_cpu=True).load(self.path)
            self.plugin.parse(line)
        except (PluginTimeout, PluginLoadError, PluginRuntimeError, InputTooLarge):
            return None
        used: float = budget.local.last[0]
        return used

    def close(self) -> None:
        if self.plugin is not None:
            self.plugin.runtime.close()


def _too_slow(rerun: _Rerun, plugin: Plugin, where: str, line: str) -> Finding:
    """The violation of a line over its budget: slow but finite (it ends with ROOMY times
    the budget; its CPU time is given), or an endless loop (it does not)."""
    line_budget = plugin.line_budget(len(line.encode("utf-8", "replace")))
    if rerun.lines >= RETRIED:
        return Finding("violation", where, f"parse_line did not finish within the {line_budget * 1000:.0f} "
                       "ms budget", "avoid unbounded loops; keep per-line work small")
    used = rerun.cpu_time(line)
    if used is None:
        return Finding("violation", where, f"parse_line did not finish within the {line_budget * 1000:.0f} "
                       f"ms budget, nor within {ROOMY} times that: an endless loop?",
                       "make every loop end on any line (a loop waiting for a byte the line may "
                       "not hold never ends)")
    return Finding("violation", where, f"parse_line took {used * 1000:.0f} ms of CPU time, over its "
                   f"{line_budget * 1000:.0f} ms budget: it ends, but too slowly",
                   "do less per line: look for the line's literal text before any regex (as the "
                   "templates do), or raise --timeout (--timeout-per-mib for long lines)")


def _describe_events(events: list[Event]) -> str:
    kinds = sorted({e.type for e in events})
    return f"{len(events)} event(s) of type {', '.join(kinds)}"


def _read_sample(paths: Sequence[str | Path], limits: Limits
                 ) -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
    """(where, text) of every line of the sample files, and (where, bytes) of those too
    long to hold; an InputError for a file that cannot be read (the check must not pass
    without its sample)."""
    lines: list[tuple[str, str]] = []
    too_large: list[tuple[str, int]] = []
    for item in read_items([str(p) for p in paths], limits.max_line_bytes) if paths else ():
        if isinstance(item, SourceFailed):
            raise item.error
        if isinstance(item, Lines):
            for line in item:
                where = f"{line.source}:{line.number}"
                if line.too_large:
                    too_large.append((where, line.too_large))
                else:
                    lines.append((where, line.text))
    return lines, too_large


def check_plugin(path: str | Path, limits: Limits | None = None, *,
                 sample_files: Sequence[str | Path] = (),
                 sample_lines: Iterable[tuple[str, str]] = ()) -> CheckReport:
    """Every edge case and sample line through the plugin, prefilter or not: a line
    its prefilter rejects must give no events (a prefilter must never hide events).
    ``sample_files``: logs whose every line is run too (a file that cannot be read is
    an InputError: the check must not pass without its sample); ``sample_lines``:
    (where, text) pairs run as well."""
    limits = limits or Limits()
    from_files, too_large = _read_sample(sample_files, limits)
    sample = [*from_files, *sample_lines]
    path = str(path)
    report = CheckReport(plugin=path)
    runtime = Runtime(limits, measure_cpu=True)
    try:
        plugin = runtime.load(path)
    except PluginFileError:
        runtime.close()
        raise
    except PluginLoadError as exc:
        report.findings.append(Finding("violation", "load", str(exc), hint_for(str(exc))))
        runtime.close()
        return report
    rerun = _Rerun(plugin.path, limits)  # for lines over their budget (_too_slow)
    try:
        _check_lines(plugin, limits, sample, report, rerun)
    finally:
        runtime.close()
        rerun.close()
    for where, size in too_large:
        report.findings.append(Finding(
            "warning", where, f"line is {size} bytes, over the {format_size(limits.max_line_bytes)} "
            "line limit: vrclog parse never gives it to the plugin", "raise --line-limit if it matters"))
    return report


def _check_lines(plugin: Plugin, limits: Limits, sample: list[tuple[str, str]],
                 report: CheckReport, rerun: _Rerun) -> None:
    report.abi_version = plugin.abi_version
    report.world = WORLD if plugin.kind == "component" else None
    prefilter = plugin.prefilter
    report.prefilter = prefilter.to_json() if prefilter is not None else None
    if plugin.declared.warning:
        report.findings.append(Finding("warning", "prefilter",
                                       f"custom section {PREFILTER_SECTION}: {plugin.declared.warning}",
                                       "use only the keys substrings and regex"))
    if plugin.kind == "core":  # a component's memory is its own business (canonical ABI)
        _check_layout(plugin, report)
    report.sample_lines = len(sample)
    cases = [(where, line, False) for where, line in edge_cases(limits, plugin.abi_version or 2)]
    cases += [(where, line, True) for where, line in sample]
    for where, line, from_sample in cases:
        rejected = not plugin.accepts(line)
        if rejected and from_sample:
            report.sample_skipped += 1
        try:
            first = plugin.parse(line)
            used, line_budget = budget.local.last
            if plugin.parse(line) != first:
                report.findings.append(Finding(
                    "violation", where, "the same line gave different events on a second run",
                    "keep parse_line deterministic: no state between calls"))
            declared = plugin.declared.event_types
            if declared is not None and (other := sorted({e.type for e in first} - set(declared))):
                report.findings.append(Finding(
                    "violation", where, f"emitted type {', '.join(other)}, which its {TYPES_SECTION} "
                    f"section does not declare ({', '.join(declared)})",
                    "declare every type it emits: vrclog plugin types PLUGIN --type NAME -o PLUGIN"))
        except InputTooLarge as exc:
            if "over the limit" not in where:
                report.findings.append(Finding("warning", where, f"the plugin cannot receive it: {exc}",
                                               "ABI v2 plugins get whole lines up to the line limit"))
            continue
        except PluginTimeout:
            report.findings.append(_too_slow(rerun, plugin, where, line))
            continue
        except PluginRuntimeError as exc:
            if exc.kind == "plugin_error":
                report.findings.append(Finding(
                    "warning", where, f'answered "ok": false: {exc}',
                    "fine for lines the plugin rejects; an unmatched line should give no events"))
            else:
                report.findings.append(Finding("violation", where, str(exc), hint_for(str(exc))))
            continue
        # CPU time, the budget's own measure (the smaller of the two runs): what other
        # work on a busy machine costs this process is no part of it.
        used = min(used, budget.local.last[0])
        report.timings.append((where, used))
        if rejected and first:
            report.findings.append(Finding(
                "violation", where, f"the {PREFILTER_SECTION} prefilter rejects this line, but the "
                f"plugin gives {_describe_events(first)} for it: vrclog parse would lose them",
                "widen the prefilter (a substring every matching line contains) or fix its regex"))
        if used > line_budget / 2:
            report.findings.append(Finding(
                "warning", where, f"parse_line took {used * 1000:.0f} ms of CPU time, of its "
                f"{line_budget * 1000:.0f} ms budget", "a slower machine may time out on such lines"))
