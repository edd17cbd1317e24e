"""Folding events into visits (vrchat/sessions.py): each rule with a hand-written case.

Times here carry their offset (as the built-in parser completes them), except
where the local zone is the point (summer time's end, with TZ set).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import SAMPLE_LOGS, vrclog
from vrclog_cli import Event, VisitFolder, parse_files, people_met, sessions
from vrclog_cli.vrchat.sessions import Visit

ME = ("Paper Crane", "usr_me")
OWL = ("Night Owl", "usr_owl")
DAN = ("ダニエル", "usr_dan")


def at(clock: str, day: str = "2025-11-28", offset: str = "+09:00") -> str:
    return f"{day}T{clock}{offset}"


def join(clock: str, world: str = "wrld_a", instance: str = "1~region(jp)", name: str | None = "A",
         day: str = "2025-11-28", **data: str) -> list[Event]:
    """The two events of one join: the instance, then (4 s later in VRChat's logs: here the
    same second) the world's name."""
    events = [Event("world_join", at(clock, day), world_id=world, instance_id=instance,
                    data={"instance_type": "public", "region": "jp", **data})]
    if name is not None:
        events.append(Event("world_join", at(clock, day), world_name=name))
    return events


def player(kind: str, clock: str, who: tuple[str, str | None], day: str = "2025-11-28") -> Event:
    return Event(kind, at(clock, day), player_name=who[0], player_id=who[1])


def fold(events: list[Event]) -> list[dict[str, Any]]:
    return [v.to_dict() for v in sessions(events)]


def brief(visit: dict[str, Any]) -> tuple[Any, ...]:
    """What a case checks: world, start and end clocks, seconds, why it ended, open."""
    return (visit["world_name"], visit["start"][11:19], visit["end"][11:19], visit["duration_s"],
            visit["end_reason"], visit["open"])


def overlaps(visit: dict[str, Any]) -> dict[str, tuple[int, int, str | None]]:
    return {p["name"]: (p["overlap_s"], p["stays"], p["left"] and p["left"][11:19]) for p in visit["players"]}


def test_a_visit_from_join_to_leave_with_each_players_overlap() -> None:
    events = [*join("21:00:00"), player("player_join", "21:00:05", OWL),
              player("player_join", "21:00:06", DAN), player("player_left", "21:10:00", DAN),
              Event("world_leave", at("21:30:00")),
              player("player_left", "21:30:01", OWL)]  # VRChat empties the room after you left
    [visit] = fold(events)
    assert brief(visit) == ("A", "21:00:00", "21:30:00", 1800, "world_leave", False)
    assert visit["world_id"] == "wrld_a" and visit["instance_type"] == "public" and visit["region"] == "jp"
    assert visit["location"] == "wrld_a:1~region(jp)"
    # Night Owl from 21:00:05 to the end (never left while you were there); Daniel 21:00:06-21:10.
    assert overlaps(visit) == {"Night Owl": (1795, 1, None), "ダニエル": (594, 1, "21:10:00")}


def test_a_player_who_leaves_and_comes_back_overlaps_for_both_stays() -> None:
    events = [*join("21:00:00"), player("player_join", "21:00:00", OWL),
              player("player_left", "21:10:00", OWL),
              player("player_join", "21:20:00", OWL), player("player_join", "21:20:01", OWL),  # a repeat
              Event("world_leave", at("21:30:00"))]
    [visit] = fold(events)
    assert overlaps(visit) == {"Night Owl": (600 + 600, 2, None)}


def test_the_next_join_ends_a_visit_and_rejoining_the_same_instance_is_a_new_visit() -> None:
    events = [*join("21:00:00"), *join("21:20:00", name="B", world="wrld_b"),
              Event("world_leave", at("21:30:00")), *join("21:31:00", name="B", world="wrld_b"),
              Event("app_quit", at("21:40:00"), data={"at": "1"})]
    assert [brief(v) for v in fold(events)] == [
        ("A", "21:00:00", "21:20:00", 1200, "next_join", False),
        ("B", "21:20:00", "21:30:00", 600, "world_leave", False),
        ("B", "21:31:00", "21:40:00", 540, "app_quit", False)]


