"""capi.components, the lean per-line path of component plugins: pinned to wasmtime-py's
own (slow, leaky, but reference) component wrappers by a hypothesis test, and its edges."""

from __future__ import annotations

from typing import Any

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st
from wasmtime.component import Component, Linker

from vrclog_cli.events import STRING_FIELDS
from vrclog_cli.host import capi
from vrclog_cli.host.capi import components as cc
from vrclog_cli.host.component import EXPORT, HOST_INTERFACE

from .components import answering_events, component_wat
from .conftest import SAMPLES

JS_SAMPLE = SAMPLES / "js" / "vrpoker_js.wasm"
NO_HOST = cc.HostCalls(lambda _level, _message: None, lambda _t, _p: False, lambda _t, _p: None, lambda: 0)


def lean(path_or_wat: Any, engine: wasmtime.Engine | None = None) -> cc.ComponentCaller:
    engine = engine or capi.make_component_engine(64 << 20, 16)
    data = path_or_wat.read_bytes() if hasattr(path_or_wat, "read_bytes") else wasmtime.wat2wasm(path_or_wat)
    linker = cc.ComponentLinker(engine, HOST_INTERFACE, NO_HOST)
    return cc.ComponentCaller(engine, linker, Component(engine, bytes(data)), EXPORT, None, None)


class Reference:
    """The same component through wasmtime-py's high-level wrappers."""

    def __init__(self) -> None:
        self.engine = wasmtime.Engine()
        self.component = Component(self.engine, JS_SAMPLE.read_bytes())
        self.linker = Linker(self.engine)
        self.linker.add_wasip2()
        with self.linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
            host.add_func("log", lambda _store, _level, _message: None)
            host.add_func("regex-match", lambda _store, _t, _p: False)
            host.add_func("regex-find-submatch", lambda _store, _t, _p: None)
            host.add_func("now-ms", lambda _store: 0)

    def events(self, line: str) -> list[dict[str, Any]]:
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasmtime.WasiConfig())
        func = self.linker.instantiate(store, self.component).get_func(store, EXPORT)
        assert func is not None
        out = []
        for record in func(store, line):
            item: dict[str, Any] = {"type": record.kind}
            for name in STRING_FIELDS:
                value = getattr(record, name.replace("_", "-"), None) or getattr(record, name, None)
                if value is not None:
                    item[name] = value
            if record.data:
                item["data"] = dict(record.data)
            out.append(item)
        return out


_REFERENCE: list[Reference] = []
_LEAN: list[cc.ComponentCaller] = []

PREFIX = "2024.01.15 23:58:44 Log        -  [VRPoker] "
lines = st.one_of(
    st.text(max_size=80).map(lambda t: PREFIX + t),
    st.tuples(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20)).map(
        lambda p: f"{PREFIX}Player {p[0]} wins with {p[1]}"),
    st.integers(0, 10**6).map(lambda n: f"{PREFIX}Round {n} begins"),
    st.text(max_size=40),
)


@settings(max_examples=60, deadline=None)
@given(lines)
def test_the_lean_path_lifts_what_wasmtime_py_lifts(line: str) -> None:
    if not _REFERENCE:
        _REFERENCE.append(Reference())
        _LEAN.append(lean(JS_SAMPLE))
    raw = line.encode("utf-8", "replace")
    line = raw.decode("utf-8")  # lone surrogates: what the host hands over
    ok, events = _LEAN[0].run(raw, 1 << 20)
    assert ok and events == _REFERENCE[0].events(line)


def test_an_answer_over_the_output_budget_is_refused_while_lifted() -> None:
    caller = lean(component_wat(answering_events(50, "x" * 100),
                                core_extra=f'(data (i32.const 2048) "{"x" * 100}")'))
    ok, events = caller.run(b"Bad", 1 << 20)
    assert ok and len(events) == 50 and events[0] == {"type": "x" * 100}
    with pytest.raises(capi.OutputTooLarge):
        caller.run(b"Bad", 4999)  # 50 * 100 bytes of text


def test_a_plugin_error_comes_back_as_data_not_an_exception() -> None:
    bad = """
        (i32.store8 (i32.const 256) (i32.const 1))
        (i32.store (i32.const 260) (i32.const 2048)) (i32.store (i32.const 264) (i32.const 3))
        (return (i32.const 256))"""
    caller = lean(component_wat(bad, core_extra='(data (i32.const 2048) "why")'))
    assert caller.run(b"Bad", 1 << 20) == (False, ("why", None))
    assert caller.run(b"good", 1 << 20) == (True, [{"type": "good"}])


def test_a_trap_is_a_call_failure_and_the_next_line_is_fresh() -> None:
    caller = lean(component_wat("unreachable"))
    with pytest.raises(capi.CallFailed, match="unreachable"):
        caller.run(b"Bad", 1 << 20)
    assert caller.run(b"fine", 1 << 20) == (True, [{"type": "fine"}])


def test_a_missing_export_is_refused_when_the_caller_is_made() -> None:
    engine = capi.make_component_engine(64 << 20, 4)
    wat = component_wat().replace('(func (export "parse-line")', '(func (export "other")')
    with pytest.raises(capi.CallFailed, match="export parse-line not found"):
        cc.ComponentCaller(engine, cc.ComponentLinker(engine, HOST_INTERFACE, NO_HOST),
                           Component(engine, bytes(wasmtime.wat2wasm(wat))), EXPORT, None, None)


def test_the_component_api_is_all_there() -> None:
    assert cc.missing_symbols() == []
