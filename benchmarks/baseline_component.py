"""A plain component host with wasmtime-py's own component API, for comparison.

What a first implementation of design.md 2d looks like with wasmtime-py's
high-level API: one Engine with default settings, a component Linker with WASI
0.2 and the host interface (RE2, as vrclog's), and per line a new Store,
``Linker.instantiate`` and the exported function's ``__call__``, whose result
wasmtime-py lifts into Python records.  It writes the same JSON Lines as
baseline_host.py (its ``render``), so outputs can be compared.

    python benchmarks/baseline_component.py --plugin P.wasm [--cache F] LOG > events.jsonl

``--cache``: where its compiled component is kept between runs (wasmtime-py's
serialize/deserialize), so that, like vrclog's, only its first run compiles.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import re2
import wasmtime
from wasmtime.component import Component, Linker

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script
from benchmarks.baseline_host import FIELDS, render

HOST = "vrclog:plugin/host@1.0.0"


def regex_match(_store: object, text: str, pattern: str) -> bool:
    try:
        return re2.search(pattern, text) is not None
    except re2.error:
        return False


def regex_find_submatch(_store: object, text: str, pattern: str) -> list[str] | None:
    try:
        match = re2.search(pattern, text)
    except re2.error:
        return None
    if match is None:
        return None
    return [match.group(0)] + [group or "" for group in match.groups()]


class ComponentHost:
    def __init__(self, path: str, cache: str | None = None) -> None:
        self.engine = wasmtime.Engine()
        if cache is not None and os.path.exists(cache):
            self.component = Component.deserialize_file(self.engine, cache)
        else:
            with open(path, "rb") as f:
                self.component = Component(self.engine, f.read())
            if cache is not None:
                with open(cache, "wb") as f:
                    f.write(self.component.serialize())
        self.linker = Linker(self.engine)
        self.linker.add_wasip2()
        with self.linker.root() as root, root.add_instance(HOST) as host:
            host.add_func("log", lambda _store, _level, _message: None)
            host.add_func("regex-match", regex_match)
            host.add_func("regex-find-submatch", regex_find_submatch)
            host.add_func("now-ms", lambda _store: int(time.time() * 1000))

    def parse_line(self, line: str) -> list[dict[str, object]]:
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasmtime.WasiConfig())
        func = self.linker.instantiate(store, self.component).get_func(store, "parse-line")
        assert func is not None
        events: list[dict[str, object]] = []
        for record in func(store, line):  # an error result raises
            event: dict[str, object] = {"type": record.kind}
            for name in FIELDS:
                value = getattr(record, name.replace("_", "-"), None) or getattr(record, name, None)
                if value is not None:
                    event[name] = value
            if record.data:
                event["data"] = dict(record.data)
            events.append(event)
        return events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugin", required=True)
    parser.add_argument("--cache")
    parser.add_argument("log")
    args = parser.parse_args()
    host = ComponentHost(args.plugin, args.cache)
    with open(args.log, encoding="utf-8", errors="replace", newline="") as f:
        for raw in f:
            line = raw.rstrip("\n").removesuffix("\r")
            for event in host.parse_line(line):
                sys.stdout.write(render(event) + "\n")


if __name__ == "__main__":
    main()
