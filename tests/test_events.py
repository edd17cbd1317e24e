"""Event decoding: the per-hour and per-minute fast paths of timestamp completion, pinned to the full one."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vrclog_cli.events import (
    _DECODER,
    _hour_offset,
    _minute_offset,
    complete_timestamp,
    normalize_timestamp,
    parse_json,
)


def reference(value: str) -> str | None:
    try:
        return normalize_timestamp(value)
    except ValueError:
        return None


def fast(value: str) -> str | None:
    try:
        return complete_timestamp(value)
    except ValueError:
        return None


DIGITS = st.sampled_from("0123456789")
NAIVE = st.builds(
    lambda y, mo, d, h, mi, s, sep: f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}",
    st.integers(1, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
    st.integers(0, 61), st.integers(0, 61), st.sampled_from("Tt "))


@pytest.fixture(params=["UTC", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe"])
def zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """Local zones with and without DST (Lord Howe moves by half an hour)."""
    if not hasattr(time, "tzset"):
        pytest.skip("setting the local zone (TZ, time.tzset) is POSIX")
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    _minute_offset.cache_clear()
    _hour_offset.cache_clear()
    yield request.param
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()
    _minute_offset.cache_clear()
    _hour_offset.cache_clear()


@given(value=st.one_of(NAIVE, st.text(max_size=25),
                       st.builds(lambda a, b: a + b, NAIVE, st.sampled_from(["Z", "+09:00", ".5", "x"]))))
@example(value="2024-03-10T02:30:00")  # in New York's spring-forward gap
@example(value="2024-11-03T01:30:59")  # in New York's repeated hour
@example(value="2024-11-03T00:59:59")  # the second before it
@example(value="2024-04-07T01:15:00")  # Lord Howe: before its repeated half hour, 01:30-02:00
@example(value="2024-04-07T01:45:00")  # in it
@example(value="2024-10-06T02:15:00")  # Lord Howe: in its half-hour gap, 02:00-02:30
@example(value="2024-10-06T02:45:00")  # after it, in the same hour
@example(value="2024-01-15T23:59:1٣")  # a non-ASCII digit
@example(value="2024-02-30T10:00:00")
# The zone is meant to stay the same across the generated inputs.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fast_path_gives_what_the_full_path_gives(zone: str, value: str) -> None:
    assert fast(value) == reference(value)


JSON_TEXT = st.one_of(
    st.sampled_from(['{"ok":true}', "[1, 2]", '"s"', "3", "NaN", "{", "", "nul", '{"a":1}x', "1 2"]),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
                 max_leaves=8).map(lambda v: json.dumps(v)))


@given(st.text(" \t\n\r", max_size=3), JSON_TEXT, st.text(" \t\n\rx}", max_size=3))
def test_parse_json_is_the_decoders_decode(before: str, body: str, after: str) -> None:
    text = before + body + after
    try:
        expected = ("ok", _DECODER.decode(text))
    except (json.JSONDecodeError, ValueError) as exc:
        expected = ("error", str(exc))
    try:
        got = ("ok", parse_json(text))
    except (json.JSONDecodeError, ValueError) as exc:
        got = ("error", str(exc))
    assert got == expected
