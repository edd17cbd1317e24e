"""A Python component for the tests: echoes each line, spins forever on a line starting
with "spin", asks the host interface (RE2, log, the clock) about lines starting "host",
and raises on a line starting "raise" (an uncaught exception)."""

from wit_world import WitWorld
from wit_world.imports import host
from wit_world.imports.types import Event


def event(kind: str, **data: str) -> Event:
    return Event(kind=kind, timestamp=None, player_name=None, player_id=None, world_id=None,
                 world_name=None, instance_id=None, data=list(data.items()))


class WitWorld(WitWorld):
    def parse_line(self, line: str) -> list[Event]:
        if line.startswith("raise"):
            raise ValueError(f"cannot read {line[6:]!r}")
        if line.startswith("spin"):
            while True:
                pass
        if line.startswith("host"):
            groups = host.regex_find_submatch(line, r"^host (\w+)(?: (\d+))?")
            host.log(2, f"asked about {line}")
            return [event("host", matched=str(host.regex_match(line, r"\d")),
                          groups=repr(groups), clock=str(host.now_ms() > 1_600_000_000_000))]
        return [event("echo", line=line)]
