"""--state FILE, the cursor: each file starts where the last run finished writing; a run
killed at any moment repeats at most the lines after the last save and loses none."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

import pytest

from vrclog_cli.events import Event
from vrclog_cli.sinks.state import State, StateError, file_head

from .conftest import SAMPLE_LOGS, SAMPLES, VRCLOG_BIN, vrchat_log_folder, vrclog

ECHO = SAMPLES / "echo.wasm"
SAMPLE = (SAMPLE_LOGS / "vrchat.log").read_bytes()


def parse(*args: str | Path) -> list[dict[str, Any]]:
    result = vrclog("parse", "--provenance", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_second_run_gives_only_what_was_appended(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt"
    state = tmp_path / "state.json"
    log.write_bytes(SAMPLE)
    first = parse("--state", state, log)
    assert first and parse("--state", state, log) == []
    with log.open("ab") as f:  # the log grows: a second copy of the session
        f.write(SAMPLE)
    second = parse("--state", state, log)
    clean = parse(log)
    assert first + second == clean  # the same events, ids and line numbers as one run over it
    assert second[0]["source"]["line"] > first[-1]["source"]["line"]


def test_a_truncated_or_replaced_file_starts_over(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt"
    state = tmp_path / "state.json"
    log.write_bytes(SAMPLE + SAMPLE)
    assert parse("--state", state, log)
    log.write_bytes(SAMPLE)  # truncated
    assert parse("--state", state, log) == parse(log)
    log.write_bytes(b"2025.06.18 10:00:00 Debug      -  another log\n" + SAMPLE)  # replaced, as large
    assert parse("--state", state, log) == parse(log)


def test_a_gzip_file_resumes_in_its_decompressed_stream(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt.gz"
    log.write_bytes(gzip.compress(SAMPLE + SAMPLE, mtime=0))
    clean = parse(log)
    half = clean[len(clean) // 2]["source"]
    state = State(tmp_path / "state.json")
    state.advance(str(log), half["offset"], half["line"] - 1)
    state.save()
    assert parse("--state", state.path, log) == clean[len(clean) // 2:]
    assert parse("--state", state.path, log) == []


def test_a_damaged_or_foreign_state_file_is_one_clear_error(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt"
    log.write_bytes(SAMPLE)
    state = tmp_path / "state.json"
    for content, words in [("{", "not JSON"), ('{"format": "other"}', "not a vrclog state file"),
                           ('{"format": "vrclog-state", "version": 99, "sources": {}}', "version 99"),
                           ('{"format": "vrclog-state", "version": 1, "sources": {"x": {"size": -1}}}',
                            "not a cursor")]:
        state.write_text(content)
        result = vrclog("parse", "--state", state, log)
        assert result.returncode == 2, content
        assert f"{state}: " in result.stderr and words in result.stderr and "Traceback" not in result.stderr
        assert result.stdout == ""
    with pytest.raises(StateError):
        State.load(state)


def test_the_state_file_is_replaced_atomically(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt"
    log.write_bytes(SAMPLE)
    state = State(tmp_path / "state.json")
    state.advance(str(log), 100, 2)
    state.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output_log_a.txt", "state.json"]
    again = State.load(state.path)
    assert again.start_of(str(log)) == (100, 2)
    assert again.cursors[str(log)].head == file_head(str(log))[0]


def saved_offsets(state: Path) -> dict[str, int]:
    if not state.exists():
        return {}
    return {source: cursor["offset"] for source, cursor in json.loads(state.read_text())["sources"].items()}


def complete_lines(data: bytes) -> list[dict[str, Any]]:
    """The events of an output a SIGKILL may have cut: whole lines only."""
    return [json.loads(line) for line in data.split(b"\n") if line.endswith(b"}")]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_at_random_moments_nothing_is_lost_nothing_invented(tmp_path: Path) -> None:
    paths = vrchat_log_folder(tmp_path / "logs")
    state = tmp_path / "state.json"
    run = ["parse", "--provenance", "--plugin", str(ECHO), "--jobs", "1", *map(str, paths)]
    args = [*run, "--state", str(state)]
    rng = random.Random(31)
    outputs = []
    saved: list[dict[str, int]] = []  # each run's starting cursor: the state file before it
    for attempt in range(6):
        saved.append(saved_offsets(state))
        out = tmp_path / f"out{attempt}.jsonl"
        with out.open("wb") as sink:
            proc = subprocess.Popen([VRCLOG_BIN, *args], stdout=sink, stderr=subprocess.DEVNULL)
            # Once it writes (start-up takes seconds on a busy machine), at a random moment.
            deadline = time.monotonic() + 60
            while not out.stat().st_size and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 1.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        outputs.append(out.read_bytes())
        if attempt == 2:  # the logs move on meanwhile: the newest grows
            with paths[2].open("ab") as f:
                f.write(SAMPLE * 10)
    saved.append(saved_offsets(state))
    final = subprocess.run([VRCLOG_BIN, *args], capture_output=True, check=True)
    outputs.append(final.stdout)
    assert subprocess.run([VRCLOG_BIN, *args], capture_output=True, check=True).stdout == b""
    written = [event for data in outputs for event in complete_lines(data)]
    clean = complete_lines(subprocess.run([VRCLOG_BIN, *run], capture_output=True, check=True).stdout)
    counts = [len(complete_lines(data)) for data in outputs]
    assert 0 < counts[0] < len(clean), counts  # the first run was cut while it wrote
    for data, cursor in zip(outputs, saved, strict=True):  # repeats only after the last save
        assert all(e["source"]["offset"] >= cursor.get(e["source"]["file"], 0) for e in complete_lines(data))
    assert {e["id"] for e in written} == {e["id"] for e in clean}  # none lost, none invented
    by_id = {e["id"]: e for e in clean}
    assert all(by_id[e["id"]] == e for e in written)  # the same event wherever it was written


@pytest.mark.skipif(sys.platform == "win32", reason="signals sent to a process: POSIX")
def test_tail_resumes_where_it_stopped(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt"
    state = tmp_path / "state.json"
    log.write_bytes(SAMPLE)

    def tail_until(count: int) -> list[dict[str, Any]]:
        proc = subprocess.Popen([VRCLOG_BIN, "tail", "--provenance", "--state", str(state), str(log)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        got = [json.loads(proc.stdout.readline()) for _ in range(count)]
        time.sleep(1.5)  # past a save
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 143 and rest == b""
        return got

    first = tail_until(len(parse(log)))
    with log.open("ab") as f:
        f.write(SAMPLE)
    second = tail_until(len(first))
    assert first + second == parse(log)
    assert os.path.exists(state)


def test_the_library_keeps_a_cursor_too(tmp_path: Path) -> None:
    from vrclog_cli import parse_files

    log = tmp_path / "output_log_a.txt"
    state = tmp_path / "state.json"
    log.write_bytes(SAMPLE)
    first = list(parse_files([log], provenance=True, state=state))
    assert first and list(parse_files([log], state=state)) == []
    with log.open("ab") as f:
        f.write(SAMPLE)
    events = cast("Generator[Event, None, None]", parse_files([log], provenance=True, state=state))
    next(events)
    events.close()  # abandoned after one event: its batch was not all handed out
    rest = list(parse_files([log], provenance=True, state=state))
    assert [e.id for e in first + rest] == [e.id for e in parse_files([log], provenance=True)]


def test_new_skips_what_the_files_held_when_the_run_began(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt"
    log.write_bytes(SAMPLE)
    packed = tmp_path / "output_log_b.txt.gz"
    packed.write_bytes(gzip.compress(SAMPLE))
    assert parse("--new", log, packed) == []


@pytest.mark.skipif(sys.platform == "win32", reason="signals sent to a process: POSIX")
def test_tail_new_gives_live_events_without_the_history(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt"
    log.write_bytes(SAMPLE)
    proc = subprocess.Popen([VRCLOG_BIN, "tail", "--new", "--provenance", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    time.sleep(1.0)  # started, and at the end of what the log holds
    with log.open("ab") as f:
        f.write(SAMPLE)
    got = [json.loads(proc.stdout.readline()) for _ in range(len(parse(log)) // 2)]
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=30)
    assert rest == b""
    assert got == parse(log)[len(got):]  # the second copy's events: same ids and line numbers


def test_a_state_file_that_is_an_input_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    log = tmp_path / "output_log_a.txt"
    log.write_bytes(SAMPLE)
    result = vrclog("parse", "--state", log, log)
    assert result.returncode == 2 and "--state: is the input" in result.stderr
    assert log.read_bytes() == SAMPLE and result.stdout == ""
