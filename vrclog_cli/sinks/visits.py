"""Where ``vrclog sessions`` puts a run's events: folded into visits (vrchat/sessions.py).

An EventWriter, so a sessions run is a parse run in every other way (sources,
workers, errors, Ctrl-C, exit codes).  JSON Lines go out as each visit ends;
a table or a page needs them all, so they are kept for ``finish``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from ..events import Event, orjson_module
from ..vrchat.page import visits_page
from ..vrchat.sessions import Visit, VisitFolder
from .state import write_atomically
from .writer import UNPAIRED_AS_FFFD, line_safe, line_safe_bytes, reader_gone


def visit_line(visit: Visit) -> bytes:
    """One visit as a JSON line's bytes (no newline); U+2028/9 left for line_safe_bytes."""
    return json_bytes(visit.to_dict())


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON; a lone surrogate from a log's broken text becomes U+FFFD."""
    try:
        return orjson_module().dumps(value)
    except TypeError:  # a lone surrogate: orjson refuses it
        return line_safe(json.dumps(value, ensure_ascii=False, separators=(",", ":"))).encode(
            "utf-8", UNPAIRED_AS_FFFD)


class VisitWriter:
    """Events in, visits out: written as JSON Lines to ``out`` as each ends, or (``out`` None)
    kept in ``visits`` for a table or a page.  ``since``/``until``: only visits that overlap
    that time (a visit is folded whole from all its events, then kept or left out)."""

    def __init__(self, out: BinaryIO | None, *, since: datetime | None = None,
                 until: datetime | None = None) -> None:
        self.out = out
        self.since, self.until = since, until
        self.visits: list[Visit] = []
        self._folder = VisitFolder()
        self._lines: list[bytes] = []

    def write(self, source: str, number: int, line: str, events: list[Event]) -> None:
        add = self._folder.add
        for event in events:
            done = add(event, source)
            if done:
                self._take(done)

    def _take(self, visits: Iterable[Visit]) -> None:
        for visit in visits:
            if self.since is not None and (visit.end or visit.start) < self.since:
                continue
            if self.until is not None and visit.start > self.until:
                continue
            if self.out is None:
                self.visits.append(visit)
            else:
                self._lines.append(visit_line(visit))

    def flush(self) -> None:
        if self.out is None:
            return
        if self._lines:
            self._lines.append(b"")
            data = line_safe_bytes(b"\n".join(self._lines))
            self._lines.clear()
            self.out.write(data)
        self.out.flush()

    def finish(self) -> list[Visit]:
        """Ends the last log's visit, writes what is left; the visits kept (none for JSON Lines)."""
        self._take(self._folder.finish())
        self.flush()
        return self.visits

    def reader_gone(self) -> bool:
        return self.out is not None and reader_gone(self.out)


def visits_bytes(visits: Sequence[Visit], fmt: str, *, title: str = "VRChat visits") -> bytes:
    """The visits as JSON Lines (``jsonl``) or the page (``html``), in UTF-8."""
    if fmt == "html":
        return visits_page(visits, title=title).encode("utf-8", "replace")
    if fmt == "jsonl":
        return line_safe_bytes(b"".join(visit_line(v) + b"\n" for v in visits))
    raise ValueError(f"no such visits format: {fmt!r}")


def save_visits(path: str | os.PathLike[str], visits: Sequence[Visit], fmt: str, *,
                title: str = "VRChat visits") -> None:
    """``visits_bytes`` as a file, written whole or not at all (an earlier page stays until
    the new one is complete)."""
    write_atomically(Path(path), visits_bytes(visits, fmt, title=title), what="the visits")
