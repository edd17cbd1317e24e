"""A vrclog component plugin in Python - start here.

Turns lines like
  2024.01.15 23:59:59 Log        -  [MyWorld] Score 42 by Alice
into {"type": "myworld_score", "timestamp": "2024-01-15T23:59:59",
      "data": {"score": "42", "player": "Alice"}}.

Build: make            (NAME.wasm, with componentize-py; see README.md)
Check: vrclog plugin check NAME.wasm --sample my.log
Guide: docs/plugin-abi.md in the vrclog repository.
"""

import re

from wit_world import WitWorld
from wit_world.imports.types import Event

# The prefilter (the Makefile writes it into NAME.wasm) lets through only lines that
# contain "[MyWorld] ": keep it true to parse_line. Every other line costs nothing.
SCORE = re.compile(r"\[MyWorld\] Score (\d+) by (.+?)\s*$", re.ASCII)
STAMP = re.compile(r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}:\d{2}:\d{2})", re.ASCII)


def timestamp(line: str) -> str | None:
    """VRChat's local time, from the line's prefix; the host adds the local offset."""
    m = STAMP.match(line)
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}" if m else None


class WitWorld(WitWorld):
    def parse_line(self, line: str) -> list[Event]:
        """The events of one line (none: an empty list). Raise
        componentize_py_types.Err(PluginError(...)) to report this line as a plugin_error."""
        # The literal text first: `in` scans a line far faster than a regex that fails
        # (a 1 MiB line: a few ms, not tens), and most lines are not ours.
        if "[MyWorld] Score " not in line:
            return []
        m = SCORE.search(line)
        if not m:
            return []
        return [Event(kind="myworld_score", timestamp=timestamp(line), player_name=None, player_id=None,
                      world_id=None, world_name=None, instance_id=None,
                      data=[("score", m[1]), ("player", m[2])])]
