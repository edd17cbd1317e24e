"""--provenance: each event's source (file, line, byte offset) and its id, the same for
the same line of the same log whatever runs it (design.md section 11)."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrclog_cli import parse_files, parse_lines
from vrclog_cli.events import Event
from vrclog_cli.run.provenance import Stamper, event_id, source_identity
from vrclog_cli.run.sources import Lines

from .conftest import SAMPLE_LOGS, SAMPLES, vrclog

ECHO = SAMPLES / "echo.wasm"  # an event on every line, beside the built-in parser's


def events(*args: str | Path, stdin: bytes = b"") -> list[dict[str, Any]]:
    result = vrclog("parse", "--provenance", *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VRChat's sample log with a BOM, CRLF endings on some lines and a line of invalid
    UTF-8: offsets count bytes, not characters."""
    data = (SAMPLE_LOGS / "vrchat.log").read_bytes()
    lines = data.split(b"\n")
    lines[3] += b"\r"
    lines[5] = lines[5] + b" \xff\xfe caf\xc3\xa9"
    path = tmp_path_factory.mktemp("logs") / "output_log_2025-06-17_18-20-02.txt"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines))
    return path


def ids(found: list[dict[str, Any]]) -> list[str]:
    return [event["id"] for event in found]


def test_each_event_names_its_file_line_and_byte_offset(log: Path) -> None:
    data = log.read_bytes()
    found = events("--builtin", "--plugin", ECHO, log)
    assert found
    for event in found:
        source = event["source"]
        assert source["file"] == str(log)
        start = source["offset"]
        assert start == 0 or data[start - 1:start] == b"\n"
        assert data[:start].count(b"\n") + 1 == source["line"]
        if event["type"] == "line":  # echo's event holds the line as vrclog read it
            raw = data[start:].split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf").removesuffix(b"\r")
            assert event["data"]["text"] == raw.decode("utf-8", "replace")


def test_ids_are_unique_and_follow_the_documented_formula(log: Path) -> None:
    found = events("--builtin", "--plugin", ECHO, log)
    assert len(set(ids(found))) == len(found)
    data = log.read_bytes()
    plugin = "plugin:" + hashlib.sha256(ECHO.read_bytes()).hexdigest()
    seen: dict[tuple[int, str], int] = {}
    for event in found:
        offset = event["source"]["offset"]
        raw = data[offset:].split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf").removesuffix(b"\r")
        line = raw.decode("utf-8", "replace")
        parser = plugin if event["type"] == "line" else "builtin:1"
        index = seen[(offset, parser)] = seen.get((offset, parser), -1) + 1
        text = f"{log.name}\0{offset}\0{parser}\0{index}\0{line}"
        assert event["id"] == hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@pytest.mark.parametrize("how", [("--jobs", "4", "--workers", "threads"),
                                 ("--jobs", "4", "--workers", "processes"),
                                 ("--jobs", "1", "--no-prefilter")])
def test_the_same_ids_whatever_runs_the_parsers(log: Path, how: tuple[str, ...]) -> None:
    one = events("--jobs", "1", "--builtin", "--plugin", ECHO, log)
    assert ids(events(*how, "--builtin", "--plugin", ECHO, log)) == ids(one)


def test_the_same_ids_from_a_copy_elsewhere_gzip_and_the_library(log: Path, tmp_path: Path) -> None:
    """The identity is the file's name: a log moved, or compressed, keeps its ids."""
    one = events("--builtin", "--plugin", ECHO, log)
    (tmp_path / "moved").mkdir()
    moved = shutil.copy(log, tmp_path / "moved" / log.name)
    packed = tmp_path / (log.name + ".gz")
    packed.write_bytes(gzip.compress(log.read_bytes()))
    assert ids(events("--builtin", "--plugin", ECHO, moved)) == ids(one)
    assert ids(events("--builtin", "--plugin", ECHO, packed)) == ids(one)
    library = list(parse_files([log], plugins=[ECHO], builtin=True, provenance=True))
    assert [e.id for e in library] == ids(one)
    assert [e.source.offset if e.source else None for e in library] == [
        e["source"]["offset"] for e in one]


def test_what_changes_an_id(log: Path, tmp_path: Path) -> None:
    one = {e["source"]["line"]: e["id"] for e in events(log)}
    renamed = tmp_path / "output_log_other.txt"
    shutil.copy(log, renamed)
    assert not set(one.values()) & {e["id"] for e in events(renamed)}
    # A line inserted before: the later lines' offsets move, and so do their ids.
    shifted = tmp_path / log.name
    shifted.write_bytes(b"one more line\n" + log.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    assert not set(one.values()) & {e["id"] for e in events(shifted)}


def test_stdin_is_dash_with_offsets_into_the_stream(log: Path) -> None:
    data = log.read_bytes()
    found = events("-", stdin=data)
    assert found and all(e["source"]["file"] == "-" for e in found)
    assert [e["source"]["offset"] for e in found] == [e["source"]["offset"] for e in events(log)]
    assert source_identity("<stdin>") == source_identity("-") == "-"


def test_library_lines_count_their_bytes() -> None:
    lines = ["2025.06.17 18:20:02 Debug      -  User Authenticated: Ünïcode (usr_1)\r\n",
             "2025.06.17 18:20:03 Debug      -  User Authenticated: B (usr_2)"]
    found = list(parse_lines(lines, provenance=True, source="output_log_x.txt"))
    assert [e.source for e in found] == [("output_log_x.txt", 1, 0),
                                        ("output_log_x.txt", 2, len(lines[0].encode()))]
    assert found[0].id == event_id("output_log_x.txt", 0, "builtin:1", 0, lines[0].removesuffix("\r\n"))


def test_without_provenance_events_have_neither(log: Path) -> None:
    result = vrclog("parse", log)
    assert result.returncode == 0
    assert all("id" not in json.loads(line) and "source" not in json.loads(line)
               for line in result.stdout.splitlines())


class _Parser:
    """A parser as the stamper sees one: only its key."""

    name, version = "builtin", "1"


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(["-", "<stdin>", "logs/output_log_x.txt", "C:\\logs\\y.txt.gz"]),
       lines=st.lists(st.tuples(st.text(), st.integers(0, 2**40), st.integers(1, 3)), min_size=1, max_size=8))
def test_the_stamper_gives_the_reference_ids(source: str, lines: list[tuple[str, int, int]]) -> None:
    """Stamper (one loop, one hash call an event) against event_id, the documented
    formula: any text (lone surrogates, NULs), one event or several on a line."""
    batch = Lines(source, 7, [text for text, _, _ in lines], offsets=[offset for _, offset, _ in lines])
    found = [(index, [Event("x") for _ in range(count)]) for index, (_, _, count) in enumerate(lines)]
    Stamper([_Parser()]).stamp_lines(batch, 0, found)
    identity = source_identity(source)
    for index, events in found:
        text, offset, _ = lines[index]
        for position, event in enumerate(events):
            assert event.source == ("-" if source in ("-", "<stdin>") else source, 7 + index, offset)
            assert event.id == event_id(identity, offset, "builtin:1", position, text)
