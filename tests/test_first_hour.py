"""A new user's first hour (issue #19), through the real process: --fail-on that explains
itself, --long-lines, one error style, help that agrees with the program, small words."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SAMPLE_LOGS, SAMPLES, VRCLOG_BIN, interrupt_after, python, vrclog
from .test_cli_e2e import PREFIX, events

LEFT = PREFIX + "[Behaviour] OnPlayerLeft {} (usr_{})"


def vrchat_log(tmp_path: Path) -> Path:
    path = tmp_path / "output_log.txt"
    path.write_text("\n".join([PREFIX + "[Behaviour] Entering Room: Lounge", LEFT.format("Al", 1),
                               "noise", LEFT.format("Bo", 2), LEFT.format("Cy", 3)]) + "\n")
    return path


def test_fail_on_says_why_it_failed_the_run(tmp_path: Path) -> None:
    log = vrchat_log(tmp_path)
    result = vrclog("parse", "--fail-on", "player_left", "--fail-on", "world_join", log)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"vrclog: --fail-on matched world_join: 1 event, first at {log}:1",
        f"vrclog: --fail-on matched player_left: 3 events, first at {log}:2"]
    passed = vrclog("parse", "--fail-on", "player_join", log)
    assert passed.returncode == 0 and passed.stderr == ""


@pytest.mark.parametrize("typo", ["player_leave", "Player_Left"])
def test_fail_on_type_the_builtin_parser_never_gives_is_a_usage_error(tmp_path: Path, typo: str) -> None:
    result = vrclog("parse", "--fail-on", typo, vrchat_log(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"vrclog: error: --fail-on: the built-in parser gives no event of type {typo} "
                             "(did you mean player_left? `vrclog types` lists its types; "
                             "'any' for every type)\n")


def test_fail_on_type_no_plugin_gave_gets_a_note_with_a_near_miss(tmp_path: Path) -> None:
    log = vrchat_log(tmp_path)
    result = vrclog("parse", "--builtin", "--plugin", SAMPLES / "minimal.wasm", "--fail-on", "Player_Left",
                    "--fail-on", "zzz", log)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "vrclog: note: --fail-on Player_Left matched no event (did you mean player_left?)",
        "vrclog: note: --fail-on zzz matched no event"]


def test_long_lines_skip_counts_them_and_keeps_the_exit_code(tmp_path: Path) -> None:
    log = tmp_path / "long.log"
    log.write_text("a" * 9000 + "\nshort\n" + "b" * 9000 + "\n")
    v1 = ("--no-prefilter", "--plugin", SAMPLES / "vrpoker_v1.wasm")
    failing = vrclog("parse", *v1, log)
    assert failing.returncode == 4 and failing.stderr.count("input_too_large") == 2
    skipped = vrclog("parse", *v1, "--long-lines", "skip", "--stats", log)
    assert skipped.returncode == 0
    assert "input_too_large" not in skipped.stderr
    assert "vrclog: skipped 2 lines too long for a plugin (--long-lines skip)" in skipped.stderr
    assert "long lines skipped │ 2" in " ".join(skipped.stderr.split())
    over_limit = vrclog("parse", "--plugin", SAMPLES / "echo.wasm", "--line-limit", "100",
                        "--long-lines", "skip", log)
    assert over_limit.returncode == 0 and [e["data"]["text"] for e in events(over_limit.stdout)] == [  # type: ignore[index]
        "short"]


@pytest.mark.parametrize(("args", "message"), [
    (("--timeout", "0"), "vrclog: error: --timeout: '0' is not a duration; use e.g. 50ms or 2s"),
    (("--memory-limit", "lots"),
     "vrclog: error: --memory-limit: 'lots' is not a size; use e.g. 64MiB or 8192"),
    (("--jobs", "0"), "vrclog: error: --jobs: 0 is not in the range x>=1."),
    (("--format", "xml"), "vrclog: error: --format: 'xml' is not one of 'jsonl', 'pretty'."),
    (("--bogus",), "vrclog: error: no such option '--bogus'."),
    (("--log-dir", "/tmp", "x.log"),
     "vrclog: error: --log-dir reads a folder of VRChat logs: give it or FILEs, not both"),
])
def test_usage_errors_are_one_line(args: tuple[str, ...], message: str) -> None:
    result = vrclog("parse", *args)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)


def test_usage_error_from_the_environment_names_the_variable() -> None:
    result = vrclog("parse", env={"VRCLOG_TIMEOUT": "soon"})
    assert result.returncode == 2
    assert result.stderr == ("vrclog: error: --timeout (from VRCLOG_TIMEOUT): 'soon' is not a duration; "
                             "use e.g. 50ms or 2s\n")


@pytest.mark.posix
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="root reads anything")
def test_unreadable_input_is_like_a_missing_one(tmp_path: Path) -> None:
    good = tmp_path / "good.log"
    good.write_text("one\ntwo\n")
    secret = tmp_path / "secret.log"
    secret.write_text("hidden\n")
    secret.chmod(0)
    # Root reads any file: drop the capabilities that let it, for this one process.
    wrap = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    result = subprocess.run([*wrap, VRCLOG_BIN, "parse", "--plugin", SAMPLES / "echo.wasm", secret, good],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert [e["data"]["text"] for e in events(result.stdout)] == ["one", "two"]  # type: ignore[index]
    assert result.stderr == f"vrclog: error: {secret}: cannot open: Permission denied\n"


def test_directory_input_points_at_log_dir(tmp_path: Path) -> None:
    result = vrclog("parse", tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"vrclog: error: {tmp_path}: is a directory "
                             "(use --log-dir DIR for a VRChat log folder)\n")


def test_help_agrees_with_the_program() -> None:
    top = vrclog("--help").stdout
    assert "..." not in top.split("Commands:")[1]  # no summary cut short
    tail = vrclog("tail", "--help").stdout.split("Options:")[1]
    assert "--follow" not in tail and "--log-dir" not in tail and "--timeout" in tail
    parse = " ".join(vrclog("parse", "--help").stdout.split())
    assert "70 internal error" in parse and "VRCLOG_DEBUG" in parse
    assert "worker threads or processes" in parse


@pytest.mark.parametrize(("env", "traceback"), [({}, False), ({"VRCLOG_DEBUG": "1"}, True)])
def test_debug_from_the_environment_shows_tracebacks(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str],
                                                     env: dict[str, str], traceback: bool) -> None:
    from vrclog_cli import cli

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "run_parse", broken)
    monkeypatch.delenv("VRCLOG_DEBUG", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["parse", "-"]) == 70
    err = capsys.readouterr().err
    assert ("Traceback (most recent call last)" in err) is traceback
    assert "RuntimeError: a bug" in err


@pytest.mark.parametrize(("args", "env", "default"), [
    ((), {}, True), (("--jobs", "2"), {}, False), (("-j", "1"), {}, False),
    ((), {"VRCLOG_JOBS": "3"}, False)])
def test_jobs_given_is_not_second_guessed(monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...],
                                          env: dict[str, str], default: bool) -> None:
    """--workers auto may run fewer jobs than the CPU count it defaults to, never fewer than
    a --jobs (or VRCLOG_JOBS) the user gave: a slow plugin would lose its workers."""
    from vrclog_cli import ParseOptions, cli

    seen: list[ParseOptions] = []
    monkeypatch.setattr(cli, "run_parse", lambda options, _view: seen.append(options))
    monkeypatch.delenv("VRCLOG_JOBS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["parse", *args, "-"]) == 0
    assert seen[0].default_jobs is default


def test_completion_offers_files_for_plugin(tmp_path: Path) -> None:
    result = vrclog(env={"_VRCLOG_COMPLETE": "bash_complete", "COMP_WORDS": "vrclog parse --plugin ",
                         "COMP_CWORD": "3"})
    assert result.stdout.startswith("file")


@pytest.mark.posix
def test_interrupted_says_line_in_the_singular() -> None:
    code, err = interrupt_after(["parse", "--plugin", SAMPLES / "echo.wasm"], b"only\n", lines=1)
    assert code == 130
    assert err.decode().strip() == "vrclog: interrupted after 1 line (1 event written)"


def test_stats_show_a_rough_rate_for_a_short_run_and_none_for_no_lines(tmp_path: Path) -> None:
    result = vrclog("parse", "--stats", vrchat_log(tmp_path))
    assert re.search(r"lines/s │ ~[1-9][0-9,]* │", " ".join(result.stderr.split())), result.stderr
    empty = vrclog("parse", "--stats", stdin=b"")
    assert "lines/s │ — │" in " ".join(empty.stderr.split())


@pytest.mark.parametrize("fmt", ["jsonl", "pretty"])
def test_closed_stdout_stops_the_work_and_forgets_later_lines(tmp_path: Path, fmt: str) -> None:
    """`vrclog parse ... | head -1`: reading stops once the reader is gone, and a line
    that would fail later (here the last, too long for ABI v1) is never processed."""
    log = tmp_path / "big.log"
    with log.open("w") as f:  # one event, then ~3 s of lines without events
        f.write(f"{PREFIX}[VRPoker] Round 1 begins\n")
        f.writelines(f"{PREFIX}[Network] ping {n}\n" for n in range(200_000))
        f.write("x" * 9000 + "\n")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--jobs", "1", "--format", fmt, "--no-prefilter",
                             "--plugin", SAMPLES / "vrpoker_v1.wasm", log],
                            stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        first = reader.readline()  # then the reader goes away, as head's does
    _, err = proc.communicate(timeout=60)
    assert b"vrpoker_round" in first
    # Exit 0: the last line (too long for ABI v1, exit 4) was never reached.
    assert proc.returncode == 0, err
    assert err == b""


@pytest.mark.parametrize("args", [("types",), ("types", "--json"), ("plugin", "info", "vrpoker.wasm"),
                                  ("plugin", "check", "vrpoker.wasm"), ("completion", "bash"),
                                  ("--help",), ("--version",), ("parse", "--help")])
def test_every_command_ends_quietly_when_its_reader_is_gone(args: tuple[str, ...]) -> None:
    """`vrclog types | head -1` under `set -o pipefail`: exit 0 and nothing on stderr, as for
    parse (rich exits 1 there, and so does click on a broken pipe)."""
    argv = [str(SAMPLES / a) if a.endswith(".wasm") else a for a in args]
    read_end, write_end = os.pipe()
    os.close(read_end)  # gone before the first byte: every write fails
    proc = subprocess.Popen([VRCLOG_BIN, *argv], stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (0, b"")


@pytest.mark.parametrize("args", [(), ("plugin",)])
def test_no_command_shows_the_help_as_it_is(args: tuple[str, ...]) -> None:
    """`vrclog` alone is a new user's first command: the help as --help shows it (on stderr,
    exit 2: no command is a usage error), not squeezed into one error line."""
    result = vrclog(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == vrclog(*args, "--help").stdout


def test_check_reports_sample_lines_the_plugin_could_never_receive(tmp_path: Path) -> None:
    sample = tmp_path / "sample.log"
    sample.write_text(f"{PREFIX}[VRPoker] Round 1 begins\n" + "y" * 9000 + "\n" + "z" * 3000 + "\n")
    v1 = vrclog("plugin", "check", SAMPLES / "vrpoker_v1.wasm", "--sample", sample)
    assert v1.returncode == 0, v1.stdout
    assert f"warning {sample}:2: the plugin cannot receive it: input JSON is 9011 bytes" in v1.stdout
    v2 = vrclog("plugin", "check", SAMPLES / "vrpoker.wasm", "--sample", sample)
    assert v2.returncode == 0 and "cannot receive" not in v2.stdout  # v2 takes whole lines
    with sample.open("a") as f:
        f.write("w" * (1024 * 1024 + 1) + "\n")
    over = vrclog("plugin", "check", SAMPLES / "vrpoker.wasm", "--sample", sample)
    assert over.returncode == 0
    assert (f"warning {sample}:4: line is 1048577 bytes, over the 1 MiB line limit: vrclog parse never "
            "gives it to the plugin") in over.stdout


def test_types_lists_every_built_in_type_with_fields_and_an_example() -> None:
    """Piped: plain text, a line a type (grep finds it by name), then a line that gives each."""
    from vrclog_cli import BUILTIN_TYPES

    shown = vrclog("types")
    assert shown.returncode == 0
    for kind in BUILTIN_TYPES:
        row, example = [line for line in shown.stdout.splitlines() if line.split(" ", 1)[0] == kind.name]
        assert kind.summary in row and ", ".join(kind.fields) in row
        assert example.endswith(kind.example)
    listed = json.loads(vrclog("types", "--json").stdout)
    assert [t["type"] for t in listed] == [t.name for t in BUILTIN_TYPES]
    assert all([e["type"] for e in t["gives"]] == [t["type"]] for t in listed)


@pytest.mark.parametrize(("words", "offered"), [
    ("vrclog parse --fail-on player_join,wor", ["player_join,world_join", "player_join,world_leave"]),
    ("vrclog parse --include-types vid", ["video_play", "video_error", "video_resolved", "video_sync"]),
    ("vrclog parse --fail-on an", ["any"]),
])
def test_completion_offers_event_types(words: str, offered: list[str]) -> None:
    result = vrclog(env={"_VRCLOG_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": "3"})
    assert [line.split(",", 1)[1] for line in result.stdout.splitlines()] == offered


def test_log_discovery_finds_the_windows_locallow_folder(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """%LOCALAPPDATA% is ...\\AppData\\Local; VRChat writes to ...\\AppData\\LocalLow\\VRChat\\VRChat."""
    from vrclog_cli import find_default_logs

    local = tmp_path / "AppData" / "Local"
    logs = tmp_path / "AppData" / "LocalLow" / "VRChat" / "VRChat"
    logs.mkdir(parents=True)
    local.mkdir()
    older, newer = logs / "output_log_2025-06-17_18-00-00.txt", logs / "output_log_2025-06-18_09-00-00.txt"
    newer.write_text("b\n")
    older.write_text("a\n")
    os.utime(older, (1_700_000_000, 1_700_000_000))
    (logs / "Player.log").write_text("not a session log\n")
    monkeypatch.setenv("LOCALAPPDATA", str(local))
    assert find_default_logs() == (logs, [older, newer])


def test_the_cache_folder_is_where_the_os_keeps_caches(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    from platformdirs import user_cache_path

    from vrclog_cli.host import module_cache

    monkeypatch.delenv("VRCLOG_CACHE_DIR")
    assert module_cache.cache_dir() == user_cache_path("vrclog", appauthor=False)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert module_cache.cache_dir() == tmp_path / "vrclog"


def test_stop_signals_are_ctrl_c_and_a_clean_termination() -> None:
    from vrclog_cli import stop_signals

    stops = stop_signals()
    assert stops[signal.SIGINT] == 130 and stops[signal.SIGTERM] == 143
    if sys.platform == "win32":
        assert stops[signal.SIGBREAK] == 143


def test_a_bug_in_the_batch_core_is_an_internal_error_not_a_short_output(tmp_path: Path) -> None:
    """An exception from parsing a batch must end the run as exit 70 with one line, never
    as a run that just stopped writing (before, it halted the output and exited 0)."""
    log = tmp_path / "log.txt"
    log.write_text("2025.06.17 18:20:05 Debug      -  [Behaviour] OnLeftRoom\n")
    script = (
        "import sys\n"
        "from vrclog_cli.vrchat import builtin\n"
        "def broken(self, lines): raise ValueError('a bug')\n"
        "builtin.BuiltinParser.find_events = broken\n"
        "from vrclog_cli.cli import main\n"
        f"sys.exit(main(['parse', {str(log)!r}]))\n")
    result = python(script)
    assert result.returncode == 70 and result.stdout == ""
    assert result.stderr == ("vrclog: internal error: ValueError: a bug "
                             "(run with --debug for a traceback)\n")


def test_posix_only_tests_are_skipped_where_there_is_no_posix(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the Windows CI jobs rely on: tests marked posix get a skip there, no others."""
    from . import conftest

    class Item:
        def __init__(self, *keywords: str) -> None:
            self.keywords = dict.fromkeys(keywords, True)
            self.marks: list[pytest.MarkDecorator] = []

        def add_marker(self, mark: pytest.MarkDecorator) -> None:
            self.marks.append(mark)

    posix, portable = Item("posix", "test_fifo"), Item("test_parse")
    monkeypatch.setattr(os, "name", "nt")  # the os module conftest reads
    conftest.pytest_collection_modifyitems(None, [posix, portable])  # type: ignore[arg-type, list-item]
    assert [m.name for m in posix.marks] == ["skip"] and portable.marks == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="a bash example")
