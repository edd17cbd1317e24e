"""The built-in parser: its fast dispatch must give what the reference (a header
pattern, then every row tried in order) gives; the first three types, what their
reference patterns give; every type, the fields its real-format lines carry."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vrclog_cli.events import Event
from vrclog_cli.vrchat.builtin import HANDLERS, MESSAGE_AT, BuiltinParser, local_timestamp
from vrclog_cli.vrchat.event_types import BUILTIN_TYPES

# VRChat's header: 19 characters of time, the level word padded to column 34.
HEADER = re.compile(r".{19} (?:Log|Debug|Warning|Error|Exception) *-  ", re.S)
# The meaning of the first three events, as one pattern each, on the message.
# (2020 wrote [RoomManager] and [NetworkManager]; until ~2023 the name came twice.)
ENTERING = re.compile(r"\[(?:Behaviour|RoomManager)\] (?:Entering Room|Joining or Creating Room): (.+?)\s*$")
JOINING = re.compile(r"\[(?:Behaviour|RoomManager)\] Joining (wrld_[0-9A-Za-z-]+):(\S+)")
PLAYER = re.compile(
    r"\[(?:Behaviour|NetworkManager)\] OnPlayer(Joined|Left) (.+?)(?: \((usr_[0-9A-Za-z-]+)\))?\s*$")


STAMP = re.compile(r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2})", re.ASCII)


def reference_timestamp(line: str) -> str | None:
    if (m := STAMP.match(line)) is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in m.groups())
        return datetime(year, month, day, hour, minute, second).astimezone().isoformat()
    except ValueError:
        return None


def message_of(line: str) -> str | None:
    m = HEADER.match(line)
    return line[MESSAGE_AT:] if m is not None and m.end() == MESSAGE_AT else None


def reference(line: str) -> list[tuple[str, dict[str, str | None]]]:
    if (message := message_of(line)) is None or reference_timestamp(line) is None:
        return []
    if (m := PLAYER.match(message)) is not None:
        kind = "player_join" if m.group(1) == "Joined" else "player_left"
        return [(kind, {"player_name": m.group(2), "player_id": m.group(3)})]
    if (m := ENTERING.match(message)) is not None:
        return [("world_join", {"world_name": m.group(1)})]
    if (m := JOINING.match(message)) is not None:
        return [("world_join", {"world_id": m.group(1), "instance_id": m.group(2)})]
    return []


def reference_dispatch(line: str) -> list[Event]:
    """Every row in order, on a line whose header the pattern finds."""
    if (message := message_of(line)) is None or (stamp := reference_timestamp(line)) is None:
        return []
    for prefix, handle in HANDLERS:
        if message.startswith(prefix) and (events := handle(line, MESSAGE_AT + len(prefix))):
            for event in events:
                event.timestamp = stamp
            return events
    return []


def fields(event: Event) -> tuple[str, dict[str, str | None]]:
    keys = ("player_name", "player_id") if event.type.startswith("player") else (
        ("world_name",) if event.world_name is not None else ("world_id", "instance_id"))
    assert all(getattr(event, k) is None for k in Event.__slots__
               if k not in (*keys, "type", "timestamp", "data"))
    return event.type, {k: getattr(event, k) for k in keys}


def two(low: int, high: int) -> st.SearchStrategy[str]:
    """Two digits, mostly in range, sometimes just outside it or not ASCII digits at all."""
    return st.integers(low, high).map(lambda n: f"{n:02d}") | st.text(alphabet="0123456789x ١٣", max_size=3)


stamps = st.builds(lambda y, mo, d, h, mi, s, sep, tail: f"{y}.{mo}.{d} {h}:{mi}{sep}{s}{tail}",
                   st.sampled_from(["2024", "1999", "2038", "0001", "9999", "20x4"]), two(0, 13), two(0, 32),
                   two(0, 24), two(0, 60), two(0, 61), st.sampled_from([":", ":", ":", ".", ""]),
                   st.sampled_from(["", " Log -", "\r", "5"]))


@settings(max_examples=1000, deadline=None)
@given(stamps)
@example("2024.02.29 23:59:60")
@example("2023.02.29 12:00:00")
@example("2024.01.15 23:58:1")
@example("2024.01.15 23:58:1٣")
@example("２０２４.01.15 23:58:13")
@example("0001.01.01 00:00:00")  # before local time can go (the hourly path raised here)
def test_timestamps_are_what_datetime_gives(line: str) -> None:
    assert local_timestamp(line) == reference_timestamp(line)



HEADS = ["OnPlayerJoined ", "OnPlayerLeft ", "OnPlayerJoined", "OnPlayerLeftRoom ", "Entering Room: ",
         "Entering Room:", "Joining ", "Joining or Creating Room: ", ""]
TAILS = [" ", "  ", "\t", "\u3000", "Night Owl", "ダニエル", "(usr_12-ab)", " (usr_12-ab)", " (usr_)",
         " (usr_a b)", "wrld_ab-1", ":", "x~r", "(", ")", "usr_", "\r", "[Behaviour] OnPlayerJoined ",
         "[Behaviour] Entering Room: "]
LEVEL_FIELDS = ["Log        -  ", "Debug      -  ", "Warning    -  ", "Exception  -  ", "Log -  ",
                "Debug       -  ", "Info       -  "]
# Lines never hold "\n" (the reader splits on it).
text = st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=4)
lines = st.builds(
    lambda level, before, tag, head, tail: f"2024.01.15 23:58:01 {level}{before}{tag}{head}{''.join(tail)}",
    st.sampled_from(LEVEL_FIELDS),
    st.sampled_from(["", "", "junk ", "[Behaviour] x "]) | text,
    st.sampled_from(["[Behaviour] ", "[Behaviour] ", "[RoomManager] ", "[NetworkManager] "]),
    st.sampled_from(HEADS),
    st.lists(st.sampled_from(TAILS) | text, max_size=6))
PREFIXES = [prefix for prefix, _ in HANDLERS]
any_rows = st.builds(
    lambda stamp, level, head, tail: f"{stamp} {level}{head}{''.join(tail)}",
    st.sampled_from(["2024.01.15 23:58:01", "2024.01.15 23:58:0x", "at Foo.Bar()  in x"]),
    st.sampled_from(LEVEL_FIELDS), st.sampled_from([*PREFIXES, "[Network] ", ""]),
    st.lists(st.sampled_from([*TAILS, "', due to '", ", sender user id:usr_1 to usr_2", " to avatar ",
                              "] Portals/x)", ") spawned sticker inv_1", "You have been kicked", "60",
                              ", requested by ", "{{worldId=wrld_1:2, worldName=W}}", "'", "' resolved to '",
                              " added URL ", " succeeded", ") '", ': S: "ConfigurePortal"', " for ",
                              "(Domain: d)", "1] Sending Get request to u", " (2 total) 'Mic'"]) | text,
             max_size=6))


@settings(max_examples=1500, deadline=None)
@given(lines)
def test_fast_parser_matches_reference_patterns(line: str) -> None:
    assert [fields(e) for e in BuiltinParser().call(line)] == reference(line)


@settings(max_examples=1500, deadline=None)
@given(any_rows | lines)
def test_fast_dispatch_matches_the_reference_dispatch(line: str) -> None:
    assert BuiltinParser().call(line) == reference_dispatch(line)


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
    assert parser.find_events(batch) == (
        [(i, parser.call(line)) for i, line in enumerate(batch) if parser.call(line)],
        sum(1 for line in batch if parser.read(line) is None))


def one(line: str) -> dict[str, object]:
    events = BuiltinParser().call(line)
    assert len(events) == 1, (line, events)
    out = events[0].to_dict()
    out.pop("timestamp")
    return out


LOG = "2024.01.15 23:58:01 Log        -  "
DEBUG = "2025.04.09 21:16:28 Debug      -  "


@pytest.mark.parametrize("prefix", [LOG, DEBUG, "2025.04.09 21:16:28 Warning    -  ",
                                    "2025.04.09 21:16:28 Error      -  ",
                                    "2025.04.09 21:16:28 Exception  -  "])
def test_every_level_word(prefix: str) -> None:
    assert one(prefix + "[Behaviour] OnLeftRoom") == {"type": "world_leave"}


def test_lines_not_at_a_line_start_give_nothing() -> None:
    parser = BuiltinParser()
    for line in ["[Behaviour] OnLeftRoom",  # no header
                 "   at VRC.Core.ApiWorld.Fetch () [0x00000] in <abc>:0 [Behaviour] OnLeftRoom",
                 DEBUG + "Exception: x [Behaviour] OnPlayerJoined Night Owl (usr_1)",
                 "2025.04.09 21:16:28 Debug -  [Behaviour] OnLeftRoom",  # not VRChat's padding
                 "2025.04.09 21:16:28 Info       -  [Behaviour] OnLeftRoom"]:
        assert parser.call(line) == [], line
    assert parser.find_events(["[Behaviour] OnLeftRoom", DEBUG + "[Behaviour] OnLeftRoom"]) == ([
        (1, parser.call(DEBUG + "[Behaviour] OnLeftRoom"))], 0)


@pytest.mark.parametrize(("instance", "details"), [
    ("12345", {"instance_type": "public", "region": "us"}),
    ("12345~region(jp)", {"instance_type": "public", "region": "jp"}),
    ("1~hidden(usr_a)~region(eu)~nonce(x)", {"instance_type": "friends+", "region": "eu",
                                             "owner_id": "usr_a"}),
    ("1~friends(usr_a)~region(use)", {"instance_type": "friends", "region": "use", "owner_id": "usr_a"}),
    ("1~private(usr_a)~canRequestInvite~region(jp)", {"instance_type": "invite+", "region": "jp",
                                                     "owner_id": "usr_a"}),
    ("1~private(usr_a)~nonce(n)", {"instance_type": "invite", "region": "us", "owner_id": "usr_a"}),
    ("1~group(grp_1)~groupAccessType(public)~region(jp)", {"instance_type": "group public", "region": "jp",
                                                           "owner_id": "grp_1"}),
    ("1~group(grp_1)~groupAccessType(plus)", {"instance_type": "group+", "region": "us",
                                              "owner_id": "grp_1"}),
    ("1~group(grp_1)~groupAccessType(members)", {"instance_type": "group", "region": "us",
                                                 "owner_id": "grp_1"}),
    ("1~private(usr_a", {"instance_type": "invite", "region": "us", "owner_id": "usr_a"}),  # truncated
])
def test_world_join_instance(instance: str, details: dict[str, str]) -> None:
    line = DEBUG + f"[Behaviour] Joining wrld_4432ea9b-729c:{instance} extra words"
    assert one(line) == {"type": "world_join", "world_id": "wrld_4432ea9b-729c", "instance_id": instance,
                         "data": details}


def test_world_join_by_name_and_players() -> None:
    assert one(LOG + "[Behaviour] Entering Room: Ｔｈｅ ワールド (v2)  ") == {
        "type": "world_join", "world_name": "Ｔｈｅ ワールド (v2)"}
    assert one(DEBUG + "[Behaviour] OnPlayerJoined Mr (Big) Owl (usr_1-a)") == {
        "type": "player_join", "player_name": "Mr (Big) Owl", "player_id": "usr_1-a"}
    assert one(DEBUG + "[Behaviour] OnPlayerLeft ダニエル (usr_") == {  # truncated
        "type": "player_left", "player_name": "ダニエル (usr_"}
    assert BuiltinParser().call(DEBUG + "[Behaviour] OnPlayerLeftRoom") == []
    assert one(LOG + "[Behaviour] Joining or Creating Room: Lounge") == {  # until ~2023
        "type": "world_join", "world_name": "Lounge"}


def test_avatar_change() -> None:
    assert one(DEBUG + "[Behaviour] Switching Zoë (the 2nd) to avatar 狐 Fox (Quest)") == {
        "type": "avatar_change", "player_name": "Zoë (the 2nd)", "data": {"avatar_name": "狐 Fox (Quest)"}}
    assert BuiltinParser().call(DEBUG + "[Behaviour] Switching Zoë") == []  # truncated


def test_video_play_and_error() -> None:
    assert one(DEBUG + "[Video Playback] Attempting to resolve URL 'https://youtu.be/x?t=1'") == {
        "type": "video_play", "data": {"url": "https://youtu.be/x?t=1"}}
    assert one(LOG + "[USharpVideo] Started video load for URL: https://a.b/c, requested by Ann, Bo") == {
        "type": "video_play", "data": {"url": "https://a.b/c", "requested_by": "Ann, Bo"}}
    assert one(LOG + "[USharpVideo] Started video load for URL: https://a.b/c") == {
        "type": "video_play", "data": {"url": "https://a.b/c"}}
    assert one("2025.04.09 21:16:28 Error      -  [Video Playback] ERROR: Video unavailable") == {
        "type": "video_error", "data": {"message": "Video unavailable"}}
    assert one(DEBUG + "[AVProVideo] Error: Loading failed.  File not found") == {
        "type": "video_error", "data": {"message": "Loading failed.  File not found"}}


def test_screenshot() -> None:
    assert one(DEBUG + "[VRC Camera] Took screenshot to: C:\\Users\\ダニエル\\Pictures\\VRChat\\a b.png") == {
        "type": "screenshot", "data": {"path": "C:\\Users\\ダニエル\\Pictures\\VRChat\\a b.png"}}


NOTE = ("Received Notification: <Notification from username:{name}, sender user id:usr_1-a to usr_2-b of "
        "type: {kind}, id: not_9, created at: 06/17/2025 18:28:11 UTC, details: {details}, type:{kind}, "
        "m seen:False, message: \"hi, there\">")


@pytest.mark.parametrize("api", ["[API] ", ""])
def test_notification(api: str) -> None:
    invite = NOTE.format(name="Ann, the 2nd (JP)", kind="invite",
                         details="{{worldId=wrld_1:42~region(jp), worldName=Pug, Inc.}}")
    assert one(DEBUG + api + invite) == {
        "type": "notification", "player_name": "Ann, the 2nd (JP)", "player_id": "usr_1-a",
        "world_id": "wrld_1", "world_name": "Pug, Inc.", "instance_id": "42~region(jp)",
        "data": {"notification_type": "invite", "id": "not_9"}}
    request = NOTE.format(name="ダニエル", kind="friendRequest", details="{{}}")
    assert one(DEBUG + api + request) == {
        "type": "notification", "player_name": "ダニエル", "player_id": "usr_1-a",
        "data": {"notification_type": "friendRequest", "id": "not_9"}}
    truncated = invite[:invite.index(" of type")]
    assert one(DEBUG + api + truncated) == {"type": "notification", "player_name": "Ann, the 2nd (JP)",
                                            "player_id": "usr_1-a"}


def test_stickers_portals_votes_kicks() -> None:
    assert one(DEBUG + "[StickersManager] User usr_1-a (Ann (JP)) spawned sticker inv_2") == {
        "type": "sticker_spawn", "player_name": "Ann (JP)", "player_id": "usr_1-a",
        "data": {"sticker_id": "inv_2"}}
    assert BuiltinParser().call(DEBUG + "[StickersManager] User usr_1-a (Ann") == []  # truncated
    assert one(DEBUG + "[Behaviour] Instantiated a (Clone [800004] Portals/PortalInternalDynamic)") == {
        "type": "portal_spawn", "data": {"object": "Portals/PortalInternalDynamic"}}
    assert BuiltinParser().call(DEBUG + "[Behaviour] Instantiated a (Clone [1] Pens/Pen)") == []
    vote = "[ModerationManager] A vote kick has been initiated against Bo, Jr., do you agree?"
    assert one(DEBUG + vote) == {"type": "vote_kick", "player_name": "Bo, Jr."}
    assert one(DEBUG + "[Behaviour] Received executive message: You have been kicked from the instance") == {
        "type": "kicked", "data": {"message": "You have been kicked from the instance"}}
    assert one(DEBUG + "[Behaviour] Received executive message: Be nice") == {  # not a kick
        "type": "executive_message", "data": {"message": "Be nice"}}


def test_join_failed_instance_reset_app_quit() -> None:
    assert one(DEBUG + "[Behaviour] Failed to join instance 'wrld_1:42~region(jp)' due to 'It's full'") == {
        "type": "join_failed", "world_id": "wrld_1", "instance_id": "42~region(jp)",
        "data": {"reason": "It's full"}}
    assert one(DEBUG + "[Behaviour] Failed to join instance 'wrld_1:42") == {  # truncated
        "type": "join_failed", "world_id": "wrld_1", "instance_id": "42"}
    assert one(DEBUG + "[ModerationManager] This instance will be reset in 60 minutes due to its age.") == {
        "type": "instance_reset", "data": {"minutes": "60"}}
    assert one(LOG + "VRCApplication: OnApplicationQuit at 3601.52") == {
        "type": "app_quit", "data": {"at": "3601.52"}}


@pytest.mark.parametrize("kind", BUILTIN_TYPES, ids=lambda t: t.name)
def test_each_type_documented_example_gives_its_fields(kind: object) -> None:
    from vrclog_cli.vrchat.event_types import EventType

    assert isinstance(kind, EventType)
    event = one(kind.example)
    assert event["type"] == kind.name
    given_fields = {k for k in event if k != "type"} - {"data"}
    given_fields |= {f"data.{k}" for k in event.get("data", {})}  # type: ignore[attr-defined]
    assert given_fields <= set(kind.fields), given_fields - set(kind.fields)
    json.dumps(event)


@pytest.mark.skipif(not hasattr(__import__("time"), "tzset"), reason="POSIX: TZ set at run time")
@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/St_Johns", "Australia/Lord_Howe", "Asia/Tokyo"])
@pytest.mark.posix  # TZ and time.tzset
def test_timestamps_across_offset_changes(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-hour offsets are a shortcut: every minute of days with DST changes (Lord Howe's
    is half an hour) matches what datetime gives for that minute."""
    import time
    from datetime import date, timedelta

    from vrclog_cli.vrchat import builtin

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        builtin._convert_minute.cache_clear()
        builtin._hour.cache_clear()
        for day in (date(2024, 3, 30), date(2024, 3, 31), date(2024, 4, 6), date(2024, 4, 7),
                    date(2024, 10, 6), date(2024, 10, 27), date(2024, 11, 3)):
            for minute in range(0, 24 * 60, 1):
                when = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
                line = when.strftime("%Y.%m.%d %H:%M:") + "07 Log        -  x"
                assert local_timestamp(line) == reference_timestamp(line), line
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
        builtin._convert_minute.cache_clear()
        builtin._hour.cache_clear()


