"""The Dask half of bench.py's dask table: vrclog_cli.dask on a real LocalCluster.

Apart because Dask's API is untyped (pyproject.toml lets only this module and
vrclog_cli.dask call it untyped).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import dask.bag as db
import distributed
from dask.base import compute

from vrclog_cli.dask import errors_of, events_of, parse_bag


def cluster_run(folder: Path, plugin: str, rounds: int) -> tuple[float, float, int]:
    """On a LocalCluster of 2 worker processes, parse folder/*.log.gz ``rounds`` times:
    (the cluster's start-up s, the median round's s, the events of a round)."""
    started = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        startup = time.perf_counter() - started
        times, count = [], 0
        for _ in range(rounds):
            begun = time.perf_counter()
            # One compute for both counts, nothing persisted: each round parses anew
            # (persisted results would be reused, their keys being the same).
            records = parse_bag(db.read_text(str(folder / "*.log.gz"), include_path=True),
                                plugins=[plugin])
            count, errors = compute(events_of(records).count(), errors_of(records).count())
            assert errors == 0
            times.append(time.perf_counter() - begun)
    return startup, statistics.median(times), int(count)
