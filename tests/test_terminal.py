"""For people at a terminal: progress, --stats, filters, follow mode, gzip, discovery,
completion and environment variables - through the real process."""

from __future__ import annotations

import gzip
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import SAMPLE_LOGS, VRCLOG_BIN, echo_plugin_wat, interrupt_after, stdout_lines, vrclog

pty = pytest.importorskip("pty")  # a pseudo-terminal, and SIGINT sent to processes: POSIX
pytestmark = pytest.mark.posix

PREFIX = "2024.01.15 23:59:59 Log        -  "


def events(out: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in out.split("\n") if x]


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("echo") / "echo.wat"
    path.write_text(echo_plugin_wat(triggers=False))
    return path


def read_pty(master: int, until: float) -> bytes:
    data = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def big_log(path: Path, lines: int = 60_000) -> Path:
    path.write_text((PREFIX + "[Behaviour] OnPlayerJoined Bob (usr_1)\n") * lines)
    return path


def test_progress_shown_on_a_terminal(tmp_path: Path, echo: Path) -> None:
    log = big_log(tmp_path / "big.log")
    master, slave = pty.openpty()
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(echo), "--jobs", "1", str(log)],
                            stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    screen = read_pty(master, time.monotonic() + 60).decode(errors="replace")
    proc.wait(60)
    os.close(master)
    assert proc.returncode == 0
    assert "parsing" in screen and "lines/s" in screen and "events" in screen and "errors" in screen


def test_types_on_a_terminal_is_a_table() -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([VRCLOG_BIN, "types"], stdout=slave, stderr=slave, stdin=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "200"})
    os.close(slave)
    screen = read_pty(master, time.monotonic() + 30).decode(errors="replace")
    proc.wait(30)
    os.close(master)
    assert proc.returncode == 0
    screen = re.sub(r"\x1b\[[0-9;]*m", "", screen)  # rich's styles
    assert "┃ type" in screen and "│ world_join " in screen


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux draws the terminal")
def test_pretty_events_and_the_progress_bar_share_the_terminal(tmp_path: Path) -> None:
    """On a real terminal (tmux), events scroll above the bar, the bar counts, and at the
    end it is gone: every event line is whole and in order (the bar was never cleared and
    events overprinted it, and it stayed at 0 lines)."""
    lines = 60_000
    log = tmp_path / "big.log"
    log.write_text("".join(f"{PREFIX}[Behaviour] OnPlayerJoined P{i} (usr_1)\n" for i in range(lines)))
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g history-limit 200000\n")
    tmux = ["tmux", "-L", f"vrclog-{os.getpid()}", "-f", str(conf)]
    command = f"'{VRCLOG_BIN}' parse --format pretty --progress '{log}'; echo DONE $?; sleep 600"
    subprocess.run([*tmux, "new-session", "-d", "-x", "160", "-y", "24", command], check=True, timeout=30)
    try:
        bars: list[str] = []
        deadline = time.monotonic() + 120
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-J"], capture_output=True, text=True,
                                    timeout=30).stdout
            shown = [line for line in screen.splitlines() if line.strip()]
            if shown and shown[-1].startswith("DONE"):
                break
            if shown and shown[-1].startswith("parsing"):
                bars.append(shown[-1])
            time.sleep(0.2)
        history = subprocess.run([*tmux, "capture-pane", "-p", "-J", "-S", "-"], capture_output=True,
                                 text=True, timeout=30).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=30)
    assert "DONE 0" in screen
    # A capture can land while tmux is still drawing a row ("... 1,234 line" under load):
    # only whole bars are read.
    whole = (re.search(r"([\d,]+) lines ", bar) for bar in bars)
    counted = [int(found[1].replace(",", "")) for found in whole if found]
    assert counted and max(counted) > 0, bars  # the bar was at the bottom, and it counted
    rows = [line for line in history.splitlines() if line.strip() and not line.startswith("DONE")]
    assert not any("parsing" in row for row in rows)  # cleared, never overprinted
    assert [row.split("  ")[0] for row in rows] == [f"{log}:{n}" for n in range(1, lines + 1)]


