"""The built-in parser for VRChat's own log lines (the default without --plugin).

A line is VRChat's when it starts with VRChat's header: the local time and the
level word padded to column 34, ``2025.04.09 21:16:28 Debug      -  ``, the
level being Log, Debug, Warning, Error or Exception.  Lines without it, such as
the continuation lines of a multi-line exception, never give events.  The
message after the header is matched by its start against ``HANDLERS`` (one
row per line shape, ``BUILTIN_TYPES`` documents each event type).

Speed: almost no line of a log is an event.  ``str.startswith`` with the tuple
of every row's prefix, at column 34, is one C call per line: only the few lines
that pass it cost any Python (see ``BuiltinParser.find_events``).  Searching
each line for each pattern instead cost ~3x as much per line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import compress, repeat

from .events import Event

#: Where the message starts: after ``YYYY.MM.DD HH:MM:SS `` (20), the level word
#: padded to 11 columns, and ``-  ``.
MESSAGE_AT = 34
LEVELS = ("Log", "Debug", "Warning", "Error", "Exception")
_LEVEL_FIELDS = frozenset(f"{level:<11}-  " for level in LEVELS)

# ASCII digits only: re's \d and str.isdigit also take other scripts' digits ("١٣"),
# which VRChat never writes and which must not end up in an RFC 3339 timestamp.
_MINUTE = re.compile(r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2})\Z", re.ASCII)
_HOUR = re.compile(r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2})\Z", re.ASCII)
_SECONDS = {f":{s:02d}": f"{s:02d}" for s in range(60)}  # the ":SS" after a minute -> "SS"


def local_timestamp(line: str) -> str | None:
    """The VRChat line's local time as RFC 3339 with the local offset."""
    seconds = _SECONDS.get(line[16:19])
    if seconds is None:
        return None
    minute = _convert_minute(line[:16])
    return None if minute is None else minute[0] + seconds + minute[1]


@functools.lru_cache(maxsize=1024)
def _convert_minute(prefix: str) -> tuple[str, str] | None:
    """("YYYY-MM-DDTHH:MM:", local offset) of a ``YYYY.MM.DD HH:MM`` prefix.

    Cached per minute, not per second: a busy log has a new second on most
    lines.  The offset is the one at the minute's start.  A new minute costs
    string slicing only when its hour has one offset throughout (see _hour).
    """
    minute = prefix[14:16]
    hour = _hour(prefix[:13]) if prefix[13:14] == ":" and minute in _MINUTES_OF_HOUR else None
    if hour is None:
        return None
    stamp, offset = hour
    if offset is not None:
        return f"{stamp}{minute}:", offset
    return _minute_slowly(prefix)  # an hour with an offset change in it (DST)


_MINUTES_OF_HOUR = frozenset(f"{m:02d}" for m in range(60))


@functools.lru_cache(maxsize=256)
def _hour(prefix: str) -> tuple[str, str | None] | None:
    """("YYYY-MM-DDTHH:", the local offset when it is the same at the hour's start and
    at the next hour's (None otherwise)) of a ``YYYY.MM.DD HH`` prefix; None when it
    is no valid time.  Two conversions an hour instead of one a minute: a busy log
    has a new minute every ~60 lines, and each conversion costs ~5 µs."""
    match = _HOUR.match(prefix)
    if match is None:
        return None
    try:
        year, month, day, hour = (int(g) for g in match.groups())
        start = datetime(year, month, day, hour)
        here = start.astimezone()  # year 1 can fall to year 0 in local time: no valid time
    except (ValueError, OverflowError):
        return None
    try:
        after = (start + timedelta(hours=1)).astimezone()
    except (OverflowError, ValueError):  # 9999-12-31 23:xx
        after = here
    stamp = here.isoformat()
    return stamp[:14], (stamp[19:] if here.utcoffset() == after.utcoffset() else None)


def _minute_slowly(prefix: str) -> tuple[str, str] | None:
    match = _MINUTE.match(prefix)
    if match is None:
        return None
    try:
        year, month, day, hour, minute = (int(g) for g in match.groups())
        stamp = datetime(year, month, day, hour, minute).astimezone().isoformat()
    except ValueError:
        return None
    return stamp[:17], stamp[19:]


