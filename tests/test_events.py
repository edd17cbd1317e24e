"""Event decoding: its fast paths (timestamp completion per hour and minute, orjson's parse, the
field checks) each pinned to the reference."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vrclog_cli.errors import PluginRuntimeError
from vrclog_cli.events import (
    _DECODER,
    Event,
    _hour_offset,
    _minute_offset,
    complete_timestamp,
    decode_event,
    decode_event_reference,
    decode_output,
    decode_output_reference,
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


def outcome(decode: Callable[[Any], list[Event] | Event], value: Any) -> tuple[str, object]:
    try:
        return ("ok", decode(value))
    except PluginRuntimeError as exc:
        return ("error", (str(exc), exc.code))


# What a plugin's answer may hold: every field of every type, and the odd spellings of
# JSON that orjson and json disagree about (orjson refuses them; json decides).
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                   st.text(max_size=6), st.sampled_from(["2024-01-15T23:59:59", "2024-01-15 00:00:00Z",
                                                         "2024-02-30T10:00:00", "", "x"]))
VALUE = st.recursive(SCALAR, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c,
                                                                                  max_size=3), max_leaves=6)
FIELD = st.sampled_from(["type", "timestamp", "player_name", "player_id", "world_id", "world_name",
                         "instance_id", "data", "other"])
EVENT = st.one_of(
    st.dictionaries(FIELD, VALUE, max_size=6),
    st.builds(lambda kind, data, ts: {"type": kind, "timestamp": ts, "data": data},
              st.text(max_size=4), st.dictionaries(st.text(max_size=3), st.text(max_size=3) | VALUE,
                                                   max_size=3),
              st.none() | st.sampled_from(["2024-01-15T23:59:59", "2024-01-15T23:59:59+09:00", "bad"])),
    VALUE)
ANSWER = st.builds(
    lambda ok, events, extra: {"ok": ok, "events": events, **extra},
    st.one_of(st.just(True), st.just(False), VALUE),
    st.one_of(st.lists(EVENT, max_size=3), VALUE),
    st.dictionaries(st.sampled_from(["error", "code", "x"]), VALUE, max_size=2))
ODD = st.sampled_from([b'\\ud800', b"1e400", b"NaN", b"Infinity", b"123456789012345678901234567890",
                       b"[" * 1100 + b"]" * 1100, b"\xff", b"\xef\xbb\xbf", b"\x0c", b"\x00"])


def spliced(answer: dict[str, Any], odd: bytes, where: int) -> bytes:
    raw = json.dumps(answer, ensure_ascii=False).encode()
    cut = where % (len(raw) + 1)
    return raw[:cut] + odd + raw[cut:]


@settings(max_examples=500, deadline=None)
@given(st.one_of(ANSWER.map(lambda a: json.dumps(a, ensure_ascii=False).encode()),
                 st.builds(spliced, ANSWER, ODD, st.integers(0, 10_000)),
                 st.builds(lambda a: json.dumps(a).replace('"x"', '"\\ud83d"').encode(), ANSWER),
                 st.binary(max_size=40)))
@example(raw=b'{"ok":true,"events":[{"type":"a","data":{"k":"\\ud800"}}]}')
@example(raw=b'{"ok":true,"events":[{"type":"a","n":1e400}]}')
@example(raw=b'{"ok":true,"ok":false,"error":"last wins"}')
def test_decode_output_is_the_reference(raw: bytes) -> None:
    """orjson's parse and the field checks' fast path give what the json-module reference gives:
    the same events, or the same error."""
    assert outcome(decode_output, raw) == outcome(decode_output_reference, raw)


@settings(max_examples=500, deadline=None)
@given(EVENT, st.integers(0, 3))
def test_decode_event_is_the_reference(item: Any, index: int) -> None:
    assert outcome(lambda i: decode_event(index, i), item) == outcome(
        lambda i: decode_event_reference(index, i), item)