def test_a_visit_across_midnight_keeps_its_days() -> None:
    events = [*join("23:50:00"), player("player_join", "23:55:00", OWL),
              Event("world_leave", at("00:20:00", day="2025-11-29"))]
    [visit] = fold(events)
    assert visit["start"] == "2025-11-28T23:50:00+09:00" and visit["end"] == "2025-11-29T00:20:00+09:00"
    assert visit["duration_s"] == 1800 and overlaps(visit) == {"Night Owl": (1500, 1, None)}


def test_a_crash_leaves_the_visit_open_at_the_logs_last_event() -> None:
    events = [*join("21:00:00"), player("player_join", "21:00:05", OWL),
              Event("video_error", at("21:44:00"), data={"message": "Video unavailable"})]
    [visit] = fold(events)
    assert brief(visit) == ("A", "21:00:00", "21:44:00", 2640, "end_of_log", True)
    assert overlaps(visit) == {"Night Owl": (2635, 1, None)}


def test_a_new_file_ends_the_last_files_visit() -> None:
    """With provenance (the CLI passes each line's file), a log's end is where its file ends."""
    folder = VisitFolder()
    done: list[Visit] = []
    for event in join("21:00:00"):
        done += folder.add(event, "output_log_1.txt")
    done += folder.add(Event("avatar_change", at("21:05:00")), "output_log_1.txt")
    for event in join("22:00:00", name="B"):
        done += folder.add(event, "output_log_2.txt")
    done += folder.finish()
    assert [(v.world_name, v.end_reason, v.duration, v.source) for v in done] == [
        ("A", "end_of_log", timedelta(minutes=5), "output_log_1.txt"),
        ("B", "end_of_log", timedelta(0), "output_log_2.txt")]


def test_a_new_login_in_one_stream_of_events_is_a_new_run_of_vrchat() -> None:
    """Logs concatenated without their file names: VRChat's login line starts each."""
    events = [Event("user_authenticated", at("20:59:00"), player_name=ME[0], player_id=ME[1]),
              *join("21:00:00"), Event("screenshot", at("21:03:00"), data={"path": "a.png"}),
              Event("user_authenticated", at("22:00:00"), player_name=ME[0], player_id=ME[1]),
              Event("osc_failed", at("22:00:01")),
              Event("join_failed", at("22:00:30"), data={"reason": "full"}),  # the new run's
              *join("22:01:00", name="B"), Event("app_quit", at("22:02:00")),
              Event("user_authenticated", at("23:00:00"), player_name=ME[0], player_id=ME[1]),
              Event("join_failed", at("23:00:30"), data={"reason": "closed"}),  # not B's: a new run
              *join("23:01:00", name="C"), Event("world_leave", at("23:02:00"))]
    visits = fold(events)
    assert [brief(v) for v in visits] == [
        ("A", "21:00:00", "21:03:00", 180, "end_of_log", True),
        ("B", "22:01:00", "22:02:00", 60, "app_quit", False),
        ("C", "23:01:00", "23:02:00", 60, "world_leave", False)]
    assert [[n["detail"] for n in v["notable"]] for v in visits] == [[], ["full"], ["closed"]]


def test_vrchat_2020_names_the_world_before_the_instance_and_twice() -> None:
    events = [Event("world_join", at("20:01:05"), world_name="Harbour"),
              *join("20:01:05", name=None, world="wrld_h", instance="31337~private(usr_x)"),
              Event("world_join", at("20:01:05"), world_name="Harbour"),  # Joining or Creating Room
              player("player_join", "20:01:06", ("Mika", None)),
              Event("world_leave", at("20:09:59"))]
    [visit] = fold(events)
    assert brief(visit) == ("Harbour", "20:01:05", "20:09:59", 534, "world_leave", False)
    assert visit["world_id"] == "wrld_h" and visit["players"][0]["id"] is None