def has_header(line: str) -> bool:
    """Whether the line starts with VRChat's header: ASCII (so the message starts at byte
    34 as at character 34: see RAW_PREFIXES_AT), the level field in place (the time is
    checked by local_timestamp)."""
    return line[20:MESSAGE_AT] in _LEVEL_FIELDS and line[19:20] == " " and line[:19].isascii()


# --- the line shapes --------------------------------------------------------------
# Each handler gets the line and where the text after its prefix starts, and returns
# the line's events ([] when the rest does not fit).  Event fields are positional
# (type, timestamp, player_name, player_id, world_id, world_name, instance_id, data):
# half the cost of keywords.

Handler = Callable[[str, int], list[Event]]

_USER_TAIL = re.compile(r" \((usr_[0-9A-Za-z-]+)\)\Z")
_WORLD = re.compile(r"([0-9A-Za-z-]+):(\S+)")  # after "wrld_"
_MINUTES = re.compile(r"\d+", re.ASCII)

#: The access tags of an instance string and the type VRChat's menus call them.
_GROUP_ACCESS = {"public": "group public", "plus": "group+", "members": "group"}
DEFAULT_REGION = "us"  # VRChat's default (US West) when the instance names none


def instance_details(instance: str) -> dict[str, str]:
    """``12345~private(usr_…)~canRequestInvite~region(jp)~nonce(…)`` ->
    {instance_type: invite+, region: jp, owner_id: usr_…}."""
    tags: dict[str, str] = {}
    for part in instance.split("~")[1:]:
        name, paren, value = part.partition("(")
        tags[name] = value[:-1] if paren and value.endswith(")") else value if paren else ""
    owner: str | None
    if "private" in tags:
        kind, owner = ("invite+" if "canRequestInvite" in tags else "invite"), tags["private"]
    elif "friends" in tags:
        kind, owner = "friends", tags["friends"]
    elif "hidden" in tags:
        kind, owner = "friends+", tags["hidden"]
    elif "group" in tags:
        kind, owner = _GROUP_ACCESS.get(tags.get("groupAccessType", ""), "group"), tags["group"]
    else:
        kind, owner = "public", None
    details = {"instance_type": kind, "region": tags.get("region") or DEFAULT_REGION}
    if owner:
        details["owner_id"] = owner
    return details


def _split_player(rest: str) -> tuple[str, str | None]:
    """(name, usr_ id or None) of ``NAME (usr_ID)``, as a lazy ``(.+?)`` name would split
    it: the id only when a non-empty name is left before it; a name of one character at least."""
    stripped = rest.rstrip()
    if (tail := _USER_TAIL.search(stripped)) is not None and tail.start() > 0:
        return stripped[:tail.start()], tail.group(1)
    return stripped or rest[:1], None


def _text(line: str, at: int) -> str:
    """The rest of the line from ``at``, trailing whitespace dropped."""
    return line[at:].rstrip()


def _entering_room(line: str, at: int) -> list[Event]:
    rest = line[at:]
    if not rest:
        return []
    return [Event("world_join", local_timestamp(line), None, None, None, rest.rstrip() or rest[:1])]


def _joining(line: str, at: int) -> list[Event]:
    if (m := _WORLD.match(line, at)) is None:
        return []
    instance = m.group(2)
    return [Event("world_join", local_timestamp(line), None, None, "wrld_" + m.group(1), None, instance,
                  instance_details(instance))]


def _left_room(line: str, at: int) -> list[Event]:
    return [Event("world_leave", local_timestamp(line))] if not line[at:].strip() else []


def _player(kind: str) -> Handler:
    def handle(line: str, at: int) -> list[Event]:
        rest = line[at:]
        if not rest:
            return []
        name, user = _split_player(rest)
        return [Event(kind, local_timestamp(line), name, user)]
    return handle


def _avatar(line: str, at: int) -> list[Event]:
    name, found, avatar = line[at:].rstrip().partition(" to avatar ")
    if not (found and name):
        return []
    return [Event("avatar_change", local_timestamp(line), name, None, None, None, None,
                  {"avatar_name": avatar})]


