"""End-to-end: the real ``vrclog`` process, real files, pipes and signals."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import SAMPLE_LOGS, SAMPLES, VRCLOG_BIN, echo_plugin_wat, stdout_lines, vrclog

PREFIX = "2024.01.15 23:59:59 Log        -  "


def events(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def lines_of(out: str) -> list[str]:
    return [e["data"]["line"] for e in events(out)]  # type: ignore[index]


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugins") / "echo.wat"
    path.write_text(echo_plugin_wat())
    return path


def test_version_names_components() -> None:
    result = vrclog("--version")
    assert result.returncode == 0
    assert "vrclog" in result.stdout and "wasmtime" in result.stdout and "Python" in result.stdout


def test_sample_plugin_on_sample_log() -> None:
    result = vrclog("parse", "--plugin", SAMPLES / "vrpoker.wasm", SAMPLE_LOGS / "vrpoker.log")
    assert result.returncode == 0, result.stderr
    types = [e["type"] for e in events(result.stdout)]
    assert types.count("vrpoker_winner") == 3 and types.count("vrpoker_round") == 3
    assert types[0] == "vrpoker_event" and types[1] == "vrpoker_game_start"
    first = events(result.stdout)[1]
    assert list(first) == ["type", "timestamp", "data"]


def test_builtin_parser_is_the_default() -> None:
    result = vrclog("parse", SAMPLE_LOGS / "vrpoker.log")
    assert result.returncode == 0
    got = [(e["type"], e.get("player_name") or e.get("world_name") or e.get("world_id"))
           for e in events(result.stdout)]
    assert got == [
        ("world_join", "wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd"), ("world_join", "VRPoker Lounge"),
        ("player_join", "Alice"), ("player_join", "Bob"), ("player_join", "Ｃｈｅｒｒｙ🍒"),
        ("player_left", "Bob"), ("world_join", "VRPoker Lounge"),  # "Joining or Creating Room" (until ~2023)
        ("player_left", "Alice")]


def test_builtin_runs_ahead_of_plugins() -> None:
    result = vrclog("parse", "--builtin", "--plugin", SAMPLES / "vrpoker.wasm", SAMPLE_LOGS / "vrpoker.log")
    types = [e["type"] for e in events(result.stdout)]
    assert types[:3] == ["world_join", "world_join", "player_join"] and "vrpoker_round" in types


def test_files_stdin_and_dash_in_order(tmp_path: Path, echo: Path) -> None:
    (tmp_path / "a.log").write_text("a1\na2\n")
    (tmp_path / "b.log").write_text("b1\n")
    result = vrclog("parse", "--plugin", echo, tmp_path / "a.log", "-", tmp_path / "b.log",
                    stdin=b"s1\ns2")
    assert result.returncode == 0, result.stderr
    assert lines_of(result.stdout) == ["a1", "a2", "s1", "s2", "b1"]
    assert lines_of(vrclog("parse", "--plugin", echo, stdin=b"only\n").stdout) == ["only"]


def test_awkward_input_bytes(tmp_path: Path, echo: Path) -> None:
    data = b"\xef\xbb\xbffirst\r\nbad \xff\xfe utf8\n\nquote \" back \\ tab\t\r\nlast without newline"
    (tmp_path / "x.log").write_bytes(data)
    (tmp_path / "empty.log").write_bytes(b"")
    result = vrclog("parse", "--plugin", echo, tmp_path / "empty.log", tmp_path / "x.log")
    assert result.returncode == 0, result.stderr
    assert lines_of(result.stdout) == [
        "first", "bad \ufffd\ufffd utf8", "", 'quote " back \\ tab\t', "last without newline"]


def test_too_large_line_is_reported_and_others_processed(tmp_path: Path, echo: Path) -> None:
    (tmp_path / "x.log").write_text("before\n" + "x" * 9000 + "\nafter\n")
    result = vrclog("parse", "--plugin", echo, tmp_path / "x.log")
    assert result.returncode == 4
    assert lines_of(result.stdout) == ["before", "after"]
    assert f"{tmp_path / 'x.log'}:2: input_too_large: echo.wat: " in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_missing_and_directory_inputs_among_good_ones(tmp_path: Path, echo: Path) -> None:
    (tmp_path / "a.log").write_text("a1\n")
    (tmp_path / "b.log").write_text("b1\n")
    result = vrclog("parse", "--plugin", echo, tmp_path / "a.log", tmp_path / "missing.log",
                    tmp_path, tmp_path / "b.log")
    assert result.returncode == 2
    assert lines_of(result.stdout) == ["a1", "b1"]
    assert "missing.log: cannot open" in result.stderr and "is a directory" in result.stderr


@pytest.mark.parametrize(("args", "stdin", "code"), [
    ((), b"fine\n", 0),
    (("--fail-on", "echo"), b"fine\n", 1),
    (("--fail-on", "any"), b"fine\n", 1),
    (("--fail-on", "other"), b"fine\n", 0),
    (("--timeout", "50 parsecs"), b"", 2),
    (("--jobs", "0"), b"", 2),
    (("--plugin", "/dev/null/nope.wasm"), b"", 3),
    ((), b"fine\nTrap\n", 4),
    (("--timeout", "20ms"), b"Loop\nfine\n", 5),
    (("--timeout", "20ms", "--fail-on", "echo"), b"Trap\nLoop\nfine\n", 5),  # largest wins
    (("--fail-on", "echo"), b"fine\nTrap\n", 4),
])
def test_exit_codes(echo: Path, args: tuple[str, ...], stdin: bytes, code: int) -> None:
    result = vrclog("parse", "--plugin", echo, *args, stdin=stdin)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr


def test_missing_input_and_timeout_precedence(tmp_path: Path, echo: Path) -> None:
    (tmp_path / "a.log").write_text("Loop\nok\n")
    result = vrclog("parse", "--plugin", echo, "--timeout", "20ms", tmp_path / "nope", tmp_path / "a.log")
    assert result.returncode == 5
    assert lines_of(result.stdout) == ["ok"]


def test_diagnostics_name_source_line_kind(tmp_path: Path, echo: Path) -> None:
    (tmp_path / "a.log").write_text("ok\nTrap here\nLoop\nok\n")
    result = vrclog("parse", "--plugin", echo, "--timeout", "20ms", tmp_path / "a.log")
    assert result.returncode == 5
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'a.log'}:2: runtime_error: echo.wat: wasm `unreachable` instruction executed",
        f"{tmp_path / 'a.log'}:3: timeout: echo.wat: plugin ran longer than the 20 ms budget"]
    quiet = vrclog("parse", "--plugin", echo, "--timeout", "20ms", "--quiet", tmp_path / "a.log")
    assert quiet.returncode == 5 and quiet.stderr == ""


def test_plugin_error_shows_code(tmp_path: Path) -> None:
    text = '{"ok":false,"error":"bad round","code":"E42"}'
    escaped = "".join(f"\\{b:02x}" for b in text.encode())
    from .conftest import wat_plugin
    wat = wat_plugin(f"(i64.or (i64.shl (i64.const {len(text)}) (i64.const 32)) (i64.const 0x21000))",
                     extra=f'(data (i32.const 0x21000) "{escaped}")')
    (tmp_path / "err.wat").write_text(wat)
    result = vrclog("parse", "--plugin", tmp_path / "err.wat", stdin=b"x\n")
    assert result.returncode == 4
    assert result.stderr.strip() == "<stdin>:1: plugin_error (E42): err.wat: bad round"


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_fail_fast_stops_after_earlier_events(echo: Path, workers: str) -> None:
    result = vrclog("parse", "--plugin", echo, "--fail-fast", "--jobs", "4", "--workers", workers,
                    stdin=b"one\ntwo\nTrap\nthree\nTrap again\n")
    assert result.returncode == 4
    assert lines_of(result.stdout) == ["one", "two"]
    assert len(result.stderr.splitlines()) == 1 and ":3: runtime_error" in result.stderr


def test_load_error_names_plugin(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\x01\0\0\0")
    result = vrclog("parse", "--plugin", bad, stdin=b"x\n")
    assert result.returncode == 3
    assert str(bad) in result.stderr and "missing export memory" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_order_and_no_spurious_timeouts_with_many_jobs(tmp_path: Path, workers: str) -> None:
    log = tmp_path / "big.log"
    with log.open("w") as f:
        for i in range(100_000):
            f.write(f"{PREFIX}[VRPoker] Round {i} begins\n")
    result = vrclog("parse", "--plugin", SAMPLES / "vrpoker.wasm", "--jobs", "8", "--workers", workers, log,
                    timeout=300)
    assert result.returncode == 0, result.stderr[:500]
    rounds = [e["data"]["round"] for e in events(result.stdout)]  # type: ignore[index]
    assert rounds == [str(i) for i in range(100_000)]


#: --jobs 1 runs the lines on the main thread itself; --jobs 2 on worker threads or processes.
POOLS = [("1", "threads"), ("2", "threads"), ("2", "processes")]


@pytest.mark.parametrize(("jobs", "workers"), POOLS)
def test_output_streams_before_eof(echo: Path, jobs: str, workers: str) -> None:
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(echo), "--jobs", jobs,
                             "--workers", workers],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        for word in ("first", "second"):
            proc.stdin.write(f"{word}\n".encode())
            proc.stdin.flush()
            assert sel.select(timeout=10), f"no output for {word!r} while stdin is open"
            assert json.loads(proc.stdout.readline())["data"]["line"] == word
    finally:
        proc.stdin.close()
        proc.wait(10)
    assert proc.returncode == 0


SPIN_INPUT = b"one\ntwo\nLoop forever\nthree\n"


def _spin_then_signal(echo: Path, sig: int, jobs: str, workers: str, log: Path | None = None,
                      ) -> tuple[subprocess.Popen[bytes], float, bytes, bytes]:
    args = [VRCLOG_BIN, "parse", "--plugin", str(echo), "--timeout", "60s", "--jobs", jobs,
            "--workers", workers]
    if log is not None:
        # Nothing shows that a run reading a file has reached line 3 (lines 1-2 are written
        # with it, when --jobs 1 spins on the main thread): wait three times what the same
        # run takes to its end without line 3, measured now, on this machine, at this load.
        log.write_bytes(SPIN_INPUT.split(b"Loop")[0])
        started = time.monotonic()
        subprocess.run([*args, str(log)], capture_output=True, timeout=120, check=True)
        startup = time.monotonic() - started
        log.write_bytes(SPIN_INPUT)
        args.append(str(log))
    # A temporary folder of its own: multiprocessing's pymp-* folders must all be gone after.
    tmp = Path(tempfile.mkdtemp(prefix="vrclog-signal-"))
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "TMPDIR": str(tmp)})
    assert proc.stdin is not None and proc.stdout is not None
    head = b""
    if log is None:  # a line at a time: each is written as soon as it is done (stdin idle)
        for line in SPIN_INPUT.splitlines(keepends=True)[:2]:
            proc.stdin.write(line)
            proc.stdin.flush()
            head += stdout_lines(proc, 1)
        proc.stdin.write(SPIN_INPUT.split(b"two\n")[1])
        proc.stdin.flush()
        time.sleep(0.5)  # line 3 begins to spin (not yet begun, the run stops all the same)
    else:
        time.sleep(max(1.0, 3 * startup))
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    elapsed = time.monotonic() - sent
    assert list(tmp.iterdir()) == []
    tmp.rmdir()
    return proc, elapsed, head + out, err


@pytest.mark.posix
@pytest.mark.parametrize(("jobs", "workers"), POOLS)
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                           (getattr(signal, "SIGHUP", 1), 129)])
@pytest.mark.parametrize("from_file", [False, True], ids=["stdin", "file"])
def test_signal_interrupts_spinning_plugin(echo: Path, tmp_path: Path, sig: int, code: int, jobs: str,
                                          workers: str, from_file: bool) -> None:
    proc, elapsed, out, err = _spin_then_signal(echo, sig, jobs, workers,
                                                tmp_path / "spin.log" if from_file else None)
    assert proc.returncode == code
    assert elapsed < 2.0
    assert lines_of(out.decode()) == ["one", "two"]
    assert out.endswith(b"\n")  # no half-written JSON line
    assert err.decode().count("\n") == 1 and "after 2 lines" in err.decode()
    assert b"Traceback" not in err


def test_ctrl_break_is_a_clean_stop_on_windows(echo: Path) -> None:
    """Windows has no SIGTERM to send: Ctrl-Break is its clean stop, exit 143 (a closed
    console window is forwarded to the same stop by errors.forward_console_close)."""
    if sys.platform != "win32":
        pytest.skip("Windows console events")
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(echo), "--timeout", "60s"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)
    assert proc.stdin is not None
    head = b""
    for line in SPIN_INPUT.splitlines(keepends=True)[:2]:  # each written once done (stdin idle)
        proc.stdin.write(line)
        proc.stdin.flush()
        head += stdout_lines(proc, 1)
    proc.stdin.write(SPIN_INPUT.split(b"two\n")[1])
    proc.stdin.flush()
    proc.send_signal(signal.CTRL_BREAK_EVENT)
    out, err = proc.communicate(timeout=30)
    out = head + out
    assert proc.returncode == 143, err
    assert lines_of(out.decode()) == ["one", "two"]
    assert "terminated after 2 lines" in err.decode()


@pytest.mark.parametrize("fmt", ["jsonl", "pretty"])
def test_closed_stdout_ends_quietly(tmp_path: Path, fmt: str) -> None:
    log = tmp_path / "big.log"
    log.write_text((PREFIX + "[Behaviour] OnPlayerJoined Bob\n") * 200_000)
    # pipefail: the exit code is vrclog's, not head's.
    result = subprocess.run(f"set -o pipefail; '{VRCLOG_BIN}' parse --format {fmt} '{log}' | head -1",
                            shell=True, executable="/bin/bash", capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    assert "Bob" in result.stdout
    if fmt == "jsonl":
        assert json.loads(result.stdout)["player_name"] == "Bob"
    assert result.stderr == ""


def test_pretty_format(tmp_path: Path) -> None:
    result = vrclog("parse", "--format", "pretty", SAMPLE_LOGS / "vrpoker.log")
    assert result.returncode == 0
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{SAMPLE_LOGS / 'vrpoker.log'}:1  2024-01-15T23:58:01")
    assert "world_join" in first and "\x1b[" not in result.stdout  # no colours when piped


def test_raw_adds_raw_line(echo: Path) -> None:
    event = events(vrclog("parse", "--plugin", echo, "--raw", stdin=b"hello\n").stdout)[0]
    assert list(event) == ["type", "raw_line", "data"] and event["raw_line"] == "hello"


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_verbose_shows_plugin_logs(tmp_path: Path, workers: str) -> None:
    from .conftest import RETURN_NO_EVENTS, wat_plugin
    wat = wat_plugin(
        "(call $log (i32.const 1) (i32.const 0x22000) (i32.const 5))"
        "(call $log (i32.const 2) (i32.const 0x22000) (i32.const 5))" + RETURN_NO_EVENTS,
        imports='(import "env" "log" (func $log (param i32 i32 i32)))',
        extra='(data (i32.const 0x22000) "hello")')
    (tmp_path / "log.wat").write_text(wat)
    plain = vrclog("parse", "--plugin", tmp_path / "log.wat", "-j", "2", "--workers", workers, stdin=b"x\n")
    assert plain.stderr.splitlines() == ["log.wat: warn: hello"]
    verbose = vrclog("parse", "--verbose", "--plugin", tmp_path / "log.wat", "-j", "2", "--workers", workers,
                     stdin=b"x\n")
    assert verbose.stderr.splitlines() == ["log.wat: info: hello", "log.wat: warn: hello"]


def test_the_sample_vrchat_log_shows_every_built_in_type() -> None:
    from vrclog_cli import BUILTIN_TYPES

    result = vrclog("parse", SAMPLE_LOGS / "vrchat.log")
    assert result.returncode == 0, result.stderr
    found = events(result.stdout)
    assert {e["type"] for e in found} == {t.name for t in BUILTIN_TYPES}
    assert "Ghost" not in result.stdout  # a stack trace's continuation line gives nothing


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_quick_exit_keeps_every_byte_and_the_exit_code(tmp_path: Path, workers: str) -> None:
    """The command skips the interpreter's teardown (cli.entry) unless worker processes
    ran: output redirected to a file (block-buffered) is still all there, the exit code
    is the run's, and multiprocessing cleans up without a word on stderr."""
    log = tmp_path / "big.log"
    log.write_text("".join(f"{PREFIX}[VRPoker] Player P{i} wins with Flush\n" for i in range(3000)))
    out = tmp_path / "out.jsonl"
    cmd = (f"'{VRCLOG_BIN}' parse --plugin '{SAMPLES / 'vrpoker.wasm'}' --jobs 2 --workers {workers} "
           f"--fail-on vrpoker_winner '{log}' > '{out}'")
    result = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr  # --fail-on matched
    got = events(out.read_text())
    assert [e["data"]["player"] for e in got] == [f"P{i}" for i in range(3000)]  # type: ignore[index]
    assert "resource_tracker" not in result.stderr and "Exception ignored" not in result.stderr


