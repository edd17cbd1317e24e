"""Visits: the built-in parser's events folded into stays in one instance (design.md section 12).

The parser reads each line on its own; what VRCX and the other players' tools work
out from the lines before (where you were, who was there, for how long) is folded
here, from any iterable of events in log order: the CLI's run, JSON Lines read
back, SQLite rows, a Dask bag's records.

The rules, each pinned by a hand-written case in tests/test_sessions.py:
- A visit starts at a ``world_join``. VRChat writes a join as two lines (the
  instance, then the world's name; before 2021 the name first): the second fills
  the visit the first began, as long as nobody has joined it yet.
- It ends at the next join (``next_join``), at ``world_leave``, at ``app_quit``,
  or where its log ends (``end_of_log``: the log's last event, a crash or a log
  cut short; such a visit is ``open``). A new log file, or a new login
  (``user_authenticated``) in one stream of events, is where the log ended.
- Players, videos, screenshots and notable events go with the visit they happen
  in. Between two visits (after a leave, before the next join) they go with the
  visit before; before a log's first visit, with its first.
- Times are the events' RFC 3339 times, so midnight and several files need
  nothing special. In the hour that a change from summer time repeats, VRChat's
  local times repeat too: a time that runs backwards within a log and is such a
  repeated local time is taken as its second occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from ..events import Event
from ..records import field, record

#: Why a visit ended.
NEXT_JOIN, WORLD_LEAVE, APP_QUIT, END_OF_LOG = "next_join", "world_leave", "app_quit", "end_of_log"

#: Event types a visit lists as notable, with the field that says what happened.
NOTABLE: dict[str, str] = {
    "kicked": "message", "vote_kick": "player_name", "vote_kick_succeeded": "player_name",
    "join_failed": "reason", "join_blocked": "message", "instance_closed": "message",
    "instance_reset": "minutes", "executive_message": "message", "video_error": "message",
    "udon_exception": "message",
}


#: Two starts of the same URL this close are one play: a video player's line and VRChat's
#: resolver's line tell the same one (the sample log's USharpVideo play).
SAME_VIDEO = timedelta(seconds=10)


@record
class Person:
    """A player in one visit: each stay from their join to their leave (None: still there
    when the visit ended)."""

    name: str | None
    id: str | None
    stays: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    you: bool = False

    def overlap(self, start: datetime, end: datetime) -> timedelta:
        """How long they were there while you were (a visit's start to its end)."""
        total = timedelta()
        for joined, left in self.stays:
            span = min(left or end, end) - max(joined, start)
            if span > timedelta():
                total += span
        return total


@record
class Visit:
    """One stay in one instance."""

    start: datetime
    world_id: str | None = None
    world_name: str | None = None
    instance_id: str | None = None
    instance_type: str | None = None
    region: str | None = None
    owner_id: str | None = None
    end: datetime | None = None
    end_reason: str | None = None
    #: The log the visit is in, when the events say (``Event.source``, the CLI's runs).
    source: str | None = None
    people: dict[str, Person] = field(default_factory=dict)
    videos: list[dict[str, Any]] = field(default_factory=list)
    screenshots: list[dict[str, Any]] = field(default_factory=list)
    notable: list[dict[str, Any]] = field(default_factory=list)

    @property
    def open(self) -> bool:
        """Cut off by the end of its log (a crash, or a log still being written)."""
        return self.end_reason == END_OF_LOG

    @property
    def duration(self) -> timedelta:
        return max((self.end or self.start) - self.start, timedelta())

    @property
    def location(self) -> str | None:
        """``wrld_…:instance``, as VRChat's and VRCX's links name an instance."""
        if self.world_id and self.instance_id:
            return f"{self.world_id}:{self.instance_id}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """The visit as one JSON object (the README's Sessions lists the fields)."""
        end = self.end or self.start
        return {
            "start": self.start.isoformat(), "end": end.isoformat(),
            "duration_s": seconds(self.duration), "end_reason": self.end_reason, "open": self.open,
            "world_name": self.world_name, "world_id": self.world_id,
            "instance_id": self.instance_id, "instance_type": self.instance_type,
            "region": self.region, "owner_id": self.owner_id, "location": self.location,
            "source": self.source,
            "players": [{
                "name": p.name, "id": p.id, "you": p.you,
                "joined": p.stays[0][0].isoformat(),
                "left": None if p.stays[-1][1] is None else p.stays[-1][1].isoformat(),
                "stays": len(p.stays),
                "overlap_s": seconds(p.overlap(self.start, end)),
            } for p in self.people.values()],
            "videos": self.videos, "screenshots": self.screenshots, "notable": self.notable,
        }


def seconds(span: timedelta) -> int | float:
    """Whole seconds as an int (VRChat's times have no fractions); a fraction kept."""
    whole = span.total_seconds()
    return int(whole) if whole == int(whole) else round(whole, 3)


@record
class _Fold:
    """What the fold holds between events."""

    current: Visit | None = None      # the visit you are in
    previous: Visit | None = None     # the visit before, not yet handed out (events between go to it)
    waiting: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # before a log's first visit
    source: str | None = None
    last: datetime | None = None      # the log's last event's time
    you_id: str | None = None
    you_name: str | None = None


class VisitFolder:
    """Events in, visits out as they end.  ``add`` each event in log order, then ``finish``.

    A visit is handed out when the next one starts or its log ends (events between
    two visits go with the one before)."""

    def __init__(self) -> None:
        self._fold = _Fold()

    def add(self, event: Event | Mapping[str, Any], source: str | None = None) -> list[Visit]:
        """Folds one event; the visits it completes.  ``source``: the event's log (a new one
        ends the last log's visit); by default ``event.source``'s file, when it has one."""
        kind, stamp, fields, event_source = _fields(event)
        source = source if source is not None else event_source
        done: list[Visit] = []
        fold = self._fold
        if source is not None and source != fold.source:
            if fold.source is not None:
                done += self._end_log()
            fold.source = source
        if stamp is None:
            return done
        when = _instant(stamp, fold.last)
        if kind == "user_authenticated":
            if fold.current is not None or fold.previous is not None:  # VRChat started again in
                done += self._end_log()                                   # one stream: a log ended
            fold.you_id, fold.you_name = fields.get("player_id"), fields.get("player_name")
        fold.last = when if fold.last is None else max(fold.last, when)
        if kind == "world_join":
            done += self._join(when, fields)
        elif kind in ("world_leave", "app_quit"):
            if fold.current is not None:
                self._close(when, WORLD_LEAVE if kind == "world_leave" else APP_QUIT)
        elif kind in ("player_join", "player_left", "video_play", "screenshot") or kind in NOTABLE:
            visit = fold.current or fold.previous
            if visit is None:
                fold.waiting.append((kind, stamp, fields))
            else:
                _record(visit, kind, when, fields, fold.current is visit)
        return done

    def finish(self) -> list[Visit]:
        """The visits still held: the last log has ended."""
        return self._end_log()

    def _join(self, when: datetime, fields: dict[str, Any]) -> list[Visit]:
        fold = self._fold
        visit = fold.current
        data = fields.get("data") or {}
        instance = fields.get("world_id") or fields.get("instance_id")
        name = fields.get("world_name")
        # The second line of the same join fills in the visit the first began.
        if visit is not None and not visit.people and (
                (instance and visit.world_id is None and visit.instance_id is None)
                or (not instance and name and visit.world_name in (None, name))):
            if instance:
                visit.world_id, visit.instance_id = fields.get("world_id"), fields.get("instance_id")
                visit.instance_type, visit.region = data.get("instance_type"), data.get("region")
                visit.owner_id = data.get("owner_id")
            if name:
                visit.world_name = name
            return []
        if visit is not None:
            self._close(when, NEXT_JOIN)
        done = [fold.previous] if fold.previous is not None else []
        fold.previous = None
        fold.current = Visit(start=when, world_id=fields.get("world_id"), world_name=name,
                             instance_id=fields.get("instance_id"),
                             instance_type=data.get("instance_type"), region=data.get("region"),
                             owner_id=data.get("owner_id"), source=fold.source)
        for kind, stamp, waiting in fold.waiting:
            _record(fold.current, kind, _instant(stamp, None), waiting, False)
        fold.waiting.clear()
        return done

    def _close(self, when: datetime, reason: str) -> None:
        fold = self._fold
        visit = fold.current
        assert visit is not None
        visit.end, visit.end_reason = max(when, visit.start), reason
        for person in visit.people.values():  # by id; by name where the log gives no id
            person.you = (person.id is not None and person.id == fold.you_id) or (
                person.name is not None and person.name == fold.you_name
                and (person.id is None or fold.you_id is None))
        fold.current, fold.previous = None, visit

    def _end_log(self) -> list[Visit]:
        fold = self._fold
        if fold.current is not None:
            self._close(fold.last or fold.current.start, END_OF_LOG)
        done = [fold.previous] if fold.previous is not None else []
        fold.previous, fold.last = None, None
        fold.waiting.clear()
        return done


def sessions(events: Iterable[Event | Mapping[str, Any]]) -> Iterator[Visit]:
    """The visits of ``events`` (in log order), each as soon as it is over.

    Takes ``Event``s (``parse_files``, ``parse_lines``, ``database_events``) or their
    JSON objects (``vrclog parse`` output read back, a Dask bag's records).  With
    provenance (``Event.source``) a new file ends the last one's visit.
    """
    folder = VisitFolder()
    for event in events:
        yield from folder.add(event)
    yield from folder.finish()


def _fields(event: Event | Mapping[str, Any]) -> tuple[str, str | None, dict[str, Any], str | None]:
    """(type, timestamp, fields, source file) of an Event or its JSON object."""
    if isinstance(event, Event):
        fields = {"player_name": event.player_name, "player_id": event.player_id,
                  "world_id": event.world_id, "world_name": event.world_name,
                  "instance_id": event.instance_id, "data": event.data}
        return event.type, event.timestamp, fields, event.source[0] if event.source else None
    source = event.get("source")
    file = source.get("file") if isinstance(source, Mapping) else source if isinstance(source, str) else None
    return str(event.get("type")), event.get("timestamp"), dict(event), file


def _instant(stamp: str, last: datetime | None) -> datetime:
    """The event's time; a local time that runs backwards in the hour that summer time's
    end repeats is the repeat (its second occurrence)."""
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("z", "+00:00"))
    if when.tzinfo is None:
        when = when.astimezone()
    if last is not None and when < last:
        naive = when.replace(tzinfo=None)
        repeat = naive.replace(fold=1).astimezone()
        if repeat.utcoffset() != naive.replace(fold=0).astimezone().utcoffset() \
                and when.utcoffset() == naive.replace(fold=0).astimezone().utcoffset():
            return repeat
    return when


def _record(visit: Visit, kind: str, when: datetime, fields: dict[str, Any], inside: bool) -> None:
    """One player, video, screenshot or notable event into its visit (``inside``: while you
    are in it; a join or leave after you left it is VRChat emptying the room)."""
    data = fields.get("data") or {}
    if kind in ("player_join", "player_left"):
        if not inside:
            return
        name, user = fields.get("player_name"), fields.get("player_id")
        key = user or f"name:{name}"
        person = visit.people.get(key)
        if kind == "player_join":
            if person is None:
                person = visit.people[key] = Person(name, user)
            if not person.stays or person.stays[-1][1] is not None:
                person.stays.append((when, None))
        elif person is not None and person.stays[-1][1] is None:
            person.stays[-1] = (person.stays[-1][0], when)
    elif kind == "video_play":
        last = visit.videos[-1] if visit.videos else None
        if last is not None and last["url"] == data.get("url") \
                and when - datetime.fromisoformat(last["timestamp"]) <= SAME_VIDEO:
            last["requested_by"] = last["requested_by"] or data.get("requested_by")
            return  # one play that two of VRChat's lines tell (the player's, then the resolver's)
        visit.videos.append({"timestamp": when.isoformat(), "url": data.get("url"),
                             "requested_by": data.get("requested_by")})
    elif kind == "screenshot":
        visit.screenshots.append({"timestamp": when.isoformat(), "path": data.get("path")})
    else:
        key = NOTABLE[kind]
        detail = fields.get(key) if key in fields else data.get(key)
        if kind == "instance_reset" and detail is not None:
            detail = f"in {detail} minutes"
        visit.notable.append({"timestamp": when.isoformat(), "type": kind, "detail": detail})


def people_met(visits: Iterable[Visit], *, you: bool = False) -> list[dict[str, Any]]:
    """Everyone met, most time together first: name, id, seconds together, visits shared
    (without yourself unless ``you``)."""
    met: dict[str, dict[str, Any]] = {}
    for visit in visits:
        end = visit.end or visit.start
        for key, person in visit.people.items():
            if person.you and not you:
                continue
            entry = met.setdefault(key, {"name": person.name, "id": person.id, "overlap": timedelta(),
                                         "visits": 0})
            entry["name"] = person.name or entry["name"]
            entry["overlap"] += person.overlap(visit.start, end)
            entry["visits"] += 1
    ranked = sorted(met.values(), key=lambda e: (-e["overlap"], e["name"] or ""))
    return [{"name": e["name"], "id": e["id"], "overlap_s": seconds(e["overlap"]), "visits": e["visits"]}
            for e in ranked]