def _resolve_url(line: str, at: int) -> list[Event]:
    url = _text(line, at).removesuffix("'")
    return [Event("video_play", local_timestamp(line), data={"url": url})] if url else []


def _usharp_load(line: str, at: int) -> list[Event]:
    url, found, requester = _text(line, at).partition(", requested by ")
    if not url:
        return []
    data = {"url": url}
    if found and requester:
        data["requested_by"] = requester
    return [Event("video_play", local_timestamp(line), data=data)]


def _video_error(line: str, at: int) -> list[Event]:
    return [Event("video_error", local_timestamp(line), data={"message": _text(line, at)})]


def _screenshot(line: str, at: int) -> list[Event]:
    path = _text(line, at)
    return [Event("screenshot", local_timestamp(line), data={"path": path})] if path else []


def _field(text: str, start: str, end: str) -> tuple[str | None, int]:
    """The text between ``start`` and the first ``end`` after it, and where it ends
    (None, 0 when either is missing: a truncated line)."""
    at = text.find(start)
    if at < 0:
        return None, 0
    at += len(start)
    stop = text.find(end, at)
    return (None, 0) if stop < 0 else (text[at:stop], stop)


def _notification(line: str, at: int) -> list[Event]:
    # <Notification from username:NAME, sender user id:usr_… to usr_… of type: TYPE,
    #  id: not_…, created at: …, details: {{worldId=…, worldName=…}}, type:TYPE, …>
    text = line[at:]
    name, end = _field(text, "", ", sender user id:")
    if not name:
        return []
    text = text[end:]
    sender, _ = _field(text, ", sender user id:", " ")
    kind, _ = _field(text, " of type: ", ",")
    data: dict[str, str] = {"notification_type": kind.strip()} if kind else {}
    if (ident := _field(text, ", id: ", ",")[0]) is not None:
        data["id"] = ident
    world_id = world_name = instance = None
    if (world := _field(text, "worldId=", ", worldName=")[0]) is not None:
        world_id, _, instance = world.partition(":")
        world_name = _field(text, ", worldName=", "}}")[0]
    return [Event("notification", local_timestamp(line), name, sender, world_id or None, world_name,
                  instance or None, data)]


def _sticker(line: str, at: int) -> list[Event]:
    # User usr_… (NAME) spawned sticker inv_…
    rest = _text(line, at)
    user, _, after = rest.partition(" (")
    name, found, sticker = after.rpartition(") spawned sticker ")
    if not (found and user.startswith("usr_")):
        return []
    return [Event("sticker_spawn", local_timestamp(line), name, user, data={"sticker_id": sticker})]


def _portal(line: str, at: int) -> list[Event]:
    # Instantiated a (Clone [N] Portals/…)
    rest = _text(line, at)
    close = rest.find("] ")
    if close < 0 or not rest.startswith("Portals/", close + 2):
        return []
    return [Event("portal_spawn", local_timestamp(line), data={"object": rest[close + 2:].removesuffix(")")})]


def _vote_kick(line: str, at: int) -> list[Event]:
    name = _text(line, at).removesuffix(", do you agree?")
    return [Event("vote_kick", local_timestamp(line), name)] if name else []


def _kicked(line: str, at: int) -> list[Event]:
    message = _text(line, at)
    if not message.startswith("You have been kicked"):
        return []  # other executive messages (warnings) are not kicks
    return [Event("kicked", local_timestamp(line), data={"message": message})]


def _join_failed(line: str, at: int) -> list[Event]:
    # Failed to join instance 'ID' due to 'REASON'
    rest = _text(line, at)
    where, found, reason = rest.partition("' due to '")
    if not found:
        where = rest.removesuffix("'")
    world_id, _, instance = where.partition(":")
    data = {"reason": reason.removesuffix("'")} if found else {}
    return [Event("join_failed", local_timestamp(line), None, None, world_id or None, None,
                  instance or None, data or None)]


def _instance_reset(line: str, at: int) -> list[Event]:
    if (m := _MINUTES.match(line, at)) is None:
        return []
    return [Event("instance_reset", local_timestamp(line), data={"minutes": m.group()})]


