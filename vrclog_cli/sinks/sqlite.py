"""Events into SQLite (``--output sqlite:PATH``, ``--db PATH``), exactly once.

One ``events`` table, ``id`` its primary key (run/provenance.py: the same line
always gives the same id), and the cursor (sinks/state.py's, per source) in
the same database.  Each flush commits the events written since the last one
and the cursors they bring forward in one transaction, so the database is its
own cursor: a run killed at any moment leaves the last committed state, the
next run starts from its cursors, and a line read twice inserts nothing twice
(``INSERT OR IGNORE`` on the id).  WAL mode: readers (a dashboard, ``sqlite3``)
are never blocked by the run, and a commit costs no fsync (synchronous=NORMAL:
what a commit wrote survives a crash of the process; a power cut may lose the
last ones, never the database).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import OutputError, UsageError
from ..events import Event, EventSource
from ..records import asdict
from .state import Cursor, cursor_now, resume_point

#: What marks a database as vrclog's, and its schema's version.  Version 2: ids made by
#: one BLAKE2b (run/provenance.py); version 1's were two SHA-256s, and a rerun into such
#: a database would insert every event again under its new id.
SCHEMA = "vrclog-events"
SCHEMA_VERSION = 2

_TABLES = """
CREATE TABLE IF NOT EXISTS vrclog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    timestamp TEXT,
    player_name TEXT,
    player_id TEXT,
    world_id TEXT,
    world_name TEXT,
    instance_id TEXT,
    data TEXT,              -- JSON object of strings, or NULL
    source_file TEXT NOT NULL,
    source_line INTEGER NOT NULL,
    source_offset INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_type ON events (type, timestamp);
CREATE INDEX IF NOT EXISTS events_timestamp ON events (timestamp);
CREATE TABLE IF NOT EXISTS cursors (
    source TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    head TEXT NOT NULL,
    head_bytes INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    line INTEGER NOT NULL
);
"""

_INSERT = ("INSERT OR IGNORE INTO events (id, type, timestamp, player_name, player_id, world_id, "
           "world_name, instance_id, data, source_file, source_line, source_offset) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_UPSERT_CURSOR = ('INSERT OR REPLACE INTO cursors (source, size, head, head_bytes, "offset", line) '
                  "VALUES (?, ?, ?, ?, ?, ?)")


class DatabaseError(UsageError):
    """A database vrclog cannot write its events to: not vrclog's, locked, or unreadable."""


