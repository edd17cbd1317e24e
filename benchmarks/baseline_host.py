"""A plain wasmtime-py host, written the straightforward way, for comparison.

This is what a first implementation of the ABI looks like with wasmtime-py's
high-level API: a new Store and Linker.instantiate per line, Func.__call__,
Memory.read/write, json.dumps of a dict, host functions through
Linker.define_func.  It speaks ABI v1 and v2 (asking abi_version on every
line, as the straightforward host would) and knows nothing of prefilters.  It
shares no code with vrclog (only RE2 for identical regex semantics) and writes
the same JSON Lines, so outputs can be compared.

    python benchmarks/baseline_host.py --plugin P.wasm LOG > events.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import cast

import re2
import wasmtime

FIELDS = ("timestamp", "player_name", "player_id", "world_id", "world_name", "instance_id")


class BaselineHost:
    def __init__(self, path: str) -> None:
        self.engine = wasmtime.Engine()
        self.module = wasmtime.Module.from_file(self.engine, path)
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()

        def memory(caller: wasmtime.Caller) -> wasmtime.Memory:
            mem = caller.get("memory")
            assert isinstance(mem, wasmtime.Memory)
            return mem

        def regex_match(caller: wasmtime.Caller, sp: int, sl: int, rp: int, rl: int) -> int:
            mem = memory(caller)
            text = bytes(mem.read(caller, sp, sp + sl))
            pattern = bytes(mem.read(caller, rp, rp + rl))
            try:
                return 1 if re2.search(pattern, text) else 0
            except re2.error:
                return 0

        def regex_find_submatch(caller: wasmtime.Caller, sp: int, sl: int, rp: int, rl: int,
                                op: int, om: int) -> int:
            mem = memory(caller)
            text = bytes(mem.read(caller, sp, sp + sl))
            pattern = bytes(mem.read(caller, rp, rp + rl))
            try:
                m = re2.search(pattern, text)
            except re2.error:
                return 0
            if m is None:
                return 0
            groups = [m.group(0)] + [g or b"" for g in m.groups()]
            out = json.dumps([g.decode("utf-8", "replace") for g in groups],
                             ensure_ascii=False, separators=(",", ":")).encode()
            if len(out) > om:
                return -1
            mem.write(caller, out, op)
            return len(out)

        def log(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
            return None

        def now_ms() -> int:
            return int(time.time() * 1000)

        self.linker.define_func("env", "regex_match", wasmtime.FuncType([i32] * 4, [i32]),
                                regex_match, access_caller=True)
        self.linker.define_func("env", "regex_find_submatch", wasmtime.FuncType([i32] * 6, [i32]),
                                regex_find_submatch, access_caller=True)
        self.linker.define_func("env", "log", wasmtime.FuncType([i32] * 3, []), log, access_caller=True)
        self.linker.define_func("env", "now_ms", wasmtime.FuncType([], [i64]), now_ms)

    def parse_line(self, line: str) -> list[dict[str, object]]:
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasmtime.WasiConfig())
        instance = self.linker.instantiate(store, self.module)
        exports = instance.exports(store)

        def func(name: str) -> wasmtime.Func:  # exports are typed as any extern
            return cast(wasmtime.Func, exports[name])

        if "_initialize" in exports:
            func("_initialize")(store)
        memory = cast(wasmtime.Memory, exports["memory"])
        if func("abi_version")(store) == 2:  # the raw line where alloc puts it; no free
            data = line.encode()
            where = cast(int, func("alloc")(store, len(data))) & 0xFFFFFFFF
        else:
            data = json.dumps({"line": line}).encode()
            where = 0x10000
        memory.write(store, data, where)
        packed = cast(int, func("parse_line")(store, where, len(data)))
        ptr, length = packed & 0xFFFFFFFF, (packed >> 32) & 0xFFFFFFFF
        out = bytes(memory.read(store, ptr, ptr + length))
        if "free" in exports and where == 0x10000:
            func("free")(store, ptr, length)
        doc = json.loads(out)
        if not doc.get("ok"):
            raise RuntimeError(doc.get("error"))
        return doc.get("events") or []


def render(event: dict[str, object]) -> str:
    out: dict[str, object] = {"type": event["type"]}
    for name in FIELDS:
        value = event.get(name)
        if value:
            if name == "timestamp" and isinstance(value, str) and len(value) == 19:
                value = datetime.fromisoformat(value).astimezone().isoformat()
            out[name] = value
    if event.get("data"):
        out["data"] = event["data"]
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugin", required=True)
    parser.add_argument("log")
    args = parser.parse_args()
    host = BaselineHost(args.plugin)
    out = sys.stdout
    with open(args.log, encoding="utf-8", errors="replace", newline="") as f:
        for raw in f:
            line = raw.rstrip("\n").removesuffix("\r")
            for event in host.parse_line(line):
                out.write(render(event) + "\n")


if __name__ == "__main__":
    main()
