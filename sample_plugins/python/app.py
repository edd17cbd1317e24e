"""vrpoker in Python: the events of the VRPoker world's log lines, as vrpoker.wasm gives them."""

import re

from wit_world import WitWorld
from wit_world.imports.types import Event

TAG = "[VRPoker] "
GAME = re.compile(r"\[VRPoker\] Game started with (\d+) players", re.ASCII)
WINNER = re.compile(r"\[VRPoker\] Player (.+?) wins with (.+?)\s*$", re.ASCII)
ROUND = re.compile(r"\[VRPoker\] Round (\d+) begins", re.ASCII)
STAMP = re.compile(r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}:\d{2}:\d{2})", re.ASCII)


def timestamp(line: str) -> str | None:
    """VRChat's local time from the line's prefix; the host adds the local offset."""
    m = STAMP.match(line)
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}" if m else None


def event(kind: str, line: str, **data: str) -> Event:
    return Event(kind=kind, timestamp=timestamp(line), player_name=None, player_id=None,
                 world_id=None, world_name=None, instance_id=None, data=list(data.items()))


class WitWorld(WitWorld):
    def parse_line(self, line: str) -> list[Event]:
        at = line.find(TAG)
        if at < 0:
            return []
        if m := GAME.search(line):
            return [event("vrpoker_game_start", line, player_count=m[1])]
        if m := WINNER.search(line):
            return [event("vrpoker_winner", line, player=m[1], hand=m[2])]
        if m := ROUND.search(line):
            return [event("vrpoker_round", line, round=m[1])]
        return [event("vrpoker_event", line, message=line[at + len(TAG):].rstrip(" \r"))]