def test_no_progress_when_piped_or_disabled(tmp_path: Path, echo: Path) -> None:
    log = big_log(tmp_path / "big.log", 5000)
    assert vrclog("parse", "--plugin", echo, log).stderr == ""
    master, slave = pty.openpty()
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(echo), "--no-progress", str(log)],
                            stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    screen = read_pty(master, time.monotonic() + 30)
    proc.wait(30)
    os.close(master)
    assert b"lines/s" not in screen


def test_progress_never_for_stdin(echo: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(echo)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    assert proc.stdin is not None
    proc.stdin.write(b"x\n" * 20000)
    proc.stdin.close()
    screen = read_pty(master, time.monotonic() + 30)
    proc.wait(30)
    os.close(master)
    assert b"lines/s" not in screen


def test_stats_table(echo: Path) -> None:
    result = vrclog("parse", "--stats", SAMPLE_LOGS / "vrpoker.log")
    assert result.returncode == 0
    text = result.stderr
    assert "vrclog summary" in text
    for row in ("lines", "events", "player_join", "errors", "lines/s", "wall time", "builtin"):
        assert row in text
    assert "│ lines         │      22 │" in text.replace("┃", "│")


def test_stats_after_ctrl_c(tmp_path: Path) -> None:
    slow = Path(__file__).parent.parent / "sample_plugins" / "slow.wasm"
    code, err = interrupt_after(["parse", "--stats", "--plugin", slow, "--timeout", "60s"], b"x\n", 0.8)
    assert code == 130
    assert b"vrclog summary (interrupted)" in err and b"slow.wasm" in err


def test_type_filters() -> None:
    only = vrclog("parse", "--include-types", "player_join", "--include-types", "player_left,",
                  SAMPLE_LOGS / "vrpoker.log")
    assert {e["type"] for e in events(only.stdout)} == {"player_join", "player_left"}
    assert len(events(only.stdout)) == 5
    without = vrclog("parse", "--exclude-types", "world_join", SAMPLE_LOGS / "vrpoker.log")
    assert "world_join" not in without.stdout and len(events(without.stdout)) == 5
    overlap = vrclog("parse", "--include-types", "a,b", "--exclude-types", "b", SAMPLE_LOGS / "vrpoker.log")
    assert overlap.returncode == 2 and "both included and excluded: b" in overlap.stderr


def test_time_filters(echo: Path) -> None:
    got = vrclog("parse", "--since", "2024-01-15T23:59:00", "--until", "2024-01-16T00:00:00",
                 SAMPLE_LOGS / "vrpoker.log")
    assert [e.get("player_name") or e["world_name"] for e in events(got.stdout)] == ["Bob", "VRPoker Lounge"]
    # Events without a timestamp pass, unless --strict-time.
    loose = vrclog("parse", "--plugin", echo, "--since", "2024-01-01T00:00:00Z", stdin=b"hello\n")
    assert len(events(loose.stdout)) == 1
    strict = vrclog("parse", "--plugin", echo, "--since", "2024-01-01T00:00:00Z", "--strict-time",
                    stdin=b"hello\n")
    assert events(strict.stdout) == []
    bad = vrclog("parse", "--until", "next tuesday", stdin=b"")
    assert bad.returncode == 2 and "RFC 3339" in bad.stderr


def test_filters_act_before_fail_on() -> None:
    kept = vrclog("parse", "--fail-on", "world_join", SAMPLE_LOGS / "vrpoker.log")
    assert kept.returncode == 1
    dropped = vrclog("parse", "--fail-on", "world_join", "--exclude-types", "world_join",
                     SAMPLE_LOGS / "vrpoker.log")
    assert dropped.returncode == 0


def test_gzip_detected_by_content(tmp_path: Path, echo: Path) -> None:
    data = b"".join(b"line %d\n" % i for i in range(5000))
    (tmp_path / "plain-name.log").write_bytes(gzip.compress(data[:20000]) + gzip.compress(data[20000:]))
    result = vrclog("parse", "--plugin", echo, tmp_path / "plain-name.log")
    assert result.returncode == 0
    assert [e["data"]["line"] for e in events(result.stdout)] == [f"line {i}" for i in range(5000)]  # type: ignore[index]
    piped = vrclog("parse", "--plugin", echo, stdin=gzip.compress(b"from stdin\n"))
    assert [e["data"]["line"] for e in events(piped.stdout)] == ["from stdin"]  # type: ignore[index]
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    bad = vrclog("parse", "--plugin", echo, tmp_path / "bad.gz")
    assert bad.returncode == 2 and "corrupt gzip data" in bad.stderr


def test_damaged_gzip_gives_the_lines_before_it_then_exit_2_and_a_report(tmp_path: Path, echo: Path) -> None:
    """A truncated gzip, a bad CRC and a bad length: the events of the whole lines before the
    damage, one error naming the file and the damage, exit 2, and a report naming it too."""
    data = b"".join(b"line %d\n" % i for i in range(5000))
    packed = gzip.compress(data)
    cases = {"cut.gz": (packed[:len(packed) // 2], "ended inside a member at byte"),
             "crc.gz": (packed[:-8] + bytes([packed[-8] ^ 1]) + packed[-7:], "CRC-32"),
             "length.gz": (packed[:-1] + bytes([packed[-1] ^ 1]), "length in the trailer")}
    for name, (damaged, words) in cases.items():
        log = tmp_path / name
        log.write_bytes(damaged)
        report = tmp_path / f"{name}.xml"
        result = vrclog("parse", "--plugin", echo, "--report", f"junit={report}", log)
        assert result.returncode == 2, (name, result.stderr)
        got = [e["data"]["line"] for e in events(result.stdout)]  # type: ignore[index]
        if name == "cut.gz":
            assert 0 < len(got) < 5000 and got == [f"line {i}" for i in range(len(got))]
        else:
            assert got == [f"line {i}" for i in range(5000)]
        error = result.stderr.strip()
        assert error.startswith(f"vrclog: error: {log}: corrupt gzip data: ") and words in error
        assert len(error.splitlines()) == 1
        failure = ET.parse(report).getroot().find("./testsuite/testcase/failure")
        assert failure is not None and failure.get("type") == "input_error"
        assert words in (failure.get("message") or "")


class Follower:
    """A `vrclog parse --follow` process and a way to read its events with a deadline."""

    def __init__(self, *args: str | Path) -> None:
        self.proc = subprocess.Popen([VRCLOG_BIN, "parse", "--follow", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buffer = b""

    def next_lines(self, count: int, timeout: float = 10) -> list[bytes]:
        """Up to ``count`` more lines of its stdout, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        got: list[bytes] = []
        assert self.proc.stdout is not None
        while time.monotonic() < deadline and len(got) < count:
            select.select([self.proc.stdout], [], [], 0.1)
            chunk = self.proc.stdout.read()
            if chunk:
                self.buffer += chunk
            while b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                got.append(raw)
        return got

    def expect(self, lines: list[str], timeout: float = 10) -> None:
        assert [json.loads(raw)["data"]["line"] for raw in self.next_lines(len(lines), timeout)] == lines

    def expect_numbers(self, numbers: list[int], timeout: float = 10) -> None:
        """The line numbers of the next events (run with --format pretty: ``FILE:N  …``)."""
        got = self.next_lines(len(numbers), timeout)
        assert [int(raw.split()[0].rsplit(b":", 1)[1]) for raw in got] == numbers

    def stop(self) -> tuple[int, bytes]:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, err


def test_follow_appends_truncation_and_replacement(tmp_path: Path, echo: Path) -> None:
    log = tmp_path / "live.log"
    log.write_text("first\n")
    follower = Follower("--plugin", echo, log)
    try:
        follower.expect(["first"])
        with log.open("a") as f:
            f.write("second\npartial")
            f.flush()
            follower.expect(["second"])
            f.write(" line done\n")
        follower.expect(["partial line done"])
        log.write_text("after truncation\n")  # truncated and rewritten in place
        follower.expect(["after truncation"])
        replacement = tmp_path / "new.log"
        replacement.write_text("rotated file\n")
        replacement.replace(log)  # the path now names another file
        follower.expect(["rotated file"])
    finally:
        code, err = follower.stop()
    assert code == 130 and b"Traceback" not in err


def test_follow_numbers_a_truncated_file_from_1_as_a_rotated_one(tmp_path: Path, echo: Path) -> None:
    """Both are a new file's content: its first line is line 1 again."""
    log = tmp_path / "live.log"
    log.write_text("one\ntwo\nthree\n")
    follower = Follower("--format", "pretty", "--plugin", echo, log)
    try:
        follower.expect_numbers([1, 2, 3])
        log.write_text("new one\nnew two\n")  # truncated and rewritten in place
        follower.expect_numbers([1, 2])
        with log.open("a") as f:
            f.write("appended\n")
        follower.expect_numbers([3])
        replacement = tmp_path / "next.log"
        replacement.write_text("rotated\n")
        replacement.replace(log)
        follower.expect_numbers([1])
    finally:
        code, err = follower.stop()
    assert code == 130 and b"Traceback" not in err


def test_follow_directory_picks_up_newer_log(tmp_path: Path, echo: Path) -> None:
    first = tmp_path / "output_log_2024-01-15_10-00-00.txt"
    first.write_text("old session\n")
    follower = Follower("--plugin", echo, "--log-dir", tmp_path)
    try:
        follower.expect(["old session"])
        time.sleep(0.05)
        newer = tmp_path / "output_log_2024-01-15_12-00-00.txt"
        newer.write_text("new session\n")
        follower.expect(["new session"])
        with newer.open("a") as f:
            f.write("more\n")
        follower.expect(["more"])
    finally:
        code, _ = follower.stop()
    assert code == 130


def test_following_a_folder_reads_every_log_to_its_end_however_fast_they_come(
        tmp_path: Path, echo: Path) -> None:
    """Two logs made within a moment of each other, while a third is followed: each is read
    whole, in order (the middle one's 1000 lines were lost: the follower jumped to the newest)."""
    first = tmp_path / "output_log_2024-01-15_10-00-00.txt"
    first.write_text("first session\n")
    follower = Follower("--plugin", echo, "--log-dir", tmp_path)
    try:
        follower.expect(["first session"])
        now = time.time()
        names = ["output_log_2024-01-15_11-00-00.txt", "output_log_2024-01-15_12-00-00.txt"]
        for n, name in enumerate(names):
            log = tmp_path / name
            log.write_text("".join(f"{name[11:30]} {i}\n" for i in range(1000)))
            os.utime(log, (now + n, now + n))  # made in that order, within a moment
        follower.expect([f"2024-01-15_{h}-00-00 {i}" for h in ("11", "12") for i in range(1000)], timeout=30)
    finally:
        code, _ = follower.stop()
    assert code == 130


def test_tail_alias(tmp_path: Path, echo: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("via tail\n")
    proc = subprocess.Popen([VRCLOG_BIN, "tail", "--plugin", str(echo), str(log)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out = stdout_lines(proc, 1)
    proc.send_signal(signal.SIGINT)
    out += proc.communicate(timeout=10)[0]
    assert proc.returncode == 130 and json.loads(out)["data"]["line"] == "via tail"


def test_log_dir_reads_logs_oldest_first(tmp_path: Path, echo: Path) -> None:
    for name, text, age in (("output_log_b.txt", "second", 100), ("output_log_a.txt", "third", 10),
                            ("output_log_c.txt", "first", 1000), ("other.txt", "never", 0)):
        path = tmp_path / name
        path.write_text(text + "\n")
        os.utime(path, (time.time() - age, time.time() - age))
    result = vrclog("parse", "--plugin", echo, "--log-dir", tmp_path)
    assert [e["data"]["line"] for e in events(result.stdout)] == ["first", "second", "third"]  # type: ignore[index]
    empty = tmp_path / "empty"
    empty.mkdir()
    none = vrclog("parse", "--log-dir", empty)
    assert none.returncode == 2 and "no VRChat logs" in none.stderr


def test_default_vrchat_folder_found_under_proton(tmp_path: Path) -> None:
    folder = (tmp_path / ".steam/steam/steamapps/compatdata/438100/pfx/drive_c/users/steamuser"
              / "AppData/LocalLow/VRChat/VRChat")
    folder.mkdir(parents=True)
    (folder / "output_log_2024-01-15_23-58-00.txt").write_bytes((SAMPLE_LOGS / "vrpoker.log").read_bytes())
    master, slave = pty.openpty()  # stdin is a terminal: no piped data
    proc = subprocess.run([VRCLOG_BIN, "parse"], stdin=slave, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "HOME": str(tmp_path)})
    os.close(slave)
    os.close(master)
    assert proc.returncode == 0, proc.stderr
    assert len(events(proc.stdout)) == 8  # every event of vrpoker.log


def test_no_vrchat_folder_is_a_clear_error(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.run([VRCLOG_BIN, "parse"], stdin=slave, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "HOME": str(tmp_path)})
    os.close(slave)
    os.close(master)
    assert proc.returncode == 2
    assert "no input: give FILEs, pipe a log into stdin, or use --log-dir" in proc.stderr


def test_follow_of_a_pipe_says_follow_needs_a_file(tmp_path: Path) -> None:
    """`cat small.log | vrclog parse -f` had stdin piped: the problem is --follow, not a missing input."""
    proc = subprocess.run([VRCLOG_BIN, "parse", "-f"], input=(SAMPLE_LOGS / "vrpoker.log").read_bytes(),
                          capture_output=True, timeout=30, env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode().startswith("vrclog: error: --follow needs a FILE or folder: it cannot "
                                           "follow stdin")


def test_completion_scripts() -> None:
    for shell, marker in (("bash", "_VRCLOG_COMPLETE"), ("zsh", "compdef"), ("fish", "complete")):
        result = vrclog("completion", shell)
        assert result.returncode == 0 and marker in result.stdout


def test_environment_variables() -> None:
    pretty = vrclog("parse", SAMPLE_LOGS / "vrpoker.log", env={"VRCLOG_FORMAT": "pretty"})
    assert pretty.stdout.startswith(f"{SAMPLE_LOGS / 'vrpoker.log'}:1  ")
    bad = vrclog("parse", stdin=b"", env={"VRCLOG_TIMEOUT": "soon"})
    assert bad.returncode == 2 and "VRCLOG_TIMEOUT" in bad.stderr
    assert "env var: VRCLOG_JOBS" in " ".join(vrclog("parse", "--help").stdout.split())


def test_follow_rewrite_larger_than_the_old_size_starts_over(tmp_path: Path, echo: Path) -> None:
    """Truncated and rewritten past the read offset between two polls: no piece of a line
    (the size alone says nothing happened; the bytes before the offset changed)."""
    log = tmp_path / "live.log"
    log.write_text("short one\n")
    follower = Follower("--plugin", echo, log)
    try:
        follower.expect(["short one"])
        for round_ in range(3):
            log.write_text(f"round {round_}: this line is longer than the old file was\nand another\n")
            follower.expect([f"round {round_}: this line is longer than the old file was", "and another"])
        with log.open("a") as f:  # appending after a rewrite still works
            f.write("appended\n")
        follower.expect(["appended"])
    finally:
        code, err = follower.stop()
    assert code == 130 and b"Traceback" not in err