class SqliteWriter:
    """An EventWriter into SQLite that keeps the run's cursor (``keeps_cursor``): the runner
    asks it where each file starts and tells it how far each is written."""

    keeps_cursor = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._rows: list[tuple[Any, ...]] = []
        self._pending: dict[str, tuple[int, int]] = {}
        self._purge: set[str] = set()  # sources whose stored events are no longer theirs
        self._touched: set[str] = set()  # sources with events since the last flush
        try:
            # isolation_level=None: transactions are begun and committed here, not by sqlite3.
            self._db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot open the database: {exc}") from None
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise DatabaseError(f"{self.path}: {_what(exc)}") from None
        except DatabaseError:
            self._db.close()
            raise

    def _prepare(self) -> None:
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "vrclog_meta" not in tables:
            raise DatabaseError(f"{self.path}: not a vrclog database (it has other tables: "
                                f"{', '.join(sorted(tables)[:5])}); give a new file")
        if tables:
            meta = dict(db.execute("SELECT key, value FROM vrclog_meta"))
            if meta.get("schema") != SCHEMA or meta.get("version") != str(SCHEMA_VERSION):
                raise DatabaseError(f"{self.path}: a database of schema {meta.get('schema')!r} "
                                    f"version {meta.get('version')!r}; this vrclog writes "
                                    f"{SCHEMA} version {SCHEMA_VERSION} (its events' ids differ: "
                                    "give a new file, or remove this one to start over)")
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise DatabaseError(f"{self.path}: cannot use write-ahead logging (WAL) here")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("BEGIN IMMEDIATE")  # fails at once if another run holds the database
        try:
            for statement in filter(str.strip, _TABLES.split(";")):  # not executescript: it commits
                db.execute(statement)
            db.execute("INSERT OR IGNORE INTO vrclog_meta VALUES ('schema', ?), ('version', ?)",
                       (SCHEMA, str(SCHEMA_VERSION)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.cursors: dict[str, Cursor] = {row[0]: Cursor(*row[1:]) for row in db.execute(
            'SELECT source, size, head, head_bytes, "offset", line FROM cursors')}

    # --- the cursor (as sinks/state.State) ---

    def start_of(self, source: str) -> tuple[int, int]:
        """As State.start_of; a file that is no longer the one the database saw (truncated,
        replaced) has its old events removed with the first commit of its new ones, so
        the database holds what the files hold now."""
        cursor = self.cursors.get(source)
        start = resume_point(source, cursor)
        if cursor is not None and start == (0, 0) and os.path.isfile(source):
            self._purge.add(source)
        return start

    def advance(self, source: str, offset: int, line: int) -> None:
        self._pending[source] = (offset, line)

    def save(self) -> None:
        """Nothing of its own: ``flush`` commits the cursors with the events."""

    # --- EventWriter ---

    def write(self, source: str, number: int, line: str, events: list[Event]) -> None:
        rows = self._rows
        for event in events:
            where = event.source
            if where is None or event.id is None:
                raise ValueError("SQLite output needs events with provenance (source and id)")
            self._touched.add(source)
            rows.append((event.id, event.type, event.timestamp or None, event.player_name or None,
                         event.player_id or None, event.world_id or None, event.world_name or None,
                         event.instance_id or None,
                         json.dumps(event.data, ensure_ascii=False) if event.data else None,
                         where.file, where.line, where.offset))

    def flush(self) -> None:
        """The events written since the last flush and the cursors they move, in one
        transaction."""
        if not self._rows and not self._pending and not self._purge:
            return
        # A source whose events go in gets a cursor row now (at 0 when it has none yet):
        # so a file with events in the database always has one, and a file truncated or
        # replaced later is recognised and its old events removed (start_of).
        starts = {source: (0, 0) for source in self._touched if source not in self.cursors}
        moved = {source: cursor for source, (offset, line) in (starts | self._pending).items()
                 if (cursor := cursor_now(source, offset, line)) is not None}  # None: gone
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for source in self._purge:
                    db.execute("DELETE FROM events WHERE source_file = ?", (source,))
                    db.execute("DELETE FROM cursors WHERE source = ?", (source,))
                db.executemany(_INSERT, self._rows)
                db.executemany(_UPSERT_CURSOR, [(source, *asdict(c).values()) for source, c in moved.items()])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OutputError(f"{self.path}: cannot write to the database: {_what(exc)}") from None
        for source in self._purge:
            self.cursors.pop(source, None)
        self.cursors.update(moved)
        self._purge.clear()
        self._touched.clear()
        self._rows.clear()
        self._pending.clear()

    def reader_gone(self) -> bool:
        return False

    def close(self) -> None:
        self._db.close()


def _what(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return "the database is locked by another program (another vrclog run?)"
    if "not a database" in text:
        return "not an SQLite database"
    return text


def database_events(path: str | os.PathLike[str]) -> Iterator[Event]:
    """The events a database holds, in log order (each file's lines in order, the files by
    their first event's time), each with its source and id: what ``sessions`` folds.

    Read-only (a run writing to it is not disturbed: WAL); a file that is not a vrclog
    database is a DatabaseError, as for the writer."""
    where = Path(path)
    if not where.is_file():
        raise DatabaseError(f"{where}: no such database")
    try:
        db = sqlite3.connect(f"{where.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error as exc:
        raise DatabaseError(f"{where}: cannot open the database: {_what(exc)}") from None
    try:
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            meta = dict(db.execute("SELECT key, value FROM vrclog_meta")) if "vrclog_meta" in tables else {}
            if meta.get("schema") != SCHEMA:
                raise DatabaseError(f"{where}: not a vrclog database (written by `vrclog parse --db`)")
            rows = db.execute(_EVENTS_IN_LOG_ORDER)
            for kind, stamp, name, user, world, world_name, instance, data, file, line, offset, \
                    event_id in rows:
                yield Event(kind, stamp, name, user, world, world_name, instance,
                            json.loads(data) if data else None, EventSource(file, line, offset), event_id)
        except sqlite3.Error as exc:
            raise DatabaseError(f"{where}: cannot read the database: {_what(exc)}") from None
    finally:
        db.close()


# rowid orders a line's events as they were written (a line's events share its offset).
_EVENTS_IN_LOG_ORDER = """
SELECT type, timestamp, player_name, player_id, world_id, world_name, instance_id, data,
       source_file, source_line, source_offset, id
FROM events JOIN (SELECT source_file, MIN(timestamp) AS first FROM events GROUP BY source_file)
     USING (source_file)
ORDER BY first, source_file, source_offset, events.rowid
"""
