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

_PREFIX = re.compile(r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2})\b")
_ENTERING = re.compile(r"\[Behaviour\] Entering Room: (.+?)\s*$")
_JOINING = re.compile(r"\[Behaviour\] Joining (wrld_[0-9A-Za-z-]+):(\S+)")
_PLAYER = re.compile(r"\[Behaviour\] OnPlayer(Joined|Left) (.+?)(?: \((usr_[0-9A-Za-z-]+)\))?\s*$")


def local_timestamp(line: str) -> str | None:
    """The VRChat line's local time as RFC 3339 with the local offset."""
    return _convert_prefix(line[:19])


@functools.lru_cache(maxsize=1024)
def _convert_prefix(prefix: str) -> str | None:
    """Cached: log lines come in bursts that share the same second."""
    match = _PREFIX.match(prefix)
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        stamp = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    return stamp.astimezone().isoformat()


class BuiltinParser:
    """Same interface as a plugin: ``call(line) -> events``."""

    name = "builtin"

    def call(self, line: str) -> list[Event]:
        if "[Behaviour] " not in line:
            return []
        if (m := _PLAYER.search(line)) is not None:
            kind = "player_join" if m.group(1) == "Joined" else "player_left"
            return [Event(kind, timestamp=local_timestamp(line), player_name=m.group(2),
                          player_id=m.group(3))]
        if (m := _ENTERING.search(line)) is not None:
            return [Event("world_join", timestamp=local_timestamp(line), world_name=m.group(1))]
        if (m := _JOINING.search(line)) is not None:
            return [Event("world_join", timestamp=local_timestamp(line), world_id=m.group(1),
                          instance_id=m.group(2))]
        return []
