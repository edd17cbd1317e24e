"""The sessions page in a real headless browser (Chromium from the OS, driven by Playwright).

CI installs Debian's chromium (.ci/run) and sets VRCLOG_REQUIRE_BROWSER=1, so there
a missing browser fails these tests rather than skipping them.  Elsewhere they
skip with the reason.  `python -m tests.test_page docs/sessions-page.png` takes
the README's screenshot.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import CHROMIUM_ARGS, chromium_path, month_of_visits
from tests.conftest import SAMPLE_LOGS, vrclog
from vrclog_cli import visits_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page

def missing(why: str) -> None:
    if os.environ.get("VRCLOG_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{why} (VRCLOG_REQUIRE_BROWSER=1: CI must test the page in a browser)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    executable = chromium_path()
    if executable is None:
        missing("no Chromium (Debian: apt-get install chromium)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Opened:
    """A page and what it did: console messages, script errors, requests beyond its own file."""

    page: Page
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def shown(self) -> int:
        return int(self.page.locator("details.visit:visible").count())

    def search(self, text: str) -> None:
        """Types ``text`` into the search box and waits until the list shows its result."""
        self.page.fill("#search", text)
        self.page.wait_for_function("(q) => document.getElementById('count').dataset.query === q", arg=text)


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Any]:
    contexts = []

    def opener(path: Path) -> Opened:
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        contexts.append(context)
        page = context.new_page()
        opened = Opened(page)
        page.on("console", lambda m: opened.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: opened.console.append(f"pageerror: {e}"))
        def on_dialog(dialog: Dialog) -> None:  # an alert() from a name in a log: a failure
            opened.console.append(f"dialog: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        url = path.resolve().as_uri()
        page.on("request", lambda r: None if r.url == url else opened.requests.append(r.url))
        page.goto(url)
        page.wait_for_selector("#count:not(:empty)")
        return opened

    yield opener
    for context in contexts:
        context.close()


def sample_page(tmp_path: Path) -> Path:
    page = tmp_path / "visits.html"
    done = vrclog("sessions", "--log-dir", SAMPLE_LOGS / "sessions", "--format", "html", "-o", page,
                  env={"TZ": "UTC0"})
    assert done.returncode == 0, done.stderr
    return page


def test_the_sample_page_shows_every_visit_by_day_and_the_search_narrows_them(open_page: Any,
                                                                               tmp_path: Path) -> None:
    opened: Opened = open_page(sample_page(tmp_path))
    page = opened.page
    assert opened.shown() == 7
    assert page.inner_text("#count") == "7 visits"
    assert page.locator("section.day h2 span:first-child").all_inner_texts() == [
        "2025-11-28", "2025-11-29", "2025-11-30"]
    assert page.locator(".track span").count() == 7
    assert page.locator("#people li").first.inner_text().startswith("Night Owl")
    opened.search("harbour")
    assert opened.shown() == 3 and page.inner_text("#count") == "3 of 7 visits match"
    assert page.locator("section.day:visible").count() == 2  # the 28th has no Harbour visit
    opened.search("ダニエル")  # a person: the Pug, and the Harbour visit the crash cut off
    assert page.locator("details.visit:visible .world").all_inner_texts() == [
        "The Great Pug", "Harbour Tea House"]
    assert page.locator("details.visit:visible .tag.open").count() == 1
    opened.search("harbour open")  # every word must match
    assert opened.shown() == 1
    opened.search("no such world")
    assert opened.shown() == 0 and page.inner_text("#count") == "0 of 7 visits match"
    opened.search("")
    assert opened.shown() == 7
    # A visit opened shows its people (longest together first), video and notable events.
    pug = page.locator("details.visit").nth(1)
    pug.locator("summary").click()
    body = pug.locator(".body").inner_text()
    assert "4 people" in body and "Mika the Otter" in body and "Paper Crane (you)" in body
    assert "https://www.youtube.com/watch?v=aqz-KE-bpKQ — Night Owl" in body
    assert "instance reset: in 60 minutes" in body
    assert opened.console == [] and opened.requests == []


def test_names_from_a_log_are_text_never_markup(open_page: Any, tmp_path: Path) -> None:
    log = tmp_path / "output_log_2025-12-01_10-00-00.txt"
    header = "2025.12.01 10:00:{:02d} Debug      -  "
    hostile = "</script><img src=x onerror=alert(1)><script>alert(2)</script>"
    log.write_text("\n".join([
        header.format(1) + "[Behaviour] Joining wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd:1~region(jp)",
        header.format(2) + f"[Behaviour] Entering Room: {hostile}",
        header.format(3) + "[Behaviour] OnPlayerJoined <b onclick=alert(3)>Bold</b> "
                           "(usr_8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b)",
        header.format(4) + "[USharpVideo] Started video load for URL: javascript:alert(4), requested by x",
        header.format(9) + "[Behaviour] OnLeftRoom"]) + "\n", encoding="utf-8")
    page_file = tmp_path / "page.html"
    assert vrclog("sessions", log, "--format", "html", "-o", page_file).returncode == 0
    opened: Opened = open_page(page_file)
    page = opened.page
    assert opened.shown() == 1
    page.locator("details.visit summary").click()
    assert hostile in page.inner_text("details.visit summary")
    assert "<b onclick=alert(3)>Bold</b>" in page.inner_text(".body")
    assert page.locator(".body a").count() == 0  # a javascript: URL is shown, never linked
    assert page.locator("img, b").count() == 0
    assert opened.console == [] and opened.requests == []


def test_no_visits_is_a_page_that_says_so(open_page: Any, tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_bytes(b"")
    page_file = tmp_path / "empty.html"
    assert vrclog("sessions", log, "--format", "html", "-o", page_file).returncode == 0
    opened: Opened = open_page(page_file)
    assert opened.page.inner_text("#count") == "0 visits" and opened.shown() == 0
    assert opened.page.inner_text("#people") == "nobody yet"
    opened.search("anything")
    assert opened.console == [] and opened.requests == []


def test_a_month_of_visits_loads_and_searches(open_page: Any, tmp_path: Path) -> None:
    """3 000 visits (a month of heavy play): drawn, counted, searched; details drawn when opened."""
    page_file = tmp_path / "month.html"
    page_file.write_text(visits_page(month_of_visits(3000)), encoding="utf-8")
    opened: Opened = open_page(page_file)
    page = opened.page
    assert page.inner_text("#count") == "3000 visits"
    assert page.locator("section.day").count() == 30
    assert page.locator("details.visit .body").count() == 0  # nothing drawn before it is opened
    opened.search("wrld_00000042")
    assert opened.shown() == len([i for i in range(3000) if i % 97 == 42])
    opened.search("player399")
    assert opened.shown() == len([i for i in range(3000) if any((i + p) % 400 == 399 for p in range(10))])
    assert opened.console == [] and opened.requests == []


def take_screenshot(png: Path) -> None:
    """The README's picture: the sample folder's page with the Pug visit opened."""
    import tempfile

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as driver:
        page_file = sample_page(Path(folder))
        browser = driver.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(page_file.resolve().as_uri())
        page.locator("details.visit").nth(1).locator("summary").click()
        page.screenshot(path=str(png), full_page=True)
        browser.close()


if __name__ == "__main__":
    take_screenshot(Path(sys.argv[1]))
