"""The built-in parser: its fast string handling must give what its reference patterns give."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from vrclog_cli.builtin import BuiltinParser
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
    return event.type, {k: getattr(event, k) for k in keys}


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
