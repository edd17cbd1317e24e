"""The built-in parser for VRChat's own log lines (the default without --plugin).

    [Behaviour] Entering Room: NAME               -> world_join {world_name}
    [Behaviour] Joining wrld_ID:INSTANCE          -> world_join {world_id, instance_id}
    [Behaviour] OnPlayerJoined NAME (usr_ID)      -> player_join {player_name, player_id}
    [Behaviour] OnPlayerLeft NAME (usr_ID)        -> player_left {player_name, player_id}

Not matched: OnPlayerLeftRoom, "Joining or Creating Room", "Joining friend".
The patterns are ours and anchored, so Python's re is safe here.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime

from .events import Event

# ASCII digits only: re's \d and str.isdigit also take other scripts' digits ("١٣"),
# which VRChat never writes and which must not end up in an RFC 3339 timestamp.
_MINUTE = re.compile(r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2})\Z", re.ASCII)
_SECONDS = {f":{s:02d}": f"{s:02d}" for s in range(60)}  # the ":SS" after a minute -> "SS"
_JOINING = re.compile(r"\[Behaviour\] Joining (wrld_[0-9A-Za-z-]+):(\S+)")
# What the events mean, as single patterns (tests check the code below against them):
#   ENTERING = r"\[Behaviour\] Entering Room: (.+?)\s*$"
#   PLAYER = r"\[Behaviour\] OnPlayer(Joined|Left) (.+?)(?: \((usr_[0-9A-Za-z-]+)\))?\s*$"
# Their lazy (.+?) ... \s*$ tails cost microseconds a line in the regex engine;
# the same result comes from finding the head and trimming the tail with str methods.
_BEHAVIOUR = "[Behaviour] "  # in every line the patterns match
_ENTERING_HEAD = "[Behaviour] Entering Room: "
_PLAYER_HEAD = re.compile(r"\[Behaviour\] OnPlayer(Joined|Left) (?=.)")
_USER_TAIL = re.compile(r" \((usr_[0-9A-Za-z-]+)\)\Z")


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
    lines.  The offset is the one at the minute's start; offsets change only
    on whole minutes.
    """
    match = _MINUTE.match(prefix)
    if match is None:
        return None
    try:
        year, month, day, hour, minute = (int(g) for g in match.groups())
        stamp = datetime(year, month, day, hour, minute).astimezone().isoformat()
    except ValueError:
        return None
    return stamp[:17], stamp[19:]


#: Every event type the built-in parser gives.
EVENT_TYPES = ("world_join", "player_join", "player_left")


class BuiltinParser:
    """Same interface as a plugin: ``call(line) -> events``; and ``find_events`` for a batch."""

    name = "builtin"
    #: Its own test (``"[Behaviour] " in line``) is as cheap as any prefilter.
    prefilter = None

    def find_events(self, lines: list[str]) -> list[tuple[int, list[Event]]]:
        """(index, events) of each line that has events: what ``call`` gives, line by line,
        without a Python call for the many lines that cannot be events."""
        return [(i, events) for i, line in enumerate(lines)
                if _BEHAVIOUR in line and (events := _behaviour_events(line))]

    def call(self, line: str) -> list[Event]:
        return _behaviour_events(line) if _BEHAVIOUR in line else []

    parse = call


def _behaviour_events(line: str) -> list[Event]:
    """The events of a line known to hold "[Behaviour] "."""
    # Events made with positional fields (type, timestamp, player_name, player_id,
    # world_id, world_name, instance_id): half the cost of keywords, on every event.
    if (m := _PLAYER_HEAD.search(line)) is not None:
        kind = "player_join" if m.group(1) == "Joined" else "player_left"
        name, user = _split_player(line[m.end():])
        return [Event(kind, local_timestamp(line), name, user)]
    if (at := line.find(_ENTERING_HEAD)) >= 0 and (rest := line[at + len(_ENTERING_HEAD):]):
        return [Event("world_join", local_timestamp(line), None, None, None, rest.rstrip() or rest[:1])]
    if (m := _JOINING.search(line)) is not None:
        return [Event("world_join", local_timestamp(line), None, None, m.group(1), None, m.group(2))]
    return []


def _split_player(rest: str) -> tuple[str, str | None]:
    """(name, usr_ id or None) of ``NAME (usr_ID)``, as PLAYER's lazy name would split it:
    the id only when a non-empty name is left before it; a name of at least one character."""
    stripped = rest.rstrip()
    if (tail := _USER_TAIL.search(stripped)) is not None and tail.start() > 0:
        return stripped[:tail.start()], tail.group(1)
    return stripped or rest[:1], None