def _app_quit(line: str, at: int) -> list[Event]:
    rest = _text(line, at)
    return [Event("app_quit", local_timestamp(line), data={"at": rest} if rest else None)]


#: (the message's start, its handler).  A message is tried against the rows whose
#: prefix it starts with, in this order; the first that gives events wins.
HANDLERS: tuple[tuple[str, Handler], ...] = (
    ("[Behaviour] OnPlayerJoined ", _player("player_join")),
    ("[Behaviour] OnPlayerLeft ", _player("player_left")),
    ("[Behaviour] Entering Room: ", _entering_room),
    ("[Behaviour] Joining wrld_", _joining),
    ("[Behaviour] OnLeftRoom", _left_room),
    ("[Behaviour] Switching ", _avatar),
    ("[Behaviour] Instantiated a (Clone [", _portal),
    ("[Behaviour] Received executive message: ", _kicked),
    ("[Behaviour] Failed to join instance '", _join_failed),
    ("[Video Playback] Attempting to resolve URL '", _resolve_url),
    ("[USharpVideo] Started video load for URL: ", _usharp_load),
    ("[Video Playback] ERROR: ", _video_error),
    ("[AVProVideo] Error: ", _video_error),
    ("[VRC Camera] Took screenshot to: ", _screenshot),
    ("[API] Received Notification: <Notification from username:", _notification),
    ("Received Notification: <Notification from username:", _notification),
    ("[StickersManager] User ", _sticker),
    ("[ModerationManager] A vote kick has been initiated against ", _vote_kick),
    ("[ModerationManager] This instance will be reset in ", _instance_reset),
    ("VRCApplication: OnApplicationQuit at ", _app_quit),
)
_PREFIXES = tuple(prefix for prefix, _ in HANDLERS)
#: For the reader: a line whose bytes do not start with one of these at byte 34 has
#: no events, and need not even be decoded (a header is ASCII, see has_header).
RAW_PREFIXES_AT = (MESSAGE_AT, tuple(prefix.encode() for prefix in _PREFIXES))
#: The rows by their prefix's first KEY_CHARS characters (every prefix is that long):
#: one dict lookup leaves one or two rows to try, where trying all 20 cost ~3 µs a line.
KEY_CHARS = 16


def _rows_by_key() -> dict[str, list[tuple[str, Handler]]]:
    rows: dict[str, list[tuple[str, Handler]]] = {}
    for prefix, handle in HANDLERS:
        assert len(prefix) >= KEY_CHARS, prefix
        rows.setdefault(prefix[:KEY_CHARS], []).append((prefix, handle))
    return rows


_ROWS = _rows_by_key()


def message_events(line: str) -> list[Event]:
    """The events of one line (VRChat's header checked)."""
    if not has_header(line):
        return []
    for prefix, handle in _ROWS.get(line[MESSAGE_AT:MESSAGE_AT + KEY_CHARS], ()):
        if line.startswith(prefix, MESSAGE_AT) and (events := handle(line, MESSAGE_AT + len(prefix))):
            return events
    return []


@dataclass(frozen=True)
class EventType:
    """One event type as `vrclog types` and the README show it."""

    name: str
    summary: str
    fields: tuple[str, ...]
    example: str