def test_you_are_told_apart_by_id_or_by_name_where_the_log_has_no_ids() -> None:
    events = [Event("user_authenticated", at("20:59:00"), player_name=ME[0], player_id=ME[1]),
              *join("21:00:00"), player("player_join", "21:00:01", ME),
              player("player_join", "21:00:02", OWL),
              player("player_join", "21:00:03", ("Paper Crane", "usr_someone_else")),  # same name, not you
              Event("world_leave", at("21:10:00"))]
    [visit] = list(sessions(events))
    assert [(p["name"], p["id"], p["you"]) for p in visit.to_dict()["players"]] == [
        ("Paper Crane", "usr_me", True), ("Night Owl", "usr_owl", False),
        ("Paper Crane", "usr_someone_else", False)]
    assert [p["id"] for p in people_met([visit])] == ["usr_owl", "usr_someone_else"]
    old = [Event("user_authenticated", at("20:59:00"), player_name="Paper Crane"),
           *join("21:00:00"), player("player_join", "21:00:01", ("Paper Crane", None)),
           Event("world_leave", at("21:10:00"))]
    assert [p["you"] for p in fold(old)[0]["players"]] == [True]


def test_videos_screenshots_and_notable_events_go_with_their_visit() -> None:
    events = [Event("join_failed", at("20:59:00"), data={"reason": "That instance is full"}),  # before any
              *join("21:00:00"),
              Event("video_play", at("21:01:00"), data={"url": "https://v/1", "requested_by": "Night Owl"}),
              Event("video_play", at("21:01:00"), data={"url": "https://v/1"}),  # the resolver's line
              Event("video_play", at("21:30:00"), data={"url": "https://v/1"}),  # played again later
              Event("screenshot", at("21:02:00"), data={"path": "C:\\a.png"}),
              Event("vote_kick", at("21:03:00"), player_name="Troll"),
              Event("kicked", at("21:04:00"), data={"message": "You have been kicked"}),
              Event("world_leave", at("21:40:00")),
              # between two visits: with the one before
              Event("join_failed", at("21:41:00"), data={"reason": "closed"}),
              *join("21:45:00", name="B"), Event("app_quit", at("21:50:00"))]
    first, second = fold(events)
    assert first["videos"] == [
        {"timestamp": at("21:01:00"), "url": "https://v/1", "requested_by": "Night Owl"},
        {"timestamp": at("21:30:00"), "url": "https://v/1", "requested_by": None}]
    assert first["screenshots"] == [{"timestamp": at("21:02:00"), "path": "C:\\a.png"}]
    assert [(n["type"], n["detail"]) for n in first["notable"]] == [
        ("join_failed", "That instance is full"), ("vote_kick", "Troll"),
        ("kicked", "You have been kicked"), ("join_failed", "closed")]
    assert second["notable"] == []


def test_events_without_a_time_are_left_out_and_json_objects_fold_as_events_do() -> None:
    events = [*join("21:00:00"), Event("player_join", None, player_name="Ghost"),
              player("player_join", "21:00:01", OWL), Event("world_leave", at("21:10:00"))]
    as_json = [json.loads(json.dumps(e.to_dict())) for e in events]
    assert fold(events) == [v.to_dict() for v in sessions(as_json)]
    assert [p["name"] for p in fold(events)[0]["players"]] == ["Night Owl"]


def test_json_objects_with_a_source_end_a_visit_where_their_file_ends() -> None:
    def located(events: list[Event], file: str) -> list[dict[str, Any]]:
        return [{**e.to_dict(), "source": {"file": file, "line": 1, "offset": 0}} for e in events]

    first, second = located(join("21:00:00"), "one.txt"), located(join("22:00:00"), "two.txt")
    assert [(v.source, v.end_reason) for v in sessions([*first, *second])] == [
        ("one.txt", "end_of_log"), ("two.txt", "end_of_log")]


