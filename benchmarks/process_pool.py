"""What a process pool would give: the same plugin calls, split over N processes.

Threads share one interpreter lock, so only the wasm part of a call runs in
parallel.  Processes each have their own: this measures that alternative on
the library API (load once per process, call per line, results back in order).
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from vrclog_cli.host.plugin import Plugin, Runtime

_plugin: Plugin | None = None


def _init(path: str) -> None:
    global _plugin
    _plugin = Runtime().load(path)


def _work(lines: list[str]) -> int:
    assert _plugin is not None
    return sum(len(_plugin.call(line)) for line in lines)


def lines_per_second(plugin: Path, log: Path, processes: int, batch: int = 512) -> float:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    batches = [lines[i:i + batch] for i in range(0, len(lines), batch)]
    with ProcessPoolExecutor(processes, initializer=_init, initargs=(str(plugin),)) as pool:
        list(pool.map(_work, batches[:2]))  # warm up every worker
        started = time.perf_counter()
        sum(pool.map(_work, batches))
        return len(lines) / (time.perf_counter() - started)