_P = "2025.06.17 18:28:11 Debug      -  "
#: Every event type the built-in parser gives, with its fields and a line that gives it.
BUILTIN_TYPES: tuple[EventType, ...] = (
    EventType("world_join", "you entered a world (two lines: its name, then its instance)",
              ("world_name", "world_id", "instance_id", "data.instance_type", "data.region", "data.owner_id"),
              _P + "[Behaviour] Joining wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd:12345~private("
                   "usr_c1644b5b-3ca4-45b4-97c6-a2a0de70d469)~canRequestInvite~region(jp)~nonce(5f1c)"),
    EventType("world_leave", "you left the world", (), _P + "[Behaviour] OnLeftRoom"),
    EventType("player_join", "a player joined your instance", ("player_name", "player_id"),
              _P + "[Behaviour] OnPlayerJoined Night Owl (usr_8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b)"),
    EventType("player_left", "a player left your instance", ("player_name", "player_id"),
              _P + "[Behaviour] OnPlayerLeft Night Owl (usr_8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b)"),
    EventType("avatar_change", "a player switched avatar", ("player_name", "data.avatar_name"),
              _P + "[Behaviour] Switching Night Owl to avatar Robot Fox"),
    EventType("video_play", "a video player started a URL", ("data.url", "data.requested_by"),
              _P + "[USharpVideo] Started video load for URL: https://youtu.be/dQw4w9WgXcQ, "
                   "requested by Night Owl"),
    EventType("video_error", "a video player failed", ("data.message",),
              _P + "[Video Playback] ERROR: Video unavailable"),
    EventType("screenshot", "you took a screenshot", ("data.path",),
              _P + "[VRC Camera] Took screenshot to: C:\\Users\\me\\Pictures\\VRChat\\2025-06\\"
                   "VRChat_2025-06-17_18-28-11.123_1920x1080.png"),
    EventType("notification", "a notification reached you (invites name their world)",
              ("player_name", "player_id", "world_id", "world_name", "instance_id",
               "data.notification_type", "data.id"),
              _P + "[API] Received Notification: <Notification from username:Night Owl, sender user "
                   "id:usr_8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b to usr_c1644b5b-3ca4-45b4-97c6-a2a0de70d469 "
                   "of type: invite, id: not_0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e, created at: 06/17/2025 "
                   "18:28:11 UTC, details: {{worldId=wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd:12345~"
                   "region(jp), worldName=The Great Pug}}, type:invite, m seen:False, message: \"\">"),
    EventType("sticker_spawn", "a player placed a sticker", ("player_name", "player_id", "data.sticker_id"),
              _P + "[StickersManager] User usr_8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b (Night Owl) spawned "
                   "sticker inv_5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"),
    EventType("portal_spawn", "a portal was dropped", ("data.object",),
              _P + "[Behaviour] Instantiated a (Clone [800004] Portals/PortalInternalDynamic)"),
    EventType("vote_kick", "a vote to kick a player began", ("player_name",),
              _P + "[ModerationManager] A vote kick has been initiated against Night Owl, do you agree?"),
    EventType("kicked", "you were kicked from the instance", ("data.message",),
              _P + "[Behaviour] Received executive message: You have been kicked from the instance by "
                   "majority vote"),
    EventType("join_failed", "joining an instance failed", ("world_id", "instance_id", "data.reason"),
              _P + "[Behaviour] Failed to join instance 'wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd:"
                   "12345~region(jp)' due to 'That instance is full'"),
    EventType("instance_reset", "the instance will close for its age", ("data.minutes",),
              _P + "[ModerationManager] This instance will be reset in 60 minutes due to its age."),
    EventType("app_quit", "VRChat closed", ("data.at",),
              _P + "VRCApplication: OnApplicationQuit at 3601.52"),
)
#: Every event type the built-in parser gives.
EVENT_TYPES = tuple(t.name for t in BUILTIN_TYPES)


class BuiltinParser:
    """Same interface as a plugin: ``call(line) -> events``; and ``find_events`` for a batch."""

    name = "builtin"
    #: Its own test (one ``startswith`` a line) is as cheap as any prefilter.
    prefilter = None

    def find_events(self, lines: list[str]) -> list[tuple[int, list[Event]]]:
        """(index, events) of each line that has events: what ``call`` gives, line by line,
        with one C-level ``startswith`` for each of the many lines that cannot be events."""
        filled = list(compress(range(len(lines)), lines))
        if len(filled) * 4 < len(lines):
            # The reader left the lines we cannot use undecoded (""): look at the rest only
            # (~3x faster than a startswith on each of 200 000 mostly empty lines).
            candidates: Iterable[int] = [i for i in filled if lines[i].startswith(_PREFIXES, MESSAGE_AT)]
        else:
            candidates = compress(range(len(lines)), map(str.startswith, lines, repeat(_PREFIXES),
                                                         repeat(MESSAGE_AT)))
        return [(i, events) for i in candidates if (events := message_events(lines[i]))]

    def call(self, line: str) -> list[Event]:
        return message_events(line) if line.startswith(_PREFIXES, MESSAGE_AT) else []

    parse = call