def _shell(cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full: writes fail with ENOSPC")
@pytest.mark.parametrize("fmt", ["jsonl", "pretty"])
def test_output_that_cannot_be_written_is_one_error_and_exit_2(tmp_path: Path, fmt: str) -> None:
    """A full disk is the user's to fix, not a bug of vrclog's (70): one line naming the
    problem, the run stopped, exit 2."""
    log = tmp_path / "big.log"
    log.write_text("".join(f"{PREFIX}[VRPoker] Round {i} begins\n" for i in range(20_000)))
    result = _shell(f"'{VRCLOG_BIN}' parse --format {fmt} --plugin '{SAMPLES / 'vrpoker.wasm'}' "
                    f"'{log}' > /dev/full")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == ["vrclog: error: cannot write output: No space left on device"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full: writes fail with ENOSPC")
@pytest.mark.parametrize("args", ["types", "types --json", "--help", "plugin info {plugin}"])
def test_other_commands_report_output_that_cannot_be_written(args: str) -> None:
    args = args.format(plugin=SAMPLES / "vrpoker.wasm")
    result = _shell(f"'{VRCLOG_BIN}' {args} > /dev/full")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == ["vrclog: error: cannot write output: No space left on device"]


def test_closed_stdout_is_one_error_before_any_line(tmp_path: Path) -> None:
    result = _shell(f"'{VRCLOG_BIN}' parse '{SAMPLE_LOGS / 'vrpoker.log'}' >&-")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["vrclog: error: cannot write output: standard output is closed"]


def test_closed_stderr_still_writes_every_event() -> None:
    """2>&-: the messages have nowhere to go; the run and its exit code are as usual."""
    plugin, log = SAMPLES / "vrpoker.wasm", SAMPLE_LOGS / "vrpoker.log"
    expected = vrclog("parse", "--plugin", plugin, "--fail-on", "vrpoker_winner", log)
    result = _shell(f"'{VRCLOG_BIN}' parse --plugin '{plugin}' --fail-on vrpoker_winner '{log}' 2>&-")
    assert result.returncode == expected.returncode == 1
    assert result.stdout == expected.stdout and len(events(result.stdout)) == 10


def test_closed_stdin_is_an_input_that_cannot_be_read() -> None:
    """`<&-`: '-' is one input error (the other files are still read); without FILEs, a
    closed stdin has no data, so the VRChat log folder is looked for, as on a terminal."""
    log = SAMPLE_LOGS / "vrpoker.log"
    result = _shell(f"'{VRCLOG_BIN}' parse '{log}' - <&-")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["vrclog: error: <stdin>: cannot read: standard input is closed"]
    assert len(events(result.stdout)) == 8  # every event of vrpoker.log
    result = _shell(f"HOME='{log.parent / 'nowhere'}' '{VRCLOG_BIN}' parse <&-")
    assert result.returncode == 2 and result.stderr.startswith("vrclog: error: no input: give FILEs")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full: writes fail with ENOSPC")
def test_a_report_that_cannot_be_written_is_named_and_the_others_still_written(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    args = (f"'{VRCLOG_BIN}' parse {{plugin}} --report junit=/dev/full --report markdown='{summary}' "
            f"'{SAMPLE_LOGS / 'vrpoker.log'}'")
    result = _shell(args.format(plugin=""))
    assert result.returncode == 2 and len(events(result.stdout)) == 8
    assert result.stderr.splitlines() == [
        "vrclog: error: --report junit=/dev/full: cannot write: No space left on device"]
    assert "22 lines from 1 file, exit code 0" in summary.read_text()  # (the run itself was clean)
    trapped = _shell(args.format(plugin=f"--plugin '{SAMPLES / 'trap.wasm'}'"))
    assert trapped.returncode == 4  # the run's own, larger code wins
    assert trapped.stderr.splitlines()[-1].startswith("vrclog: error: --report junit=/dev/full")


def test_python_dash_m_is_the_same_command() -> None:
    """`python -m vrclog_cli`, where the script is not on PATH: same output and exit
    code, with worker processes too (they import __main__ as __mp_main__: guarded)."""
    plugin, log = SAMPLES / "vrpoker.wasm", SAMPLE_LOGS / "vrpoker.log"
    args = ["parse", "--plugin", str(plugin), "--fail-on", "vrpoker_winner", "--jobs", "2",
            "--workers", "processes", str(log)]
    expected = vrclog(*args)
    result = subprocess.run([sys.executable, "-m", "vrclog_cli", *args], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == expected.returncode == 1
    assert result.stdout == expected.stdout and len(events(result.stdout)) == 10


@pytest.mark.posix
@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_a_stderr_whose_reader_left_never_changes_the_run(tmp_path: Path, workers: str) -> None:
    """`vrclog ... 2>&1 >events | head -1`: once head has its line, the other diagnostics
    are dropped; every event is still written and the exit code is the run's (it was 0
    after 2 of 2000 events)."""
    log = tmp_path / "t.log"
    log.write_text("".join(f"T trap {i}\n" if i % 2 else f"line {i}\n" for i in range(4000)))
    plugin = tmp_path / "echo.wat"
    plugin.write_text(echo_plugin_wat())
    out = tmp_path / "events.jsonl"
    result = subprocess.run(["bash", "-c", f"set -o pipefail; '{VRCLOG_BIN}' parse --plugin '{plugin}' "
                             f"--jobs 2 --workers {workers} '{log}' 2>&1 >'{out}' | head -1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 4, result.stderr
    assert result.stdout.startswith(f"{log}:2: runtime_error: ") and result.stdout.count("\n") == 1
    assert [e["data"]["line"] for e in events(out.read_text())] == [  # type: ignore[index]
        f"line {i}" for i in range(0, 4000, 2)]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full: writes fail with ENOSPC")
@pytest.mark.parametrize(("args", "code"), [
    ("--plugin {echo} {log}", 4),  # traps
    ("--plugin {echo} --timeout 5ms {spin}", 5),
    ("--plugin {tmp}/missing.wasm {log}", 3),
    ("--plugin {echo} {tmp}/missing.log", 2),
    ("--no-such-option", 2),
    ("--plugin {echo} --fail-on echo {log}", 4),
])
def test_a_full_stderr_never_changes_the_exit_code(tmp_path: Path, args: str, code: int) -> None:
    """`2>/dev/full`: the diagnostics are lost, the events and the exit code are not (every
    case exited 1 after the first message)."""
    log = tmp_path / "t.log"
    log.write_text("".join(f"T trap {i}\n" if i % 2 else f"line {i}\n" for i in range(200)))
    spin = tmp_path / "spin.log"
    spin.write_text("one\nLoop\ntwo\n")
    plugin = tmp_path / "echo.wat"
    plugin.write_text(echo_plugin_wat())
    argv = args.format(echo=plugin, log=log, spin=spin, tmp=tmp_path)
    quiet = _shell(f"'{VRCLOG_BIN}' parse {argv} 2>/dev/full")
    loud = _shell(f"'{VRCLOG_BIN}' parse {argv}")
    assert quiet.returncode == loud.returncode == code, loud.stderr
    assert quiet.stdout == loud.stdout


HOSTILE_TEXT = "\x1b]0;PWNED\x07 \x1b[2J \x9b31m \x7f"


def test_no_escape_sequence_from_a_log_or_a_plugin_reaches_the_terminal(tmp_path: Path) -> None:
    """Pretty output, diagnostics, --stats and plugin check show a log's or a plugin's
    controls escaped (\\x1b); JSON Lines keeps the text as it is."""
    from .conftest import answer

    log = tmp_path / "odd\x1b[2Jname.log"
    log.write_text(f"{PREFIX}[Behaviour] OnPlayerJoined {HOSTILE_TEXT} (usr_1)\nB bad\n", encoding="utf-8")
    error = json.dumps({"ok": False, "error": HOSTILE_TEXT, "code": "\x1b[31m"})
    segment, body = answer(error)
    plugin = tmp_path / "hostile.wat"
    plugin.write_text(echo_plugin_wat(body, extra=segment))
    pretty = subprocess.run([VRCLOG_BIN, "parse", "--builtin", "--plugin", str(plugin), "--format", "pretty",
                             "--stats", str(log)], capture_output=True, timeout=120)
    assert pretty.returncode == 4
    assert b"\x1b" not in pretty.stdout and b"\x1b" not in pretty.stderr
    assert b"\x9b" not in pretty.stdout and b"\\x9b" in pretty.stdout
    assert b"\\x1b]0;PWNED\\x07" in pretty.stdout and b"\\x1b[2J" in pretty.stderr
    jsonl = subprocess.run([VRCLOG_BIN, "parse", str(log)], capture_output=True, timeout=120)
    assert json.loads(jsonl.stdout)["player_name"] == HOSTILE_TEXT
    check = subprocess.run([VRCLOG_BIN, "plugin", "check", str(plugin), "--sample", str(log)],
                           capture_output=True, timeout=120)
    assert b"\\x1b]0;PWNED" in check.stdout and b"\x1b" not in check.stdout + check.stderr


@pytest.mark.posix
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", 1)])
def test_a_stop_signal_while_vrclog_starts_is_a_clean_stop_with_its_reports(tmp_path: Path, sig: int) -> None:
    """A signal that comes while the modules load (as the console script holds them,
    __main__) stops the run as any stop does: no traceback, the stop's exit code, the
    reports asked for, written and saying the run was partial.  Delivered at a known
    moment: by the process itself, between holding the signals and importing the CLI."""
    from .conftest import python

    report = tmp_path / "r.sarif"
    script = ("import os, sys\n"
              "from vrclog_cli.stops import hold_stop_signals\n"
              "hold_stop_signals()\n"
              f"os.kill(os.getpid(), {int(sig)})\n"
              "from vrclog_cli.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    code = {int(signal.SIGINT): 130, int(signal.SIGTERM): 143}.get(int(sig), 129)
    run = python(script, "parse", "--plugin", SAMPLES / "vrpoker.wasm", "--report", f"sarif={report}",
                 SAMPLE_LOGS / "vrpoker.log")
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert run.stderr.strip().endswith("after 0 lines (0 events written)")
    invocation = json.loads(report.read_text())["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False and invocation["exitCode"] == code
    other = python(script, "types")
    assert other.returncode == code and "Traceback" not in other.stderr and other.stdout == ""


@pytest.mark.posix
def test_two_signals_at_once_are_one_ctrl_c(tmp_path: Path, echo: Path) -> None:
    """`timeout -s INT` signals the process and its group: two SIGINTs a moment apart. They
    were taken for a second Ctrl-C (exit at once, one run in eight): the diagnostics, the
    summary and the report were lost."""
    report = tmp_path / "r.sarif"
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(echo), "--timeout", "60s",
                             "--jobs", "2", "--workers", "processes", "--report", f"sarif={report}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"T traps\none\n")
    proc.stdin.flush()
    head = stdout_lines(proc, 1)
    proc.stdin.write(b"Loop forever\n")
    proc.stdin.flush()
    time.sleep(0.3)  # line 3 begins to spin (not yet begun, the run stops all the same)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)  # handled apart (two at the same instant are one pending signal anyway)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert lines_of((head + out).decode()) == ["one"]
    assert err.decode().splitlines() == [
        "<stdin>:1: runtime_error: echo.wat: wasm `unreachable` instruction executed",
        "vrclog: interrupted after 2 lines (1 event written)"]
    assert json.loads(report.read_text())["runs"][0]["invocations"][0]["exitCode"] == 130


@pytest.mark.parametrize("fmt", ["jsonl", "pretty"])
def test_a_lone_surrogate_from_a_plugin_is_written_as_u_fffd(tmp_path: Path, fmt: str) -> None:
    """`"\\ud800"` without its pair is no character: it was written as '?' (JSON Lines) or
    stopped the run with an internal error (pretty)."""
    from .conftest import answer, wat_plugin

    segment, body = answer('{"ok":true,"events":[{"type":"x","data":{"k":"a\\ud800b\\udc00"}}]}')
    plugin = tmp_path / "p.wat"
    plugin.write_text(wat_plugin(body, extra=segment))
    result = vrclog("parse", "--plugin", plugin, "--format", fmt, stdin=b"line\n")
    assert result.returncode == 0, result.stderr
    if fmt == "jsonl":
        assert json.loads(result.stdout)["data"]["k"] == "a\ufffdb\ufffd"
    else:
        assert "k=a\ufffdb\ufffd" in result.stdout
