"""CI reports of a run's findings: GitHub annotations, JUnit, SARIF, GitLab Code Quality, Markdown.

A finding is an event matched by --fail-on or an input that could not be read
to its end (level "error": input_error), or a per-line error (level "warning":
timeout, runtime_error, plugin_error, input_too_large).
Reports are written in addition to the events, at the end of the run, and
always whole: after Ctrl-C, --fail-fast or a plugin that did not load, each
says it is partial where its format has a place for that.  Every path is
opened before the first line is read, so one that cannot be written is a
usage error, not a lost report.
"""

from __future__ import annotations

import os
import stat
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ..errors import ExitCode, OutputError, UsageError
from ..events import printable
from ..records import field, record, replace
from ..run.sources import STDIN_NAME

FORMATS = ("github", "junit", "sarif", "gitlab", "markdown")
#: Findings kept for the reports; past this, they are counted, not listed (memory stays
#: bounded on a log where --fail-on any matches millions of events).
MAX_FINDINGS = 10_000
MAX_ANNOTATIONS = 50  # GitHub shows few per step anyway; the rest are counted in one notice
SUMMARY_ROWS = 50
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_URI = "https://github.com/vrclog/vrclog"
ERROR_KINDS = {
    "timeout": "a plugin ran out of its time budget on a line",
    "runtime_error": "a plugin trapped, broke the ABI or ran out of memory on a line",
    "plugin_error": "a plugin reported an error for a line",
    "input_too_large": "a line was too long for a plugin",
    "input_error": "an input could not be read to its end, or is damaged (a truncated gzip)",
}


@record(frozen=True)
class Finding:
    source: str  # the log file as given (relative to the working folder where it lies in it)
    line: int
    rule: str  # the event type, or the error kind
    level: str  # "error" (--fail-on) or "warning" (a per-line error)
    message: str  # one line


@record(frozen=True)
class ReportSpec:
    format: str
    path: str | None  # None: the format's default place (stderr, GITHUB_STEP_SUMMARY)


def parse_report_spec(text: str) -> ReportSpec:
    """``FORMAT[=PATH]`` as --report takes it (ValueError names what is wrong)."""
    kind, eq, path = text.partition("=")
    if kind not in FORMATS:
        raise ValueError(f"{kind!r} is not a report format (choose from {', '.join(FORMATS)})")
    if eq and not path:
        raise ValueError(f"{kind}=: the path is empty")
    return ReportSpec(kind, path or None)


#: What XML 1.0 cannot hold at all, besides the controls events.printable writes out.
_NONCHARACTERS = {0xFFFE: "\\ufffe", 0xFFFF: "\\uffff"}


def report_text(text: str) -> str:
    """Any text, a file name with bytes that are not UTF-8 or a line with controls, as
    every report format can hold it: undecodable bytes written ``\\xff``, other lone
    surrogates ``\\udc00``, controls ``\\x1b`` (as on a terminal) and XML's two
    noncharacters ``\\ufffe``."""
    if text.isascii() and text.isprintable():
        return text
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name decoding made (a plugin's \ud800)
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return printable(text).translate(_NONCHARACTERS)


def source_name(source: str, cwd: Path | None = None) -> str:
    """A log's name in reports: relative to the working folder when it lies inside it."""
    if source in ("-", STDIN_NAME):
        return STDIN_NAME
    base = (cwd or Path.cwd()).resolve()
    try:
        return Path(source).resolve().relative_to(base).as_posix()
    except ValueError:
        return source


def event_message(event_type: str, fields: Mapping[str, Any]) -> str:
    """One line about a --fail-on event: its type and what identifies it (no timestamp,
    so the line, and the fingerprints made from it, stay the same from run to run)."""
    parts = [f"{k}={v}" for k, v in fields.items() if k not in ("type", "timestamp", "data") and v]
    data = fields.get("data") or {}
    parts += [f"{k}={v}" for k, v in data.items()]
    text = f"--fail-on {event_type}" + (": " + ", ".join(parts) if parts else "")
    return " ".join(text.split())[:500]


@record
class RunOutcome:
    """What the reports say about the run as a whole."""

    exit_code: int
    partial_reason: str | None  # None: every input was read to its end
    sources: Sequence[str] = ()
    lines: int = 0
    events_by_type: Mapping[str, int] = field(default_factory=dict)
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)


STOP_REASONS: dict[int, str] = {ExitCode.INTERRUPTED: "interrupted (SIGINT, Ctrl-C)",
                ExitCode.TERMINATED: "terminated (SIGTERM)",
                ExitCode.HUNG_UP: "hung up (SIGHUP: the terminal closed)",
                ExitCode.OK: "stopped: standard output was closed"}


