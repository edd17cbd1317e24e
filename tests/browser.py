"""The browser the page's tests and benchmark use, and a month of visits to load into it.

No pytest here: `make bench` imports it (tests/conftest.py would point vrclog's cache
at a temporary folder for every run after it).
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone

from vrclog_cli import Visit
from vrclog_cli.vrchat.sessions import Person

#: Chromium's flags for a closed network and no first-run work (the machine's notes).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    for name in (os.environ.get("VRCLOG_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    return None


def month_of_visits(count: int) -> list[Visit]:
    """``count`` visits over 30 days, ten people each, a video in every third."""
    start = datetime(2025, 11, 1, 0, 0, tzinfo=timezone(timedelta(hours=9)))
    visits = []
    for i in range(count):
        begin = start + timedelta(minutes=i * 30 * 24 * 60 // count)
        end = begin + timedelta(minutes=12)
        visit = Visit(begin, world_id=f"wrld_{i % 97:08d}", world_name=f"World {i % 97}",
                      instance_id=f"{i}~region(jp)", instance_type="public", region="jp",
                      end=end, end_reason="next_join")
        for p in range(10):
            who = (i + p) % 400
            visit.people[f"usr_{who}"] = Person(f"Player{who:03d}", f"usr_{who}",
                                                [(begin + timedelta(seconds=p), None)])
        if i % 3 == 0:
            visit.videos.append({"timestamp": begin.isoformat(), "url": f"https://v.example/{i}",
                                 "requested_by": None})
        visits.append(visit)
    return visits
