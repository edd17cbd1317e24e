"""The built-in parser: its fast string handling must give what its reference patterns give."""

from __future__ import annotations

import re
from datetime import datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from vrclog_cli.builtin import BuiltinParser, local_timestamp
from vrclog_cli.events import Event

# The meaning of each event, as one pattern each (mirrors the comment in builtin.py).
ENTERING = re.compile(r"\[Behaviour\] Entering Room: (.+?)\s*$")
JOINING = re.compile(r"\[Behaviour\] Joining (wrld_[0-9A-Za-z-]+):(\S+)")
PLAYER = re.compile(r"\[Behaviour\] OnPlayer(Joined|Left) (.+?)(?: \((usr_[0-9A-Za-z-]+)\))?\s*$")


def reference(line: str) -> list[tuple[str, dict[str, str | None]]]:
    if "[Behaviour] " not in line:
        return []
    if (m := PLAYER.search(line)) is not None:
        kind = "player_join" if m.group(1) == "Joined" else "player_left"
        return [(kind, {"player_name": m.group(2), "player_id": m.group(3)})]
    if (m := ENTERING.search(line)) is not None:
        return [("world_join", {"world_name": m.group(1)})]
    if (m := JOINING.search(line)) is not None:
        return [("world_join", {"world_id": m.group(1), "instance_id": m.group(2)})]
    return []


def fields(event: Event) -> tuple[str, dict[str, str | None]]:
    keys = ("player_name", "player_id") if event.type.startswith("player") else (
        ("world_name",) if event.world_name is not None else ("world_id", "instance_id"))
    assert all(getattr(event, k) is None for k in Event.__slots__ if k not in (*keys, "type", "timestamp"))
    return event.type, {k: getattr(event, k) for k in keys}


STAMP = re.compile(r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2})", re.ASCII)


def reference_timestamp(line: str) -> str | None:
    if (m := STAMP.match(line)) is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in m.groups())
        return datetime(year, month, day, hour, minute, second).astimezone().isoformat()
    except ValueError:
        return None


def two(low: int, high: int) -> st.SearchStrategy[str]:
    """Two digits, mostly in range, sometimes just outside it or not ASCII digits at all."""
    return st.integers(low, high).map(lambda n: f"{n:02d}") | st.text(alphabet="0123456789x ١٣", max_size=3)


stamps = st.builds(lambda y, mo, d, h, mi, s, sep, tail: f"{y}.{mo}.{d} {h}:{mi}{sep}{s}{tail}",
                   st.sampled_from(["2024", "1999", "2038", "0001", "9999", "20x4"]), two(0, 13), two(0, 32),
                   two(0, 24), two(0, 60), two(0, 61), st.sampled_from([":", ":", ":", ".", ""]),
                   st.sampled_from(["", " Log -", "\r", "5"]))


@settings(max_examples=2000, deadline=None)
@given(stamps)
@example("2024.02.29 23:59:60")
@example("2023.02.29 12:00:00")
@example("2024.01.15 23:58:1")
@example("2024.01.15 23:58:1٣")
@example("２０２４.01.15 23:58:13")
def test_timestamps_are_what_datetime_gives(line: str) -> None:
    assert local_timestamp(line) == reference_timestamp(line)



HEADS = ["OnPlayerJoined ", "OnPlayerLeft ", "OnPlayerJoined", "OnPlayerLeftRoom ", "Entering Room: ",
         "Entering Room:", "Joining ", "Joining or Creating Room: ", ""]
TAILS = [" ", "  ", "\t", "\u3000", "Night Owl", "ダニエル", "(usr_12-ab)", " (usr_12-ab)", " (usr_)",
         " (usr_a b)", "wrld_ab-1", ":", "x~r", "(", ")", "usr_", "\r", "[Behaviour] OnPlayerJoined ",
         "[Behaviour] Entering Room: "]
# Lines never hold "\n" (the reader splits on it).
text = st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=4)
lines = st.builds(
    lambda before, head, tail: f"2024.01.15 23:58:01 Log        -  {before}[Behaviour] {head}{''.join(tail)}",
    st.sampled_from(["", "junk ", "[Behaviour] x "]) | text,
    st.sampled_from(HEADS),
    st.lists(st.sampled_from(TAILS) | text, max_size=6))


@settings(max_examples=3000, deadline=None)
@given(lines)
def test_fast_parser_matches_reference_patterns(line: str) -> None:
    assert [fields(e) for e in BuiltinParser().call(line)] == reference(line)


def test_examples() -> None:
    parser = BuiltinParser()
    prefix = "2024.01.15 23:58:01 Log        -  "
    assert fields(parser.call(prefix + "[Behaviour] OnPlayerJoined Night Owl (usr_1-a)  ")[0]) == (
        "player_join", {"player_name": "Night Owl", "player_id": "usr_1-a"})
    assert fields(parser.call(prefix + "[Behaviour] OnPlayerLeft  (usr_1)")[0]) == (
        "player_left", {"player_name": " (usr_1)", "player_id": None})
    assert fields(parser.call(prefix + "[Behaviour] Entering Room:    ")[0]) == (
        "world_join", {"world_name": " "})
    assert fields(parser.call(prefix + "[Behaviour] OnPlayerJoined  \t")[0]) == (
        "player_join", {"player_name": " ", "player_id": None})
    assert parser.call(prefix + "[Behaviour] Entering Room: ") == []
    assert parser.call(prefix + "[Behaviour] OnPlayerJoined ") == []


@settings(max_examples=300, deadline=None)
@given(st.lists(lines | text, max_size=20))
def test_batch_events_are_the_line_by_line_events(batch: list[str]) -> None:
    parser = BuiltinParser()
    assert parser.find_events(batch) == [(i, parser.call(line)) for i, line in enumerate(batch)
                                         if parser.call(line)]
