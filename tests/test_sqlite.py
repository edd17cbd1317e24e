"""--output sqlite:PATH / --db PATH: every event once by its id, the cursor in the same
transaction, whatever kills the run (design.md section 11)."""

from __future__ import annotations

import json
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, SAMPLE_LOGS, SAMPLES, VRCLOG_BIN, vrchat_log_folder, vrclog

SAMPLE = (SAMPLE_LOGS / "vrchat.log").read_bytes()
ECHO = SAMPLES / "echo.wasm"
COLUMNS = ("id", "type", "timestamp", "player_name", "player_id", "world_id", "world_name", "instance_id",
           "data", "source_file", "source_line", "source_offset")


def rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        return [dict(zip(COLUMNS, row, strict=True)) for row in conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM events ORDER BY source_file, source_offset, id")]


def as_row(event: dict[str, Any]) -> dict[str, Any]:
    """A JSON Lines event (--provenance) as the events table holds it."""
    row = {name: event.get(name) for name in COLUMNS[:8]}
    row["data"] = json.dumps(event["data"], ensure_ascii=False) if "data" in event else None
    source = event["source"]
    row.update(source_file=source["file"], source_line=source["line"], source_offset=source["offset"])
    return row


def jsonl(*args: str | Path) -> list[dict[str, Any]]:
    result = vrclog("parse", "--provenance", *args)
    assert result.returncode in (0, 1), result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["source_file"], row["source_offset"], row["id"]


def test_the_database_holds_what_json_lines_would(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt"
    log.write_bytes(SAMPLE)
    db = tmp_path / "events.db"
    result = vrclog("parse", "--db", db, "--builtin", "--plugin", ECHO, log)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    expected = sorted((as_row(e) for e in jsonl("--builtin", "--plugin", ECHO, log)), key=sort_key)
    assert rows(db) == expected
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(events)")}
    assert indexes >= {"events_type", "events_timestamp"}


def test_a_rerun_inserts_nothing_and_an_append_only_what_is_new(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt"
    log.write_bytes(SAMPLE)
    db = tmp_path / "events.db"
    assert vrclog("parse", f"--output=sqlite:{db}", log).returncode == 0
    first = rows(db)
    assert vrclog("parse", "--db", db, log).returncode == 0
    assert rows(db) == first
    with log.open("ab") as f:
        f.write(SAMPLE)
    assert vrclog("parse", "--db", db, log).returncode == 0
    assert rows(db) == sorted((as_row(e) for e in jsonl(log)), key=sort_key)
    with sqlite3.connect(db) as conn:
        (offset,) = conn.execute('SELECT "offset" FROM cursors WHERE source = ?', (str(log),)).fetchone()
    assert offset == len(SAMPLE) * 2


def test_filters_and_fail_on_work_as_for_json_lines(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    result = vrclog("parse", "--db", db, "--include-types", "player_join", "--fail-on", "player_join",
                    SAMPLE_LOGS / "vrchat.log")
    assert result.returncode == 1
    assert {r["type"] for r in rows(db)} == {"player_join"}


def test_what_cannot_be_a_vrclog_database_is_one_clear_error(tmp_path: Path) -> None:
    log = SAMPLE_LOGS / "vrchat.log"
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE mine (x)")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    older = tmp_path / "older.db"  # made by a vrclog whose ids were another formula
    assert vrclog("parse", "--db", older, log).returncode == 0
    with sqlite3.connect(older) as conn:
        conn.execute("UPDATE vrclog_meta SET value = '1' WHERE key = 'version'")
    locked = tmp_path / "locked.db"
    assert vrclog("parse", "--db", locked, log).returncode == 0
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        for db, words in [(other, "not a vrclog database"), (garbage, "not an SQLite database"),
                          (older, "version '1'; this vrclog writes vrclog-events version 2"),
                          (locked, "locked by another program")]:
            result = vrclog("parse", "--db", db, log)
            assert result.returncode == 2, (db, result.stderr)
            assert result.stderr.count("\n") == 1 and f"{db}: " in result.stderr and words in result.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for args, words in [(("--db", log), "is the input"), (("--db", other, "--format", "pretty"), "--format"),
                        (("--db", other, "--state", tmp_path / "s.json"), "its own cursor"),
                        (("--output", "csv:x"), "sqlite:PATH")]:
        result = vrclog("parse", *args, log)
        assert result.returncode == 2 and words in result.stderr, (args, result.stderr)


def readme_queries() -> dict[str, str]:
    """The README's SQL examples, by their comment line."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- sqlite queries -->", 2)[1]
    return {m.group(1): m.group(2) for m in re.finditer(r"-- ([^\n]+)\n(.*?;)", block, re.S)}


def test_the_readme_queries_answer_what_a_player_asks(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    assert vrclog("parse", "--db", db, SAMPLE_LOGS / "vrchat.log").returncode == 0
    queries = readme_queries()
    assert len(queries) == 3
    with sqlite3.connect(db) as conn:
        answers = {name: conn.execute(sql).fetchall() for name, sql in queries.items()}
    worlds, people, videos = answers.values()
    assert worlds and all(minutes is not None and minutes >= 0 for _, _, minutes in worlds)
    assert any(name == "Night Owl" for name, *_ in people)
    assert videos and all(url.startswith("http") for _, url, _ in videos)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_at_random_moments_the_database_holds_each_event_once(tmp_path: Path) -> None:
    """Killed in a transaction or between them, while files grow, one is truncated and a
    new one appears: at the end, exactly the events of one clean run over the final files."""
    logs = vrchat_log_folder(tmp_path / "logs")
    db = tmp_path / "events.db"
    rng = random.Random(7)
    for attempt in range(8):
        args = ["parse", "--db", str(db), "--plugin", str(ECHO), "--builtin", "--jobs", "1", *map(str, logs)]
        proc = subprocess.Popen([VRCLOG_BIN, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Once the database exists (start-up takes seconds on a busy machine), at a random moment.
        deadline = time.monotonic() + 60
        while not db.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if attempt == 2:
            with logs[2].open("ab") as f:
                f.write(SAMPLE * 20)
        if attempt == 4:
            logs[1].write_bytes(SAMPLE * 3)  # truncated
        if attempt == 5:
            logs.append(tmp_path / "logs" / "output_log_2025-06-20_08-00-00.txt")  # a new log
            logs[-1].write_bytes(SAMPLE * 50)
    final = subprocess.run([VRCLOG_BIN, *args[:1], "--db", str(db), *args[3:-3], *map(str, logs)],
                           capture_output=True)
    assert final.returncode == 0, final.stderr
    clean = jsonl("--plugin", ECHO, "--builtin", "--jobs", "1", *logs)
    assert rows(db) == sorted((as_row(e) for e in clean), key=sort_key)


def test_a_file_cut_short_after_its_events_went_in_before_its_cursor_moved(tmp_path: Path) -> None:
    """Killed after a flush that held a file's first events but not the end of a chunk (its
    cursor had not moved yet), then the file truncated: its old events must still go."""
    from vrclog_cli import parse_files
    from vrclog_cli.sinks.sqlite import SqliteWriter

    log = tmp_path / "output_log_a.txt"
    log.write_bytes(SAMPLE * 2)
    writer = SqliteWriter(tmp_path / "events.db")
    events = list(parse_files([log], provenance=True))
    writer.write(str(log), 1, "", events)  # in, with no cursor advanced: the run dies here
    writer.flush()
    writer.close()
    log.write_bytes(SAMPLE)  # truncated
    assert vrclog("parse", "--db", tmp_path / "events.db", log).returncode == 0
    assert rows(tmp_path / "events.db") == sorted((as_row(e) for e in jsonl(log)), key=sort_key)