def test_the_readme_shell_example_reports_the_real_exit_code(tmp_path: Path) -> None:
    """The README's exit-code example, run as written by bash: a plugin that cannot load
    (exit 3) must be reported as 3 (`if ! vrclog …; then echo $?` printed 0)."""
    readme = (ROOT / "README.md").read_text("utf-8")
    start = readme.index("    # In a shell script: branch on the exit code")
    block = readme[start:readme.index("\n\n", start)]
    script = "\n".join(line[4:] for line in block.splitlines())
    assert "checks.wasm" in script and "build.log" in script
    (tmp_path / "build.log").write_bytes((SAMPLE_LOGS / "vrpoker.log").read_bytes())
    path = f"{Path(VRCLOG_BIN).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": path})
    assert done.stderr.splitlines()[-1] == "vrclog failed with 3", done.stderr


def test_list_variables_split_as_help_says(tmp_path: Path) -> None:
    """VRCLOG_PLUGIN: paths separated by os.pathsep (on Windows, `C:\\…\\a.wasm;D:\\…` with the
    drive letters' colons kept); VRCLOG_FAIL_ON and the type lists: spaces."""
    first, second = tmp_path / "one dir" / "a.wasm", tmp_path / "b.wasm"
    first.parent.mkdir()
    for plugin in (first, second):
        plugin.write_bytes((SAMPLES / "echo.wasm").read_bytes())
    env = {"VRCLOG_PLUGIN": f"{first}{os.pathsep}{second}", "VRCLOG_FAIL_ON": "nothing line"}
    result = vrclog("parse", stdin=b"hello\n", env=env)
    assert result.returncode == 1, result.stderr  # line matched
    assert [json.loads(line)["type"] for line in result.stdout.splitlines()] == ["line", "line"]
    types = vrclog("parse", "--plugin", first, stdin=b"hello\n", env={"VRCLOG_INCLUDE_TYPES": "x line,y"})
    assert len(types.stdout.splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--include-types", "player_jion"],
     "--include-types: no parser in this run gives events of type player_jion (did you mean player_join? "),
    (["--plugin", str(SAMPLES / "vrpoker.wasm"), "--fail-on", "vrpoker_winer"],
     "--fail-on: no parser in this run gives events of type vrpoker_winer (did you mean vrpoker_winner? "
     "the run's types: vrpoker_event, vrpoker_game_start, vrpoker_round, vrpoker_winner)"),
    (["--plugin", str(SAMPLES / "vrpoker.wasm"), "--exclude-types", "kicked"],
     "--exclude-types: no parser in this run gives events of type kicked (kicked is a built-in type: "
     "add --builtin)"),
])
def test_a_type_no_declared_parser_gives_is_a_usage_error(args: list[str], message: str) -> None:
    """Where every parser declares its types (the built-in parser; vrpoker.wasm in its
    vrclog.types section), a misspelt type wrote nothing and exited 0: now exit 2, before any line."""
    result = vrclog("parse", *args, SAMPLE_LOGS / "vrpoker.log")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"vrclog: error: {message}") and len(result.stderr.splitlines()) == 1
    fine = vrclog("parse", "--builtin", "--plugin", SAMPLES / "vrpoker.wasm", "--fail-on", "kicked",
                  "--include-types", "vrpoker_winner,kicked", SAMPLE_LOGS / "vrpoker.log")
    assert fine.returncode == 0 and fine.stdout.count("vrpoker_winner") == 3
