"""The built-in parser for VRChat's own log lines (the default without --plugin).

A line is VRChat's when it starts with VRChat's header: the local time and the
level word padded to column 34, ``2025.04.09 21:16:28 Debug      -  ``, the
level being Log, Debug, Warning, Error or Exception, and a date and time
that exist.  Lines without it, such as the continuation lines of a multi-line
exception, never give events.  The message after the header is matched by its
start against ``HANDLERS`` (one row per line shape of every era since 2020,
``BUILTIN_TYPES`` documents each event type; docs/vrcx-parity.md maps each
line VRCX reads to its type).

Speed: almost no line of a log is an event.  One pattern, a trie of every row's
prefix, matched at column 34, is one C call per line: only the few lines that
pass it cost any Python (see ``BuiltinParser.find_events``).  Searching each
line for each pattern instead cost ~3x as much per line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from itertools import compress, repeat

from ..events import Event

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
    34 as at character 34: see RAW_LINE_FINDER), the level field in place (the time is
    checked by local_timestamp)."""
    return line[20:MESSAGE_AT] in _LEVEL_FIELDS and line[19:20] == " " and line[:19].isascii()


# --- the line shapes --------------------------------------------------------------
# Each handler gets the line and where the text after its prefix starts, and returns
# the line's events ([] when the rest does not fit), their timestamp left for
# message_events to fill in (a line without a valid time gives no event).  Event fields
# are positional (type, timestamp, player_name, player_id, world_id, world_name,
# instance_id, data): half the cost of keywords.

Handler = Callable[[str, int], list[Event]]

_USER_TAIL = re.compile(r" \((usr_[0-9A-Za-z-]+)\)\Z")
_WORLD = re.compile(r"([0-9A-Za-z-]+):(\S+)")  # after "wrld_"
_MINUTES = re.compile(r"\d+", re.ASCII)
_REQUEST = re.compile(r"(\d+)\] Sending (\w+) request to (\S+)", re.ASCII)  # after "[API] ["
_DOMAIN = re.compile(r"\(Domain: ([^)]*)\)")

#: The access tags of an instance string and the type VRChat's menus call them.
_GROUP_ACCESS = {"public": "group public", "plus": "group+", "members": "group"}
DEFAULT_REGION = "us"  # VRChat's default (US West) when the instance names none


def instance_details(instance: str) -> dict[str, str]:
    """``12345~private(usr_…)~canRequestInvite~region(jp)~nonce(…)`` ->
    {instance_type: invite+, region: jp, owner_id: usr_…}.  The tags in any order."""
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
        kind, owner = "public", tags.get("public") or None
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


def _quoted(line: str, at: int) -> str | None:
    """The text up to the line's closing quote (``…URL 'TEXT'``); None when it has none."""
    rest = _text(line, at)
    return rest[:-1] if rest.endswith("'") and len(rest) > 1 else None


def _world_name(line: str, at: int) -> list[Event]:
    rest = line[at:]
    if not rest:
        return []
    return [Event("world_join", None, None, None, None, rest.rstrip() or rest[:1])]


def _joining(line: str, at: int) -> list[Event]:
    if (m := _WORLD.match(line, at)) is None:
        return []
    instance = m.group(2)
    return [Event("world_join", None, None, None, "wrld_" + m.group(1), None, instance,
                  instance_details(instance))]


def _left_room(line: str, at: int) -> list[Event]:
    return [Event("world_leave", None)] if not line[at:].strip() else []


def _player(kind: str) -> Handler:
    def handle(line: str, at: int) -> list[Event]:
        rest = line[at:]
        if not rest:
            return []
        name, user = _split_player(rest)
        return [Event(kind, None, name, user)]
    return handle


def _user_authenticated(line: str, at: int) -> list[Event]:
    name, user = _split_player(line[at:])
    return [Event("user_authenticated", None, name, user)] if user else []


def _avatar(line: str, at: int) -> list[Event]:
    name, found, avatar = line[at:].rstrip().partition(" to avatar ")
    if not (found and name):
        return []
    return [Event("avatar_change", None, name, None, None, None, None, {"avatar_name": avatar})]