def partial_reason(stopped_code: int | None, failure: str | None = None) -> str | None:
    """Why a run did not read every input to its end, in a report's words (None: it did).
    ``failure``: the error that ended it before or while parsing (a plugin load error)."""
    if failure is not None:
        return failure
    if stopped_code is None:
        return None
    return STOP_REASONS.get(stopped_code, "stopped at the first per-line error (--fail-fast)")


class Reports:
    """The reports of one run: opened before it, fed its findings, written after it."""

    def __init__(self, specs: Sequence[ReportSpec], *, cwd: Path | None = None,
                 environ: Mapping[str, str] | None = None, stderr: IO[str] | None = None) -> None:
        self.specs = list(specs)
        self.cwd = cwd or Path.cwd()
        self.environ = os.environ if environ is None else environ
        self.stderr = stderr or sys.stderr
        self.findings: list[Finding] = []
        self.unlisted = 0  # findings past MAX_FINDINGS
        self.by_rule: Counter[str] = Counter()
        self._outputs: list[tuple[ReportSpec, IO[str]]] = []
        self._names: dict[str, str] = {}  # source -> its name in reports (resolving costs ~10 µs)

    def open(self, inputs: Sequence[str] = (), stdout: int | None = None,
             outputs: Sequence[tuple[str, str]] = ()) -> None:
        """Opens every report's destination now: a UsageError before any line is read, and
        before anything is opened, for a destination that is one of the ``inputs``, the
        file behind the ``stdout`` descriptor, or another report's or output's (by file
        identity; ``outputs``: (option, path) of the run's other outputs, a database)."""
        places = [(spec, *self._place(spec)) for spec in self.specs]
        _refuse_clashes([*outputs, *((f"--report {spec.format}={path}", path) for spec, path, _ in places
                                     if path is not None)], inputs, stdout)
        for spec, path, mode in places:
            self._outputs.append((spec, self.stderr if path is None else self._open(spec, path, mode)))

    def _place(self, spec: ReportSpec) -> tuple[str | None, str]:
        """Where a report goes, and the open mode (None: stderr)."""
        if spec.path is not None:
            return spec.path, "w"
        if spec.format == "github":
            return None, "w"  # the runner reads workflow commands there too, apart from the events
        if spec.format == "markdown" and self.environ.get("GITHUB_STEP_SUMMARY"):
            return self.environ["GITHUB_STEP_SUMMARY"], "a"
        need = " (or GITHUB_STEP_SUMMARY set)" if spec.format == "markdown" else ""
        raise UsageError(f"--report {spec.format} needs a path: --report {spec.format}=PATH{need}")

    def _open(self, spec: ReportSpec, path: str, mode: str) -> IO[str]:
        """Creates the report's folder as CI tools do (``--report junit=out/junit.xml``)."""
        try:
            if folder := os.path.dirname(path):
                os.makedirs(folder, exist_ok=True)
            return open(path, mode, encoding="utf-8", newline="\n")  # held until the run is written
        except FileExistsError:  # from makedirs: a file where a folder must be
            raise UsageError(f"--report {spec.format}={path}: cannot write: "
                             "a file is in the way of its folder") from None
        except OSError as exc:
            raise UsageError(f"--report {spec.format}={path}: cannot write: {exc.strerror}") from None

    def add(self, finding: Finding) -> None:
        rule = report_text(finding.rule)
        self.by_rule[rule] += 1
        if len(self.findings) >= MAX_FINDINGS:
            self.unlisted += 1
            return
        name = self._names.get(finding.source)
        if name is None:
            name = self._names[finding.source] = report_text(source_name(finding.source, self.cwd))
        self.findings.append(Finding(name, finding.line, rule, finding.level,
                                     report_text(" ".join(finding.message.split()))))

    def write(self, outcome: RunOutcome) -> None:
        """Writes every report, whole, and closes its file; each is written even if
        another fails (an OutputError naming the first that failed is raised after)."""
        failed: OutputError | None = None
        sources = [report_text(source_name(s, self.cwd)) for s in outcome.sources] or sorted(
            {f.source for f in self.findings})
        outcome = replace(
            outcome, partial_reason=outcome.partial_reason and report_text(outcome.partial_reason),
            events_by_type={report_text(k): n for k, n in outcome.events_by_type.items()})
        for spec, out in self._outputs:
            try:
                try:
                    WRITERS[spec.format](self, outcome, sources, out)
                    out.flush()
                finally:
                    if out is not self.stderr:
                        out.close()  # flushes again, and fails again, but closes the file
            except OSError as exc:
                failed = failed or OutputError(
                    f"--report {spec.format}={getattr(out, 'name', spec.path)}: cannot write: "
                    f"{exc.strerror or exc}")
        self._outputs = []
        if failed is not None:
            raise failed

    def fingerprint(self, finding: Finding, salt: str = "") -> str:
        import hashlib  # reports are written once, at the end: start-up does not pay for these

        text = "\0".join((finding.rule, finding.source, str(finding.line), finding.message, salt))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- GitHub workflow commands ---------------------------------------------------------