@pytest.mark.parametrize("message", [
    "[String Download] Attempting to load String from URL 'https://x.test/a.txt",  # cut before the quote
    "[Image Download] Attempting to load image from URL ''",
    "[Video Playback] URL 'https://a.test' resolved to 'https://b.test",
    "[Video Playback] URL '' resolved to 'https://b.test'",
    "[ModerationManager] Vote to kick Night Owl",
    "User Night Owl added URL ",
    "User Authenticated: Night Owl",  # no id: not the login line
    "VR Disabled for now",
    "[API] [x] Sending Get request to https://api.test",
    "[Always] uSpeak: SetInputDevice 0 (2 total) 'Mic",
    "[Network Processing] RPC invoked ConfigurePortal on (Clone [1] Pens/Pen) for Ann",
    "[Behaviour] Will execute SendRPC/AlwaysBufferOne on (Clone [1] Portals/P) (x) for Ann: S: \"Draw\"",
    "[Behaviour] OnPlayerJoined:Unnamed",
    "[Behaviour] OnPlayerLeftRoom",
    "[Behaviour] Successfully left room",
])
def test_cut_or_other_lines_of_the_new_shapes_give_nothing(message: str) -> None:
    assert BuiltinParser().call(DEBUG + message) == []


def test_the_shapes_of_other_eras() -> None:
    assert one(LOG + "[NetworkManager] OnPlayerJoined Rize♡") == {
        "type": "player_join", "player_name": "Rize♡"}
    assert one(LOG + "[RoomManager] Joining wrld_1:2~region(jp)") == {
        "type": "world_join", "world_id": "wrld_1", "instance_id": "2~region(jp)",
        "data": {"instance_type": "public", "region": "jp"}}
    assert one(LOG + "VRCApplication: HandleApplicationQuit at 936.5161") == {
        "type": "app_quit", "data": {"at": "936.5161"}}
    assert one(LOG + "[API] Received Notification: < Notification from username:Ann, sender user id:usr_1 to "
                     "of type: friendRequest, id: not_2, created at: x") == {
        "type": "notification", "player_name": "Ann", "player_id": "usr_1",
        "data": {"notification_type": "friendRequest", "id": "not_2"}}
    assert one(LOG + "User Ann (JP) added URL https://v.test/1") == {
        "type": "video_play", "data": {"url": "https://v.test/1", "requested_by": "Ann (JP)"}}
    assert one(DEBUG + "[API] [7] Sending Post request to https://api.test/x?y=1") == {
        "type": "api_request", "data": {"request_id": "7", "method": "Post", "url": "https://api.test/x?y=1"}}