def _avatar_pedestal(line: str, at: int) -> list[Event]:
    name = _text(line, at)
    return [Event("avatar_pedestal", None, name)] if name else []


def _resolve_url(line: str, at: int) -> list[Event]:
    url = _text(line, at).removesuffix("'")
    return [Event("video_play", None, data={"url": url})] if url else []


def _resolved(line: str, at: int) -> list[Event]:
    # URL 'A' resolved to 'B'
    url, found, resolved = _text(line, at).partition("' resolved to '")
    if not (found and url and resolved.endswith("'")):
        return []
    return [Event("video_resolved", None, data={"url": url, "resolved_url": resolved[:-1]})]


def _usharp_load(line: str, at: int) -> list[Event]:
    url, found, requester = _text(line, at).partition(", requested by ")
    if not url:
        return []
    data = {"url": url}
    if found and requester:
        data["requested_by"] = requester
    return [Event("video_play", None, data=data)]


def _sdk2_video(line: str, at: int) -> list[Event]:
    # User NAME added URL URL (SDK2's video players, 2020-2021)
    name, found, url = _text(line, at).rpartition(" added URL ")
    if not (found and name and url):
        return []
    return [Event("video_play", None, data={"url": url, "requested_by": name})]


def _video_error(line: str, at: int) -> list[Event]:
    return [Event("video_error", None, data={"message": _text(line, at)})]


def _untrusted_url(line: str, at: int) -> list[Event]:
    # Attempted to play an untrusted URL (Domain: D) that is not allowlisted …
    message = _text(line, MESSAGE_AT)
    data = {"message": message}
    if (m := _DOMAIN.search(message)) is not None:
        data["domain"] = m.group(1)
    return [Event("video_error", None, data=data)]


def _screenshot(line: str, at: int) -> list[Event]:
    path = _text(line, at)
    return [Event("screenshot", None, data={"path": path})] if path else []


def _download(kind: str) -> Handler:
    def handle(line: str, at: int) -> list[Event]:
        url = _quoted(line, at)
        return [Event("download", None, data={"kind": kind, "url": url})] if url else []
    return handle


def _api_request(line: str, at: int) -> list[Event]:
    # [API] [N] Sending Get request to URL
    if (m := _REQUEST.match(line, at)) is None:
        return []
    return [Event("api_request", None, data={"request_id": m.group(1), "method": m.group(2),
                                              "url": m.group(3)})]


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
    # (2021 wrote "< Notification" with a space, and "to of type" without a receiver.)
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
    return [Event("notification", None, name, sender, world_id or None, world_name,
                  instance or None, data)]


def _sticker(line: str, at: int) -> list[Event]:
    # User usr_… (NAME) spawned sticker inv_…
    rest = _text(line, at)
    user, _, after = rest.partition(" (")
    name, found, sticker = after.rpartition(") spawned sticker ")
    if not (found and user.startswith("usr_")):
        return []
    return [Event("sticker_spawn", None, name, user, data={"sticker_id": sticker})]


def _portal(line: str, at: int) -> list[Event]:
    # Instantiated a (Clone [N] Portals/…)
    rest = _text(line, at)
    close = rest.find("] ")
    if close < 0 or not rest.startswith("Portals/", close + 2):
        return []
    return [Event("portal_spawn", None, data={"object": rest[close + 2:].removesuffix(")")})]


def _portal_rpc(named_after: bool) -> Handler:
    """2021's portal lines: ``… on (Clone [N] Portals/OBJECT) … for NAME``, and with
    ``named_after`` (a SendRPC line, whatever its RPC) ``… for NAME: S: "ConfigurePortal" …``."""
    def handle(line: str, at: int) -> list[Event]:
        rest = _text(line, at)
        close = rest.find("] Portals/")
        end = rest.find(")", close)
        by = rest.find(" for ", end)
        if close < 0 or end < 0 or by < 0:
            return []
        name = rest[by + 5:]
        if named_after:
            name, found, rpc = name.rpartition(': S: "')
            if not (found and rpc.startswith('ConfigurePortal"')):
                return []
        return [Event("portal_spawn", None, name or None, data={"object": rest[close + 2:end]})]
    return handle