def file_identity(path: str | None = None, fd: int | None = None) -> tuple[int | str, ...] | None:
    """What names one file whatever its spelling: (device, inode) of a regular file, or,
    for a path not there yet, its folder's identity and its name; None for anything
    else (a terminal, /dev/null, a pipe: writing there destroys no file)."""
    try:
        info = os.fstat(fd) if fd is not None else os.stat(path or "")
    except FileNotFoundError:
        if path is None:
            return None
        parent = os.path.dirname(os.path.abspath(path))
        try:
            folder = os.stat(parent)
        except OSError:
            return None
        return (folder.st_dev, folder.st_ino, os.path.normcase(os.path.basename(path)))
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def _refuse_clashes(destinations: Sequence[tuple[str, str]], inputs: Sequence[str],
                    stdout: int | None) -> None:
    """UsageError when an output would destroy an input, stdout's file or another output."""
    taken: dict[tuple[int | str, ...], str] = {}
    for name in inputs:
        where = file_identity(fd=0) if name in ("-", STDIN_NAME) else file_identity(name)
        if where is not None:
            taken.setdefault(where, f"the input {STDIN_NAME if name == '-' else name}")
    if stdout is not None and (where := file_identity(fd=stdout)) is not None:
        if where in taken:  # `vrclog parse log >> log` would read its own events for ever
            raise UsageError(f"standard output is {taken[where]}: the run would read what it writes "
                             "(write the events to a file of their own)")
        taken[where] = "standard output's file"
    for what, path in destinations:
        where = file_identity(path)
        if where is None:
            continue
        if where in taken:
            raise UsageError(f"{what}: is {taken[where]}; writing it would destroy that "
                             "(give it a path of its own)")
        taken[where] = what


def escape_data(text: str) -> str:
    """As the Actions toolkit escapes a command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """As the Actions toolkit escapes a command's property (file=, title=)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _write_github(reports: Reports, outcome: RunOutcome, sources: list[str], out: IO[str]) -> None:
    shown: Counter[str] = Counter()
    hidden = reports.unlisted
    for f in reports.findings:
        if shown[f.level] >= MAX_ANNOTATIONS:
            hidden += 1
            continue
        shown[f.level] += 1
        props = f"file={escape_property(f.source)},line={f.line},title={escape_property('vrclog: ' + f.rule)}"
        out.write(f"::{f.level} {props}::{escape_data(f.message)}\n")
    if hidden:
        out.write(f"::notice title=vrclog::{hidden} more findings not shown as annotations\n")
    if outcome.partial_reason:
        out.write(f"::warning title=vrclog::{escape_data('partial run: ' + outcome.partial_reason)}\n")


# --- JUnit XML ----------------------------------------------------------------------

def _write_junit(reports: Reports, outcome: RunOutcome, sources: list[str], out: IO[str]) -> None:
    import xml.etree.ElementTree as ET

    by_source: dict[str, list[Finding]] = {s: [] for s in sources}
    for f in reports.findings:
        by_source.setdefault(f.source, []).append(f)
    root = ET.Element("testsuites", name="vrclog")
    total = failures = errors = 0
    for source, found in by_source.items():
        suite = ET.SubElement(root, "testsuite", name=source, file=source)
        if outcome.partial_reason or reports.unlisted:
            props = ET.SubElement(suite, "properties")
            if outcome.partial_reason:
                ET.SubElement(props, "property", name="partial", value=outcome.partial_reason)
            if reports.unlisted:
                ET.SubElement(props, "property", name="unlisted_findings", value=str(reports.unlisted))
        suite_failures = suite_errors = 0
        if not found:  # a suite with no findings still shows the file was checked
            ET.SubElement(suite, "testcase", name="no findings", classname="vrclog", file=source)
        for one in found:
            case = ET.SubElement(suite, "testcase", name=f"{one.source}:{one.line} {one.rule}",
                                 classname=f"vrclog.{one.rule}", file=one.source, line=str(one.line))
            tag = "failure" if one.level == "error" else "error"
            ET.SubElement(case, tag, message=one.message, type=one.rule).text = \
                f"{one.source}:{one.line}: {one.rule}: {one.message}"
            if tag == "failure":
                suite_failures += 1
            else:
                suite_errors += 1
        cases = max(len(found), 1)
        suite.set("tests", str(cases))
        suite.set("failures", str(suite_failures))
        suite.set("errors", str(suite_errors))
        total += cases
        failures += suite_failures
        errors += suite_errors
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")


