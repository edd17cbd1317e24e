"""Running hostile plugins and inputs through the real vrclog process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..conftest import vrclog

GOOD_AROUND_BAD = b"good one\nBAD line\ngood two\n"


@dataclass
class Outcome:
    code: int
    lines: list[str]  # the "line" of each echo event, in output order
    stdout: str
    stderr: str


def run_vrclog(*args: str | Path, stdin: bytes = GOOD_AROUND_BAD, timeout: float = 60) -> Outcome:
    proc = vrclog("parse", *args, stdin=stdin, timeout=timeout)
    out, err = proc.stdout, proc.stderr
    lines = []
    for text in out.split("\n")[:-1] if out else []:  # JSON Lines end in \n; splitlines would
        # also split at U+0085 and friends, which are legal inside JSON strings
        event = json.loads(text)  # every output line is whole, valid JSON
        lines.append(event.get("data", {}).get("line", event["type"]))
    assert "Traceback" not in err, err
    return Outcome(proc.returncode, lines, out, err)


def write_plugin(directory: Path, name: str, wat: str) -> Path:
    path = directory / f"{name}.wat"
    path.write_text(wat)
    return path