def _vote_kick(line: str, at: int) -> list[Event]:
    name = _text(line, at).removesuffix(", do you agree?")
    return [Event("vote_kick", None, name)] if name else []


def _vote_kick_succeeded(line: str, at: int) -> list[Event]:
    name, found, _ = _text(line, at).rpartition(" succeeded")
    return [Event("vote_kick_succeeded", None, name)] if found and name else []


def _executive(line: str, at: int) -> list[Event]:
    message = _text(line, at)
    if not message:
        return []
    kind = "kicked" if message.startswith("You have been kicked") else "executive_message"
    return [Event(kind, None, data={"message": message})]


def _join_failed(line: str, at: int) -> list[Event]:
    # Failed to join instance 'ID' due to 'REASON'
    rest = _text(line, at)
    where, found, reason = rest.partition("' due to '")
    if not found:
        where = rest.removesuffix("'")
    world_id, _, instance = where.partition(":")
    data = {"reason": reason.removesuffix("'")} if found else {}
    return [Event("join_failed", None, None, None, world_id or None, None, instance or None, data or None)]


def _message(kind: str, key: str = "message", after: str | None = None) -> Handler:
    """An event holding the rest of the line as ``data[key]`` (with ``after``: the message
    from the end of that tag on, the prefix itself included)."""
    def handle(line: str, at: int) -> list[Event]:
        text = _text(line, MESSAGE_AT + len(after) if after is not None else at).lstrip(" -")
        return [Event(kind, None, data={key: text})] if text else []
    return handle


def _instance_reset(line: str, at: int) -> list[Event]:
    if (m := _MINUTES.match(line, at)) is None:
        return []
    return [Event("instance_reset", None, data={"minutes": m.group()})]


def _app_quit(line: str, at: int) -> list[Event]:
    rest = _text(line, at)
    return [Event("app_quit", None, data={"at": rest} if rest else None)]


def _vr_mode(mode: str) -> Handler:
    def handle(line: str, at: int) -> list[Event]:
        return [Event("vr_mode", None, data={"mode": mode})]
    return handle


def _hmd(line: str, at: int) -> list[Event]:
    model = _text(line, at)
    return [Event("vr_mode", None, data={"mode": "vr", "hmd": model} if model else {"mode": "vr"})]


def _desktop(line: str, at: int) -> list[Event]:
    return [Event("vr_mode", None, data={"mode": "desktop"})] if not line[at:].strip() else []


def _microphone(line: str, at: int) -> list[Event]:
    # SetInputDevice 0 (3 total) 'NAME'  or  SetInputDevice by name 'NAME' (3 total)
    rest = _text(line, at)
    first, last = rest.find("'"), rest.rfind("'")
    if first < 0 or last <= first:
        return []
    data = {"device": rest[first + 1:last]}
    if (index := rest[:first].split(" ", 1)[0]).isdigit():
        data["index"] = index
    return [Event("microphone_set", None, data=data)]