# --- SARIF 2.1.0 --------------------------------------------------------------------

def _rule_text(rule: str) -> str:
    return ERROR_KINDS.get(rule) or f"an event of type {rule} matched --fail-on"


def _write_sarif(reports: Reports, outcome: RunOutcome, sources: list[str], out: IO[str]) -> None:
    import json
    from urllib.parse import quote

    from .. import __version__

    rules: dict[str, int] = {}
    levels: dict[str, str] = {}
    for f in reports.findings:
        rules.setdefault(f.rule, len(rules))
        levels.setdefault(f.rule, f.level)
    results = []
    for f in reports.findings:
        results.append({
            "ruleId": f.rule,
            "ruleIndex": rules[f.rule],
            "level": f.level,
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": quote(f.source, safe="/")},
                "region": {"startLine": max(f.line, 1)},
            }}],
            "partialFingerprints": {"vrclogFinding/v1": reports.fingerprint(f)},
        })
    invocation: dict[str, Any] = {"executionSuccessful": outcome.partial_reason is None,
                                  "exitCode": int(outcome.exit_code)}
    notes = []
    if outcome.partial_reason:
        notes.append({"level": "error", "message": {"text": "partial run: " + outcome.partial_reason}})
    if reports.unlisted:
        notes.append({"level": "note", "message": {"text": f"{reports.unlisted} more findings not listed"}})
    if notes:
        invocation["toolExecutionNotifications"] = notes
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "vrclog", "version": __version__, "informationUri": TOOL_URI,
                "rules": [{"id": rule, "shortDescription": {"text": _rule_text(rule)},
                           "defaultConfiguration": {"level": levels[rule]}} for rule in rules],
            }},
            "invocations": [invocation],
            "results": results,
        }],
    }
    json.dump(doc, out, indent=2, ensure_ascii=False)
    out.write("\n")


# --- GitLab Code Quality ------------------------------------------------------------

def _write_gitlab(reports: Reports, outcome: RunOutcome, sources: list[str], out: IO[str]) -> None:
    import json

    seen: Counter[str] = Counter()
    issues = []
    for f in reports.findings:
        base = reports.fingerprint(f)
        seen[base] += 1  # the same finding twice (two events of one line) still gets its own
        issues.append({
            "description": f"{f.rule}: {f.message}",
            "check_name": f.rule,
            "fingerprint": reports.fingerprint(f, salt=str(seen[base])) if seen[base] > 1 else base,
            "severity": "major" if f.level == "error" else "minor",
            "location": {"path": f.source, "lines": {"begin": max(f.line, 1)}},
        })
    json.dump(issues, out, indent=2, ensure_ascii=False)  # the format has no place for "partial"
    out.write("\n")


# --- Markdown job summary -----------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")


def _write_markdown(reports: Reports, outcome: RunOutcome, sources: list[str], out: IO[str]) -> None:
    total = sum(reports.by_rule.values())
    lines = ["## vrclog", ""]
    if outcome.partial_reason:
        lines += [f"> **Partial run**: {_cell(outcome.partial_reason)}. Findings below are those "
                  "of the lines read before it stopped.", ""]
    lines += [f"{outcome.lines:,} lines from {len(sources)} file{'' if len(sources) == 1 else 's'}, "
              f"exit code {int(outcome.exit_code)}: **{total} finding{'' if total == 1 else 's'}**.", ""]
    if outcome.events_by_type or outcome.errors_by_kind:
        lines += ["| | type or kind | count | findings |", "|---|---|---:|---:|"]
        for kind, count in sorted(outcome.events_by_type.items(), key=lambda kv: -kv[1]):
            lines.append(f"| event | `{_cell(kind)}` | {count:,} | {reports.by_rule.get(kind, 0):,} |")
        for kind, count in sorted(outcome.errors_by_kind.items(), key=lambda kv: -kv[1]):
            lines.append(f"| error | `{_cell(kind)}` | {count:,} | {reports.by_rule.get(kind, 0):,} |")
        lines.append("")
    if reports.findings:
        shown = reports.findings[:SUMMARY_ROWS]
        lines += [f"First {len(shown)} of {total}:" if total > len(shown) else "Findings:", "",
                  "| where | level | rule | message |", "|---|---|---|---|"]
        lines += [f"| `{_cell(f.source)}:{f.line}` | {f.level} | `{_cell(f.rule)}` | {_cell(f.message)} |"
                  for f in shown]
        lines.append("")
    out.write("\n".join(lines) + "\n")


WRITERS = {"github": _write_github, "junit": _write_junit, "sarif": _write_sarif,
           "gitlab": _write_gitlab, "markdown": _write_markdown}

