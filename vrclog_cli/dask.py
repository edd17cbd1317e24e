"""vrclog as a map step on Dask (``pip install vrclog[dask]``): logs beyond one machine.

    import dask.bag as db
    from vrclog_cli.dask import parse_bag, events_of, errors_of

    lines = db.read_text("logs/*.log.gz", include_path=True)   # one partition per file
    records = parse_bag(lines, plugins=["vrpoker.wasm"]).persist()
    events, errors = events_of(records), errors_of(records)
    json_lines(events).to_textfiles("out/events-*.jsonl.gz")   # as vrclog parse writes them

Each record is an event's JSON object, as ``vrclog parse`` writes it, with
``"source"`` and ``"line"`` added (where it was found), or, for a per-line
error, ``{"error": {"source", "line", "parser", "kind", "message", "code"}}``:
errors are data in the same bag, never lost.  ``json_lines`` writes events as
``vrclog parse`` does (without the two keys).  Plugins travel
pickled by reference (path, content hash, limits); each worker process loads
each plugin once, its compiled code from vrclog's module cache.  Workers need
vrclog installed and the plugin files at the same paths.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import LineProblem
from .limits import Limits
from .records import asdict
from .run.api import located_events
from .sinks.writer import line_safe

if TYPE_CHECKING:
    from dask.bag import Bag

    from .host.plugin import Plugin

Record = dict[str, Any]


def parse_bag(lines: Bag, *, plugins: Sequence[str | Path | Plugin] = (), builtin: bool = False,
              limits: Limits | None = None, prefilter: bool = True, source: str = "<bag>",
              provenance: bool = False) -> Bag:
    """A bag of records (see the module) from a bag of lines, or of (line, path) pairs
    as ``read_text(..., include_path=True)`` gives them (then each record names its
    file, and line numbers count from each file's start when a partition is a file).

    ``provenance``: each event's record has the ``source`` object (file, line, byte
    offset) and ``id`` that ``vrclog parse --provenance`` gives it, instead of the two
    keys; the ids equal vrclog parse's where each partition is a whole file (read_text's
    default), so a cluster's output can be deduplicated with any other run's."""
    from .host.plugin import Plugin, Runtime

    limits = limits or Limits()
    paths = [p for p in plugins if not isinstance(p, Plugin)]
    runtime = Runtime(limits) if paths else None  # loads here check each plugin before any work
    loaded = [p if isinstance(p, Plugin) else runtime.load(p, prefilter=prefilter)  # type: ignore[union-attr]
              for p in plugins]
    return lines.map_partitions(_parse_partition, loaded, builtin, limits, source, provenance)


def events_of(records: Bag) -> Bag:
    return records.filter(_is_event)


def errors_of(records: Bag) -> Bag:
    """The per-line errors, as LineProblem fields."""
    return records.filter(_is_error).pluck("error")


def json_lines(records: Bag) -> Bag:
    """Each record as one line of JSON, as ``vrclog parse`` writes an event (compact,
    UTF-8, U+2028 and U+2029 escaped): what ``Bag.to_textfiles`` takes."""
    return records.map(_json_line)


def _json_line(record: Record) -> str:
    if "error" not in record and "id" not in record:  # as vrclog parse writes it, without
        record = {k: v for k, v in record.items() if k not in ("source", "line")}  # where it was found
    return line_safe(json.dumps(record, ensure_ascii=False, separators=(",", ":")))


def _is_event(record: Record) -> bool:
    return "error" not in record


def _is_error(record: Record) -> bool:
    return "error" in record


def _parse_partition(items: Iterable[Any], plugins: list[Plugin], builtin: bool, limits: Limits,
                     source: str, provenance: bool = False) -> list[Record]:
    """One partition on a worker: runs there, plugins unpickled (loaded once per process)."""
    records: list[Record] = []

    def keep_problem(problem: LineProblem) -> None:
        records.append({"error": asdict(problem)})

    for path, group in itertools.groupby(items, key=_path_of):
        lines = (item[0] if isinstance(item, tuple) else item for item in group)
        for where, number, event in located_events(lines, plugins=plugins, builtin=builtin,
                                                   limits=limits, on_error=keep_problem,
                                                   source=path or source, provenance=provenance):
            records.append(event.to_dict() if provenance else
                           {**event.to_dict(), "source": where, "line": number})
    return records


def _path_of(item: Any) -> str | None:
    return str(item[1]) if isinstance(item, tuple) else None
