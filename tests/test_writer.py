"""The JSON Lines writer: the hand-spelled encoding against json.dumps of Event.to_dict, the
orjson one against it."""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from vrclog_cli.events import STRING_FIELDS, Event, EventSource
from vrclog_cli.sinks.writer import JsonLinesWriter, event_json, event_line, line_safe_bytes


def reference(event: Event, raw_line: str | None) -> str:
    text = json.dumps(event.to_dict(raw_line), ensure_ascii=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# Surrogates cannot be written as UTF-8; everything else, quotes, controls and U+2028 included.
text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12) | st.sampled_from(
    ['"', "\\", "\n", "\u2028", "\u2029", "\x00", "ダ", "🍒", ""])
events = st.builds(
    lambda kind, values, data, source, ident: Event(kind, **dict(zip(STRING_FIELDS, values, strict=True)),
                                                    data=data, source=source, id=ident),
    text.filter(bool),
    st.tuples(*[st.none() | text for _ in STRING_FIELDS]),
    st.none() | st.dictionaries(text, text, max_size=3),
    st.none() | st.builds(EventSource, text, st.integers(1, 10**9), st.integers(0, 2**63)),
    st.none() | st.text(alphabet="0123456789abcdef", min_size=32, max_size=32))


@settings(max_examples=1000, deadline=None)
@given(events, st.none() | text)
def test_event_json_is_json_dumps_of_to_dict(event: Event, raw_line: str | None) -> None:
    assert event_json(event, raw_line) == reference(event, raw_line)


def test_written_lines_split_on_newlines_only() -> None:
    out = io.BytesIO()
    writer = JsonLinesWriter(out, raw_line=True)
    writer.write("log", 1, "a\u2028b", [Event("x", player_name="p\u2029q")])
    writer.flush()
    lines = out.getvalue().decode().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {"type": "x", "player_name": "p\u2029q", "raw_line": "a\u2028b"}


@settings(max_examples=1000, deadline=None)
@given(events, st.none() | text)
def test_event_line_is_event_json_in_utf8(event: Event, raw_line: str | None) -> None:
    """The orjson path against the reference, once a buffer's line separators are escaped."""
    assert line_safe_bytes(event_line(event, raw_line)) == event_json(event, raw_line).encode()


@given(st.text(min_size=1, max_size=4).map(lambda s: s + "\ud800"))
def test_a_lone_surrogate_is_written_as_fffd(value: str) -> None:
    """orjson refuses it; the reference writes U+FFFD, as invalid UTF-8 in a line becomes."""
    out = io.BytesIO()
    writer = JsonLinesWriter(out)
    writer.write("log", 1, "x", [Event("x", data={"k": value})])
    writer.flush()
    assert json.loads(out.getvalue())["data"]["k"].endswith("\ufffd")