@pytest.mark.parametrize(("instance", "kind"), [
    ("1~region(jp)~private(usr_a)~canRequestInvite", "invite+"),
    ("1~canRequestInvite~private(usr_a)", "invite+"),
    ("1~groupAccessType(plus)~group(grp_a)", "group+"),
    ("1~nonce(x)~group(grp_a)~groupAccessType(members)~region(eu)", "group"),
    ("1~public(usr_a)", "public"),
])
def test_instance_tags_in_any_order(instance: str, kind: str) -> None:
    from vrclog_cli.vrchat.builtin import instance_details

    assert instance_details(instance)["instance_type"] == kind


@given(st.lists(st.text("ab .(", max_size=4), max_size=8), st.text("ab .(", max_size=6))
@example(["a", "ab", "abc", "b"], "abd")
@example([], "a")
def test_the_prefix_trie_matches_the_longest_prefix_a_text_starts_with(prefixes: list[str],
                                                                       text: str) -> None:
    """_trie's pattern against the reference: every prefix tried, the longest kept."""
    from vrclog_cli.vrchat.builtin import _trie

    found = re.compile(_trie(prefixes), re.S).match(text)
    starts = [prefix for prefix in prefixes if text.startswith(prefix)]
    if not prefixes:
        assert found is not None and found.group() == ""  # an empty pattern: as before
    else:
        assert (found.group() if found else None) == (max(starts, key=len) if starts else None)
