"""The built-in parser on one log per era of VRChat (sample_logs/eras/): the real
``vrclog`` process against golden files written by hand from the line formats that
VRCX and the other readers document (docs/vrcx-parity.md), never by running vrclog."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import SAMPLE_LOGS, SAMPLES, vrclog

ERAS = sorted((SAMPLE_LOGS / "eras").glob("*.log"))
#: The local offset vrclog adds to VRChat's local time: the golden files leave it out.
OFFSET = re.compile(r"(?:[+-]\d{2}:\d{2}|Z)\Z")


def test_there_is_a_log_for_every_era() -> None:
    assert [log.name for log in ERAS] == ["2020-sdk2.log", "2021-2022.log", "2023-2024.log", "2025.log"]


@pytest.mark.parametrize("log", ERAS, ids=lambda p: p.stem)
def test_each_era_gives_its_golden_events(log: Path) -> None:
    result = vrclog("parse", log)
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    for event in got:  # every event has a valid time: the line's own, with the local offset
        stamp = event["timestamp"]
        assert OFFSET.search(stamp), event
        event["timestamp"] = OFFSET.sub("", stamp)
    golden = log.with_suffix(".expected.jsonl").read_text("utf-8")
    expected = [json.loads(line) for line in golden.splitlines()]
    assert got == expected


def test_crlf_lines_read_as_lf_lines(tmp_path: Path) -> None:
    crlf = SAMPLE_LOGS / "eras" / "2021-2022.log"
    assert b"\r\n" in crlf.read_bytes()
    lf = tmp_path / "lf.log"
    lf.write_bytes(crlf.read_bytes().replace(b"\r\n", b"\n"))
    assert vrclog("parse", lf).stdout == vrclog("parse", crlf).stdout != ""


WITH_A_PLUGIN = ["--plugin", str(SAMPLES / "vrpoker.wasm"), "--builtin",
                 "--jobs", "2", "--workers", "processes"]


@pytest.mark.parametrize("beside", [[], WITH_A_PLUGIN], ids=["alone", "with a plugin, processes"])
def test_an_impossible_time_gives_no_event_and_is_counted(tmp_path: Path, beside: list[str]) -> None:
    """13:37:69 and February 30th are no VRChat header: no event, and --stats says so
    (the built-in parser alone skims a batch; beside a plugin it reads line by line)."""
    log = tmp_path / "bad-clock.log"
    log.write_text("2023.09.01 13:37:69 Log        -  [Behaviour] OnLeftRoom\n"
                   "2025.02.30 01:36:00 Debug      -  [Behaviour] OnLeftRoom\n"
                   "2025.02.28 01:36:00 Debug      -  [Behaviour] OnLeftRoom\n"
                   "   at a stack trace line, not counted\n", "utf-8")
    result = vrclog("parse", "--stats", *beside, log)
    assert result.returncode == 0
    assert [json.loads(line)["type"] for line in result.stdout.splitlines()] == ["world_leave"]
    assert re.search(r"lines without a valid VRChat header\s*│\s*2 ", result.stderr), result.stderr
