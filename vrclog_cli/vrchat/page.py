"""The visits as one self-contained HTML page (``vrclog sessions --format html``).

Everything is inline (CSS, JS; the timeline is drawn with positioned boxes), and a
Content-Security-Policy forbids every fetch, so the page opens anywhere, offline,
and can be mailed.  The visits travel as JSON in a ``<script type=application/json>``
and are drawn by the page's script with ``textContent`` only: a world or player
name is text, never markup.  A visit's details are drawn when it is opened, so a
month of logs (thousands of visits) stays quick; the search box hides what does
not match.  tests/test_page.py opens it in headless Chromium.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from .sessions import Visit, people_met

#: People listed under "Most time with".
TOP_PEOPLE = 20


def visits_page(visits: Sequence[Visit], *, title: str = "VRChat visits", generator: str = "vrclog") -> str:
    """The page, as text (UTF-8 when written)."""
    data = {"visits": [_compact(v) for v in visits],
            "people": [[p["name"], p["overlap_s"], p["visits"]] for p in people_met(visits)[:TOP_PEOPLE]]}
    return (_template().replace("__TITLE__", html.escape(title))
            .replace("__GENERATOR__", html.escape(generator))
            .replace("__DATA__", script_json(data)))


def script_json(value: Any) -> str:
    """JSON that cannot end its ``<script>`` element or start a comment in it: ``<``, ``>``
    and ``&`` escaped, and U+2028/9 (line breaks to older JavaScript)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate: "?"


def _compact(visit: Visit) -> list[Any]:
    """One visit as the page's script reads it (positional: a month of visits is megabytes)."""
    full = visit.to_dict()
    instance = (visit.instance_id or "").split("~", 1)[0]
    return [full["start"], full["end"], full["duration_s"], visit.world_name or visit.world_id or "?",
            visit.world_id, instance, visit.instance_type, visit.region, visit.open, visit.end_reason,
            [[p["name"], p["you"], p["overlap_s"], p["joined"], p["left"]] for p in full["players"]],
            [[v["timestamp"], v["url"], v["requested_by"]] for v in visit.videos],
            [[s["timestamp"], s["path"]] for s in visit.screenshots],
            [[n["timestamp"], n["type"], n["detail"]] for n in visit.notable],
            visit.source]


@functools.cache
def _template() -> str:
    """page.html, beside this module (package data): the page's markup, style and script."""
    return (resources.files(__package__) / "page.html").read_text(encoding="utf-8")
