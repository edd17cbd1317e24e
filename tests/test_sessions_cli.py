"""`vrclog sessions` as a person runs it: real logs, files, pipes, a database and signals."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE_LOGS, VRCLOG_BIN, stdout_lines, vrclog

SESSIONS = SAMPLE_LOGS / "sessions"
UTC = {"TZ": "UTC0"}  # the expected times below are the logs' clocks read as UTC


def visits_of(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def worlds(done: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    return [(v["world_name"], v["start"][:16]) for v in visits_of(done)]


ALL = [("Paper Crane's Home", "2025-11-28T21:40"), ("The Great Pug", "2025-11-28T22:05"),
       ("Midnight Rooftop", "2025-11-29T00:41"), ("Moon Garden ☾", "2025-11-29T20:03"),
       ("Harbour Tea House", "2025-11-29T20:50"), ("Harbour Tea House", "2025-11-30T19:00"),
       ("Harbour Tea House", "2025-11-30T19:21")]


def test_files_a_folder_and_stdin_give_the_same_visits(tmp_path: Path) -> None:
    logs = sorted(SESSIONS.glob("output_log_*.txt"))
    by_folder = vrclog("sessions", "--log-dir", SESSIONS, env=UTC)
    by_files = vrclog("sessions", *logs, env=UTC)
    assert by_folder.returncode == by_files.returncode == 0, by_folder.stderr
    assert worlds(by_folder) == worlds(by_files) == ALL
    # One stream on stdin: VRChat's login line tells where each log began.
    piped = vrclog("sessions", stdin=b"".join(p.read_bytes() for p in logs), env=UTC)
    assert worlds(piped) == ALL
    assert [v["end_reason"] for v in visits_of(piped)] == [v["end_reason"] for v in visits_of(by_folder)]


def test_since_and_until_keep_the_visits_that_overlap_them() -> None:
    """A visit that began before --since is kept whole (its people, its start)."""
    done = vrclog("sessions", "--log-dir", SESSIONS, "--since", "2025-11-28T23:00:00Z",
                  "--until", "2025-11-29T20:10:00Z", env=UTC)
    assert done.returncode == 0, done.stderr
    assert worlds(done) == ALL[1:4]
    assert visits_of(done)[0]["duration_s"] == 9300


def test_type_filters_choose_the_events_folded() -> None:
    done = vrclog("sessions", "--log-dir", SESSIONS, "--exclude-types", "player_join,player_left", env=UTC)
    assert worlds(done) == ALL
    assert all(v["players"] == [] for v in visits_of(done))


def test_a_database_is_filled_once_then_read(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    first = vrclog("sessions", "--log-dir", SESSIONS, "--db", db, env=UTC)
    again = vrclog("sessions", "--log-dir", SESSIONS, "--db", db, env=UTC)  # nothing new to read
    only_db = vrclog("sessions", "--db", db, env=UTC)
    assert first.returncode == again.returncode == only_db.returncode == 0, first.stderr + again.stderr
    assert worlds(first) == worlds(again) == worlds(only_db) == ALL
    assert visits_of(only_db) == visits_of(vrclog("sessions", "--log-dir", SESSIONS, env=UTC))
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
    parsed = vrclog("parse", "--log-dir", SESSIONS)
    assert count == len(parsed.stdout.splitlines())  # each event once


def test_a_database_that_is_not_vrclogs_is_one_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    done = vrclog("sessions", "--db", db)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"vrclog: error: {db}: not a vrclog database "
                                                "(written by `vrclog parse --db`)"]


def test_state_is_refused_with_the_database_as_the_way(tmp_path: Path) -> None:
    done = vrclog("sessions", "--log-dir", SESSIONS, "--state", tmp_path / "s.json")
    assert done.returncode == 2 and "--db PATH" in done.stderr and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "s.json").exists()


def test_output_naming_an_input_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    log = tmp_path / "output_log_2025-11-28_21-40-12.txt"
    shutil.copy(SESSIONS / log.name, log)
    before = log.read_bytes()
    done = vrclog("sessions", log, "--format", "html", "-o", log)
    assert done.returncode == 2 and "--output: is the input" in done.stderr, done.stderr
    assert log.read_bytes() == before


def test_html_and_jsonl_files_are_written_whole(tmp_path: Path) -> None:
    page, lines = tmp_path / "visits.html", tmp_path / "visits.jsonl"
    assert vrclog("sessions", "--log-dir", SESSIONS, "--format", "html", "-o", page).returncode == 0
    assert vrclog("sessions", "--log-dir", SESSIONS, "-o", lines, env=UTC).returncode == 0
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "Harbour Tea House" in text
    assert "http-equiv=\"Content-Security-Policy\"" in text and "default-src 'none'" in text
    written = [json.loads(line) for line in lines.read_text(encoding="utf-8").splitlines()]
    assert [(v["world_name"], v["start"][:16]) for v in written] == ALL
    assert not list(tmp_path.glob(".*.tmp"))


def test_pretty_output_is_a_table_with_the_people_met_and_no_escapes_from_the_log(tmp_path: Path) -> None:
    log = tmp_path / "output_log_2025-12-01_10-00-00.txt"
    header = "2025.12.01 10:00:{:02d} Debug      -  "
    log.write_text("\n".join([
        header.format(1) + "[Behaviour] Joining wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd:1~region(jp)",
        header.format(2) + "[Behaviour] Entering Room: Evil \x1b]0;pwned\x07\x1b[2J World",
        header.format(3) + "[Behaviour] OnPlayerJoined Sneaky\x1b[31m (usr_8f1e2d3c-4b5a-6978-8a9b-"
                           "0c1d2e3f4a5b)",
        header.format(9) + "[Behaviour] OnLeftRoom"]) + "\n", encoding="utf-8")
    done = vrclog("sessions", log, "--format", "pretty")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "Evil" in done.stdout and "Most time with" in done.stdout and "Sneaky" in done.stdout
    assert "1 visit" in done.stdout


def test_a_damaged_log_is_named_and_the_other_logs_visits_are_still_written(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    shutil.copytree(SESSIONS, folder)
    broken = folder / "output_log_2025-11-29_20-02-55.txt"
    data = gzip.compress(broken.read_bytes())
    broken.unlink()
    gz = folder / "output_log_2025-11-29_20-02-55.txt.gz"
    gz.write_bytes(data[: len(data) // 2])  # cut short: not a whole gzip stream
    done = vrclog("sessions", *sorted(folder.iterdir()), env=UTC)
    assert done.returncode == 2
    assert gz.name in done.stderr
    # Every visit of the other two logs; of the broken one, what was read before its cut.
    got = worlds(done)
    assert got[:3] == ALL[:3] and got[-2:] == ALL[-2:] and len(got) <= len(ALL)
    assert visits_of(done)[3]["open"] is (len(got) == 6)  # a visit cut off by the damage is open


@pytest.mark.posix
def test_ctrl_c_writes_the_visits_folded_so_far_and_exits_130() -> None:
    """Visits go out as they end; Ctrl-C ends the log where the reading stopped: the visit
    still going is written, open, then the exit code says the run was interrupted."""
    proc = subprocess.Popen([VRCLOG_BIN, "sessions", "--format", "jsonl"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **UTC})
    assert proc.stdin is not None
    log = (SESSIONS / "output_log_2025-11-28_21-40-12.txt").read_bytes()
    proc.stdin.write(log[:log.index(b"2025.11.28 23:45:00")])  # in the Pug, before Night Owl is back
    proc.stdin.flush()  # left open: the run waits for more
    first = stdout_lines(proc, 1)  # the visit that the Pug's join ended
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    visits = [json.loads(line) for line in (first + rest).splitlines()]
    assert [(v["world_name"], v["end_reason"], v["open"], v["end"][11:19]) for v in visits] == [
        ("Paper Crane's Home", "world_leave", False, "21:58:40"),
        ("The Great Pug", "end_of_log", True, "23:30:00")]  # its last event read: Night Owl's leave
    assert b"interrupted" in err


def test_the_readmes_table_is_what_the_command_prints() -> None:
    readme = (SAMPLE_LOGS.parent / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("    $ vrclog sessions --log-dir sample_logs/sessions\n"):]
    shown = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        shown.append(line[4:])
    done = vrclog("sessions", "--log-dir", "sample_logs/sessions", "--format", "pretty",
                  cwd=SAMPLE_LOGS.parent, env={**UTC, "COLUMNS": "100"})
    printed = [line.rstrip() for line in done.stdout.rstrip("\n").splitlines()]
    assert printed == [line.rstrip() for line in "\n".join(shown).rstrip("\n").splitlines()]


def on_a_terminal(*args: str | Path) -> tuple[int, str]:
    """`vrclog ARGS` with stdout and stderr on a pty: (exit code, what the screen got)."""
    import pty
    import re
    import time

    from tests.test_terminal import read_pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([VRCLOG_BIN, *map(str, args)], stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, env={**os.environ, **UTC, "COLUMNS": "120"})
    os.close(slave)
    screen = read_pty(master, time.monotonic() + 60).decode(errors="replace")
    proc.wait(60)
    os.close(master)
    return proc.returncode, re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen)


@pytest.mark.posix
def test_on_a_terminal_visits_are_a_table_and_a_page_needs_a_file() -> None:
    code, screen = on_a_terminal("sessions", "--log-dir", SESSIONS, "--no-progress")
    assert code == 0 and "7 visits" in screen and "Most time with" in screen and '"start"' not in screen
    code, screen = on_a_terminal("sessions", "--log-dir", SESSIONS, "--format", "html")
    assert code == 2 and "give -o FILE" in screen and "<html" not in screen


@pytest.mark.posix
def test_a_log_across_the_end_of_summer_time_counts_the_repeated_hour(tmp_path: Path) -> None:
    """Europe/Berlin, 2025-10-26: 02:00-02:59 happens twice.  Joined at 02:30 (summer time),
    left at 02:40 in the repeat: 70 minutes, as the parser and the fold read the log."""
    log = tmp_path / "output_log_2025-10-26_02-29-00.txt"
    header = "2025.10.26 {} Debug      -  [Behaviour] "
    owl = "Night Owl (usr_8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b)"
    log.write_text("\n".join([
        header.format("02:30:00") + "Joining wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd:1~region(eu)",
        header.format("02:30:04") + "Entering Room: Clock Tower",
        header.format("02:50:00") + f"OnPlayerJoined {owl}",
        header.format("02:10:00") + f"OnPlayerLeft {owl}",
        header.format("02:40:00") + "OnLeftRoom"]) + "\n", encoding="utf-8")
    done = vrclog("sessions", log, env={"TZ": "Europe/Berlin"})
    assert done.returncode == 0, done.stderr
    [visit] = visits_of(done)
    assert (visit["start"], visit["end"], visit["duration_s"]) == (
        "2025-10-26T02:30:00+02:00", "2025-10-26T02:40:00+01:00", 70 * 60)
    assert [(p["name"], p["overlap_s"]) for p in visit["players"]] == [("Night Owl", 20 * 60)]