#: (the message's start, its handler).  A message is tried against the rows whose
#: prefix it starts with, in this order; the first that gives events wins.
HANDLERS: tuple[tuple[str, Handler], ...] = (
    ("[Behaviour] OnPlayerJoined ", _player("player_join")),
    ("[Behaviour] OnPlayerLeft ", _player("player_left")),
    ("[Behaviour] Entering Room: ", _world_name),
    ("[Behaviour] Joining wrld_", _joining),
    ("[Behaviour] Joining or Creating Room: ", _world_name),
    ("[Behaviour] OnLeftRoom", _left_room),
    ("[Behaviour] Switching ", _avatar),
    ("[Behaviour] Instantiated a (Clone [", _portal),
    ("[Behaviour] Received executive message: ", _executive),
    ("[Behaviour] You have been kicked", _message("kicked", after="[Behaviour] ")),
    ("[Behaviour] Failed to join instance '", _join_failed),
    ("[Behaviour] Master is not sending any events!", _message("join_blocked", after="[Behaviour] ")),
    ("[Behaviour] Will execute SendRPC/AlwaysBufferOne on (Clone [", _portal_rpc(named_after=True)),
    # 2020: the same lines under other names.
    ("[NetworkManager] OnPlayerJoined ", _player("player_join")),
    ("[NetworkManager] OnPlayerLeft ", _player("player_left")),
    ("[RoomManager] Entering Room: ", _world_name),
    ("[RoomManager] Joining wrld_", _joining),
    ("[RoomManager] Joining or Creating Room: ", _world_name),
    ("[Network Processing] RPC invoked ConfigurePortal on (Clone [", _portal_rpc(named_after=False)),
    ("[Network Processing] RPC invoked SwitchAvatar on AvatarPedestal for ", _avatar_pedestal),
    ("[Video Playback] Attempting to resolve URL '", _resolve_url),
    ("[Video Playback] Resolving URL '", _resolve_url),
    ("[Video Playback] URL '", _resolved),
    ("[USharpVideo] Started video load for URL: ", _usharp_load),
    ("[USharpVideo] Syncing video to ", _message("video_sync", "position")),
    ("User ", _sdk2_video),
    ("[Video Playback] ERROR: ", _video_error),
    ("[AVProVideo] Error: ", _video_error),
    ("Attempted to play an untrusted URL", _untrusted_url),
    ("[VRC Camera] Took screenshot to: ", _screenshot),
    ("[String Download] Attempting to load String from URL '", _download("string")),
    ("[Image Download] Attempting to load image from URL '", _download("image")),
    ("[API] [", _api_request),
    ("[API] Received Notification: <Notification from username:", _notification),
    ("[API] Received Notification: < Notification from username:", _notification),
    ("Received Notification: <Notification from username:", _notification),
    ("Received Notification: < Notification from username:", _notification),
    ("[StickersManager] User ", _sticker),
    ("[ModerationManager] A vote kick has been initiated against ", _vote_kick),
    ("[ModerationManager] Vote to kick ", _vote_kick_succeeded),
    ("[ModerationManager] This instance will be reset in ", _instance_reset),
    ("[Always] Instance closed", _message("instance_closed", after="[Always] ")),
    ("[Always] uSpeak: OnAudioConfigurationChanged", _message("audio_device_changed", "detail")),
    ("[Always] uSpeak: SetInputDevice ", _microphone),
    ("[UdonBehaviour] An exception occurred during Udon execution",
     _message("udon_exception", after="[UdonBehaviour] ")),
    ("User Authenticated: ", _user_authenticated),
    ("VRCApplication: OnApplicationQuit at ", _app_quit),
    ("VRCApplication: HandleApplicationQuit at ", _app_quit),
    ("VR Disabled", _desktop),
    ("OpenVR initialized!", _vr_mode("vr")),
    ("Initializing VRSDK.", _vr_mode("vr")),
    ("STEAMVR HMD Model: ", _hmd),
    ("Could not Start OSC: ", _message("osc_failed", "reason")),
)


def _trie(prefixes: Iterable[str]) -> str:
    """A pattern matching the longest of ``prefixes`` a text starts with, built as a trie:
    one C-level match a line whatever the number of prefixes, where ``startswith`` with a
    tuple tries each in turn (20 prefixes cost 41 ms over the 200k-line bench log, 49 cost
    65 ms; this pattern with all 49, 42 ms).  Built from the sorted prefixes, a branch's
    common run escaped at once: a node and an escape a character took 4-5 ms of start-up
    on a slow host, this ~0.8 ms, for the same pattern."""
    def branch(group: list[str], depth: int) -> str:
        """The pattern for ``group``: sorted prefixes alike in their first ``depth`` characters."""
        ends = len(group[0]) == depth  # sorted: a prefix ending here comes first
        arms = []
        start = 1 if ends else 0
        while start < len(group):
            char = group[start][depth]
            stop = start + 1
            while stop < len(group) and group[stop][depth] == char:
                stop += 1
            first, last = group[start], group[stop - 1]
            shared = depth + 1
            while shared < min(len(first), len(last)) and first[shared] == last[shared]:
                shared += 1
            arms.append(re.escape(first[depth:shared]) + branch(group[start:stop], shared))
            start = stop
        if not arms:
            return ""
        body = arms[0] if len(arms) == 1 else "(?:" + "|".join(arms) + ")"
        return f"(?:{body})?" if ends else body
    every = sorted(set(prefixes))
    return branch(every, 0) if every else ""