@pytest.fixture
def berlin() -> Iterator[None]:
    """The local zone Europe/Berlin (summer time ends 2025-10-26 03:00 CEST -> 02:00 CET)."""
    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset (POSIX) to change the local zone")
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_the_hour_that_summer_times_end_repeats_is_counted_once_each_time(berlin: None) -> None:
    """VRChat writes local time: 02:30, 02:50, then 02:10 again (an hour later), 02:40.
    The parser gives each the first reading (+02:00); the fold takes a time that runs
    backwards in that hour as the repeat (+01:00)."""
    day = "2025-10-26"
    events = [*join("02:30:00", day=day), player("player_join", "02:50:00", OWL, day=day),
              Event("player_left", at("02:10:00", day, "+02:00"), player_name=OWL[0], player_id=OWL[1]),
              Event("world_leave", at("02:40:00", day, "+02:00"))]
    for event in events:
        event.timestamp = (event.timestamp or "")[:19] + "+02:00"
    [visit] = fold(events)
    assert visit["start"] == "2025-10-26T02:30:00+02:00" and visit["end"] == "2025-10-26T02:40:00+01:00"
    assert visit["duration_s"] == 70 * 60
    assert overlaps(visit) == {"Night Owl": (20 * 60, 1, "02:10:00")}


def test_the_hour_that_summer_time_skips_takes_no_time(berlin: None) -> None:
    """2025-03-30: 01:59 CET, then 03:00 CEST a minute later."""
    events = [Event("world_join", "2025-03-30T01:50:00+01:00", world_id="wrld_a", instance_id="1"),
              Event("world_leave", "2025-03-30T03:10:00+02:00")]
    [visit] = fold(events)
    assert visit["duration_s"] == 20 * 60


# --- the sample folder: three logs, every case at once, expected values worked out by hand ---

#: sample_logs/sessions/, read in UTC: (world, start, end, seconds, why it ended, open,
#: {person: (overlap seconds, stays, left)}, videos, screenshots, notable types).
SAMPLE_VISITS = [
    ("Paper Crane's Home", "2025-11-28T21:40:20", "2025-11-28T21:58:40", 1100, "world_leave", False,
     {"Paper Crane": (1095, 1, None)}, 0, 0, []),
    # across midnight; Night Owl leaves for 15 minutes; the OnPlayerLeft after OnLeftRoom is not a leave
    ("The Great Pug", "2025-11-28T22:05:00", "2025-11-29T00:40:00", 9300, "world_leave", False,
     {"Paper Crane": (9295, 1, None), "Night Owl": (5094 + 3300, 2, None),
      "ダニエル": (6804, 1, "23:58:30"), "Mika the Otter": (8400, 1, None)}, 1, 1, ["instance_reset"]),
    ("Midnight Rooftop", "2025-11-29T00:41:10", "2025-11-29T01:15:00", 2030, "app_quit", False,
     {"Paper Crane": (2025, 1, None), "Ann": (2024, 1, None), "Mika the Otter": (1244, 1, "01:02:00")},
     0, 0, []),
    # the second log: a join with no OnLeftRoom before it, then a crash (no quit line)
    ("Moon Garden ☾", "2025-11-29T20:03:10", "2025-11-29T20:50:02", 2812, "next_join", False,
     {"Paper Crane": (2807, 1, None), "Night Owl": (2807, 1, None)}, 0, 0, ["join_failed"]),
    ("Harbour Tea House", "2025-11-29T20:50:02", "2025-11-29T21:29:59", 2397, "end_of_log", True,
     {"Paper Crane": (2392, 1, None), "ダニエル": (2391, 1, None)}, 0, 0, ["vote_kick", "video_error"]),
    # the third: the same instance again, left and rejoined a minute later
    ("Harbour Tea House", "2025-11-30T19:00:20", "2025-11-30T19:20:00", 1180, "world_leave", False,
     {"Paper Crane": (1175, 1, None), "Ann": (1175, 1, None)}, 0, 0, []),
    ("Harbour Tea House", "2025-11-30T19:21:05", "2025-11-30T19:40:00", 1135, "app_quit", False,
     {"Paper Crane": (1130, 1, None), "Ann": (1130, 1, None)}, 0, 0, []),
]
#: Most time together first, without you: Night Owl 8394 + 2807, Mika 8400 + 1244,
#: Daniel 6804 + 2391, Ann 2024 + 1175 + 1130.
SAMPLE_PEOPLE = [("Night Owl", 11201, 2), ("Mika the Otter", 9644, 2), ("ダニエル", 9195, 2),
                 ("Ann", 4329, 3)]


def sample_brief(visit: dict[str, Any]) -> tuple[Any, ...]:
    return (visit["world_name"], visit["start"][:19], visit["end"][:19], visit["duration_s"],
            visit["end_reason"], visit["open"], overlaps(visit), len(visit["videos"]),
            len(visit["screenshots"]), [n["type"] for n in visit["notable"]])


def test_the_sample_folder_through_the_command(tmp_path: Any) -> None:
    done = vrclog("sessions", "--log-dir", SAMPLE_LOGS / "sessions", "--format", "jsonl", env={"TZ": "UTC0"})
    assert done.returncode == 0, done.stderr
    visits = [json.loads(line) for line in done.stdout.splitlines()]
    assert [sample_brief(v) for v in visits] == SAMPLE_VISITS
    assert all(v["start"].endswith("+00:00") for v in visits)
    assert visits[0]["source"].endswith("output_log_2025-11-28_21-40-12.txt")


def test_the_sample_folder_through_the_library() -> None:
    """parse_files with provenance gives each event its file: the same visits."""
    logs = sorted((SAMPLE_LOGS / "sessions").glob("output_log_*.txt"))
    visits = list(sessions(parse_files(logs, provenance=True)))
    got = [sample_brief(v.to_dict()) for v in visits]
    # the local zone here may not be UTC: compare the wall clocks, which the log wrote
    assert [(g[0], g[1][11:], g[2][11:], *g[3:]) for g in got] == \
        [(s[0], s[1][11:], s[2][11:], *s[3:]) for s in SAMPLE_VISITS]
    assert [(p["name"], p["overlap_s"], p["visits"]) for p in people_met(visits)] == SAMPLE_PEOPLE


def test_a_dask_bags_records_fold_into_the_same_visits() -> None:
    """parse_bag's records name their file ("source"): one partition per log, as read_text makes."""
    dask_bag = pytest.importorskip("dask.bag")
    from vrclog_cli.dask import events_of, parse_bag

    logs = sorted((SAMPLE_LOGS / "sessions").glob("output_log_*.txt"))
    lines = dask_bag.read_text([str(p) for p in logs], include_path=True)
    records = events_of(parse_bag(lines)).compute(scheduler="sync")  # type: ignore[no-untyped-call]
    expected = [v.to_dict() for v in sessions(parse_files(logs, provenance=True))]
    got = [v.to_dict() for v in sessions(records)]
    assert [(v["world_name"], v["start"], v["end_reason"]) for v in got] == \
        [(v["world_name"], v["start"], v["end_reason"]) for v in expected]
    assert [v["players"] for v in got] == [v["players"] for v in expected]


#: sample_logs/eras/, one visit each, timed by hand as VRCX's game log times them: a location
#: from its `Joining` line to the next location, OnLeftRoom or quit; a player from their join
#: to their leave or the location's end.  (world, seconds, why it ended, {player: seconds}).
ERA_VISITS = {
    "2020-sdk2.log": ("Harbour Tea House", 534, "world_leave",  # 20:01:05 to 20:09:59
                      {"Mika the Otter": 530, "小鳥 (Kotori)": 289}),
    "2021-2022.log": ("Ｍｏｏｎ Garden ☾", 724, "app_quit",  # no OnLeftRoom: the quit at 12:15:00
                      {"Mika the Otter": 719, "Captain [Bracket] (Hook)": 460}),
    "2023-2024.log": ("Pier 39 ~ Night", 662, "world_leave",  # a line at 13:37:69 is no time at all
                      {"Mika the Otter": 656, "Ünïcødé Ñame ★": 441}),
    "2025.log": ("夜の図書館 (Night Library)", 278, "world_leave",  # the leave after OnLeftRoom is none
                 {"Mika the Otter": 273, "A (B) C": 248}),
}


@pytest.mark.parametrize("era", sorted(ERA_VISITS))
def test_every_era_of_vrchats_log_gives_the_visit_vrcx_would_time(era: str) -> None:
    [visit] = [v.to_dict() for v in sessions(parse_files([SAMPLE_LOGS / "eras" / era], provenance=True))]
    world, seconds, reason, people = ERA_VISITS[era]
    assert (visit["world_name"], visit["duration_s"], visit["end_reason"]) == (world, seconds, reason)
    assert {p["name"]: p["overlap_s"] for p in visit["players"]} == people