_PREFIXES = tuple(dict.fromkeys(prefix for prefix, _ in HANDLERS))
_TRIE = _trie(_PREFIXES)
_PATTERN = re.compile(_TRIE, re.S)
#: For the reader (a run.sources.LineFinder): a newline and a line whose bytes match the
#: prefixes at byte 34.  Any other line has no events, and need not even be decoded (a
#: header is ASCII, see has_header).
RAW_LINE_FINDER = re.compile(b"\n[^\n]{%d}(?:%s)" % (MESSAGE_AT, _TRIE.encode()), re.S)
#: Per prefix the pattern can match: the rows a message starting with it is tried against
#: (every row whose prefix it starts with, in HANDLERS order).
_ROWS: dict[str, tuple[tuple[int, Handler], ...]] = {
    matched: tuple((len(prefix), handle) for prefix, handle in HANDLERS if matched.startswith(prefix))
    for matched in _PREFIXES}


def message_events(line: str) -> list[Event] | None:
    """The events of one line; None when the line holds a message that gives events but
    no valid VRChat header (a level out of place, an impossible date or time)."""
    if (m := _PATTERN.match(line, MESSAGE_AT)) is None:
        return []
    return _dispatch(line, m.group())


def _dispatch(line: str, matched: str) -> list[Event] | None:
    """message_events of a line whose message starts with ``matched`` (what _PATTERN matched)."""
    for length, handle in _ROWS[matched]:
        if events := handle(line, MESSAGE_AT + length):
            if not has_header(line) or (stamp := local_timestamp(line)) is None:
                return None
            for event in events:
                event.timestamp = stamp
            return events
    return []


class BuiltinParser:
    """Same interface as a plugin: ``call(line) -> events``; and ``find_events`` for a batch."""

    name = "builtin"
    #: Part of its events' ids (run/provenance.py): a new version where the same line
    #: gives other events than before.
    version = "1"
    #: Its own test (one pattern match a line) is as cheap as any prefilter.
    prefilter = None
    @property
    def event_types(self) -> tuple[str, ...]:
        """Every type it can give (a plugin's are in its vrclog.types section); their
        descriptions are imported only when asked for (~1 ms of a run's start)."""
        from .event_types import EVENT_TYPES

        return EVENT_TYPES

    def find_events(self, lines: list[str]) -> tuple[list[tuple[int, list[Event]]], int]:
        """(index, events) of each line that has events, what ``call`` gives line by line,
        and how many lines held a message but no valid header.  One C-level match for each
        of the many lines that cannot be events."""
        filled = list(compress(range(len(lines)), lines))
        match = _PATTERN.match
        if len(filled) * 4 < len(lines):
            # The reader left the lines we cannot use undecoded (""): look at the rest only
            # (~3x faster than a match on each of 200 000 mostly empty lines).
            candidates: Iterable[tuple[int, re.Match[str] | None]] = (
                (i, match(lines[i], MESSAGE_AT)) for i in filled)
        else:
            candidates = ((i, match(lines[i], MESSAGE_AT)) for i in
                          compress(range(len(lines)), map(match, lines, repeat(MESSAGE_AT))))
        found: list[tuple[int, list[Event]]] = []
        invalid = 0
        for i, matched in candidates:
            if matched is None:
                continue
            events = _dispatch(lines[i], matched.group())
            if events:
                found.append((i, events))
            elif events is None:
                invalid += 1
        return found, invalid

    def read(self, line: str) -> list[Event] | None:
        """``call``, telling a line without a valid header (None) from one without events."""
        return message_events(line)

    def call(self, line: str) -> list[Event]:
        return message_events(line) or []

    parse = call
