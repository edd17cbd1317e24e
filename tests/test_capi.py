"""The C-API fast path on its own: lifecycle, memory access, traps, deadlines, exit."""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

import pytest
import wasmtime

from vrclog_cli.host import capi

from .conftest import SAMPLES, python

MIB = 1 << 20


@pytest.fixture(scope="module")
def engine() -> capi.Engine:
    return capi.make_engine(64 * MIB, 4)


def module_of(engine: capi.Engine, wat_or_path: str) -> capi.Module:
    wasm = Path(wat_or_path).read_bytes() if wat_or_path.endswith(".wasm") else wasmtime.wat2wasm(wat_or_path)
    return capi.Module.compile(engine, bytes(wasm))


def pre_for(engine: capi.Engine, wat_or_path: str) -> capi.InstancePre:
    linker = capi.Linker(engine)
    linker.define_wasi()
    return linker.instantiate_pre(module_of(engine, wat_or_path))


WAT = """(module (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i64)
    (i64.extend_i32_u (i32.add (local.get 0) (local.get 1))))
  (func (export "boom") unreachable)
  (func (export "spin") (loop $l (br $l))))"""


def test_api_is_present() -> None:
    """The library is wasmtime-py's own file, found without importing wasmtime-py."""
    from vrclog_cli.host.capi import library
    from vrclog_cli.host.installed import wasmtime_version

    assert Path(library.PATH).samefile(wasmtime._ffi.dll._name)
    assert wasmtime_version() != "unknown"


def test_call_memory_and_close(engine: capi.Engine) -> None:
    inst = capi.Instance(engine, pre_for(engine, WAT), 64 * MIB, None)
    try:
        assert inst.call(inst.func(b"add"), 40, 2) == 42
        assert inst.call(inst.func(b"add"), -1, 0) == 0xFFFFFFFF  # i32 args are unsigned to wasm
        inst.write(100, b"hello")
        assert inst.read(100, 5) == b"hello"
        _, size = inst.memory()
        assert size == 65536
        with pytest.raises(capi.CallFailed, match="outside memory"):
            inst.read(65530, 10)
        with pytest.raises(capi.CallFailed, match="cannot hold"):
            inst.write(65535, b"ab")
        with pytest.raises(capi.CallFailed, match="outside memory"):
            inst.read(-1, 1)
        with pytest.raises(capi.CallFailed, match="not found"):
            inst.func(b"missing")
    finally:
        inst.close()
    inst.close()  # idempotent


def test_trap_message(engine: capi.Engine) -> None:
    inst = capi.Instance(engine, pre_for(engine, WAT), 64 * MIB, None)
    with pytest.raises(capi.CallFailed, match="unreachable"):
        inst.call(inst.func(b"boom"))
    inst.close()


def test_deadline_hook_traps_a_spinning_call(engine: capi.Engine) -> None:
    calls = []

    def hook() -> str | None:
        calls.append(1)
        return "stop now" if len(calls) >= 3 else None

    old = capi.trampolines._deadline_hook
    capi.set_deadline_hook(hook)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.005):
            engine.increment_epoch()

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        inst = capi.Instance(engine, pre_for(engine, WAT), 64 * MIB, None)
        with pytest.raises(capi.CallFailed, match="stop now"):
            inst.call(inst.func(b"spin"))
        inst.close()
        assert len(calls) == 3
    finally:
        stop.set()
        ticker.join()
        if old is not None:
            capi.set_deadline_hook(old)


def test_pool_exhaustion_is_a_call_failure() -> None:
    engine = capi.make_engine(64 * MIB, 1)
    pre = pre_for(engine, WAT)
    first = capi.Instance(engine, pre, 64 * MIB, None)
    try:
        with pytest.raises(capi.CallFailed, match="concurrent"):
            capi.Instance(engine, pre, 64 * MIB, None)
    finally:
        first.close()
    capi.Instance(engine, pre, 64 * MIB, None).close()  # the slot is reusable


def test_host_function_exception_never_escapes(engine: capi.Engine) -> None:
    linker = capi.Linker(engine)

    def broken(_caller: object, _x: int) -> int:
        raise RuntimeError("boom")

    capi.define_host_func(linker, "env", "f", ("i32",), ("i32",), broken, fallback=7)
    module = module_of(engine, """(module (import "env" "f" (func $f (param i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "g") (result i64) (i64.extend_i32_u (call $f (i32.const 1)))))""")
    inst = capi.Instance(engine, linker.instantiate_pre(module), 64 * MIB, None)
    assert inst.call(inst.func(b"g")) == 7
    inst.close()


def test_interpreter_exits_cleanly_with_live_runtimes() -> None:
    script = textwrap.dedent(f"""
        from vrclog_cli.host.plugin import Runtime
        keep = []
        for _ in range(5):
            rt = Runtime()
            p = rt.load({str(SAMPLES / 'vrpoker.wasm')!r})
            p.call("x")
            keep.append((rt, p))
        print("done")
    """)
    result = python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"


def test_runtimes_are_freed() -> None:
    """A runtime reserves address space for its instance pool: dropping it must free it."""
    import gc
    import time
    import weakref

    from vrclog_cli.host.plugin import Runtime

    refs, engines = [], []
    for _ in range(40):
        rt = Runtime(on_log=lambda _log: None)
        plugin = rt.load(SAMPLES / "vrpoker.wasm")
        plugin.call("x [VRPoker] Round 1 begins")
        refs.append(weakref.ref(rt))
        engines.append(weakref.ref(rt.engine))
        del rt, plugin
    gc.collect()
    assert all(ref() is None for ref in refs)
    deadline = time.monotonic() + 2
    while any(ref() is not None for ref in engines) and time.monotonic() < deadline:
        time.sleep(0.01)  # the ticker lets go of a dropped runtime's engine at its next pass
    assert all(ref() is None for ref in engines)
    while any(t.name == "vrclog-epoch" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    alive = [t for t in threading.enumerate() if t.name == "vrclog-epoch"]
    assert len(alive) <= 1  # one ticker per process, for runtimes other tests still hold


def test_a_dropped_runtime_never_frees_its_engine_under_the_ticker() -> None:
    """Runtimes dropped unclosed just as their epoch is due (a plugin that failed to load):
    the engine was freed under the ticker's call, a segfault in about one CLI run in 200."""
    script = textwrap.dedent("""
        import random, time
        from vrclog_cli.limits import Limits
        from vrclog_cli.host.plugin import Runtime
        for _ in range(2000):
            runtime = Runtime(Limits(timeout_s=0.01))
            runtime._tick_core_engine()  # as its first core plugin does: ticked every 1 ms
            time.sleep(0.0008 + random.random() * 0.0004)
            del runtime
    """)
    result = python(script)
    assert result.returncode == 0, result.stderr[-2000:]


def test_one_epoch_thread_serves_every_runtime() -> None:
    """Several runtimes share one ticker thread; each keeps its own time budget."""
    from vrclog_cli.errors import PluginTimeout
    from vrclog_cli.host.plugin import Runtime
    from vrclog_cli.limits import Limits

    with Runtime(Limits(timeout_s=0.02)) as short, Runtime(Limits(timeout_s=0.2)) as long:
        plugins = [runtime.load(SAMPLES / "slow.wasm") for runtime in (short, long)]
        tickers = [t for t in threading.enumerate() if t.name == "vrclog-epoch"]
        assert len(tickers) == 1
        for slow, budget in zip(plugins, (0.02, 0.2), strict=True):
            started = time.thread_time()  # the budget is CPU time: load elsewhere does not count
            with pytest.raises(PluginTimeout):
                slow.call("x")
            assert budget <= time.thread_time() - started < budget + 0.1


def test_an_engine_is_ticked_only_as_its_calls_need() -> None:
    """_Ticking: with no call in flight, no tick; with one within its budget, a tick
    every patience (for a cancel or Ctrl-C); once one could be over it, a tick every tick."""
    from vrclog_cli.host import plugin as host

    class Call:  # what the ticker reads of a _CallState
        wall_due = 100.02  # in flight since 99.97, with a 50 ms budget

    ticks = host._EpochTicker._ticks
    ticking = host._Ticking(engine=None, tick=0.005, due=0.0, patience=0.05)  # type: ignore[arg-type]
    assert not host._in_flight  # no call in flight in this process
    assert not ticks(ticking, 100.0) and ticking.due == pytest.approx(100.05)
    call = Call()
    host._in_flight.add(call)  # type: ignore[arg-type]
    try:
        assert ticks(ticking, 100.0) and ticking.due == 100.02  # woken when it could be over
        assert ticks(ticking, 100.02) and ticking.due == pytest.approx(100.025)
        call.wall_due = 100.2
        assert ticks(ticking, 100.03) and ticking.due == pytest.approx(100.08)  # patience
    finally:
        host._in_flight.discard(call)  # type: ignore[arg-type]


def test_engine_sizing_takes_the_fastest_that_fits() -> None:
    gib, mib = 1 << 30, 1 << 20
    fast = capi.plan_engine(64 * mib, 18, None)
    assert fast == capi.EngineSizing() and fast.reserves(18) > 70 * gib  # no limit: no bounds checks
    bounded = capi.plan_engine(64 * mib, 18, 4 * gib)
    assert bounded.pooled and bounded.reservation == 64 * mib and bounded.reserves(18) < 2 * gib
    on_demand = capi.plan_engine(64 * mib, 18, 1 * gib)
    assert not on_demand.pooled and on_demand.reservation == 64 * mib
    assert capi.plan_engine(64 * mib, 18, 200 * gib) == fast
    few = capi.plan_engine(64 * mib, 18, 16 * gib, min_slots=3)  # ulimit -v 16 GiB, --jobs 2
    assert few == capi.EngineSizing(slots=3) and few.settings == fast.settings
    assert capi.plan_engine(64 * mib, 18, 16 * gib, min_slots=5) == bounded
    with pytest.raises(capi.AddressSpaceTooSmall, match=r"ulimit -v\) leaves 200 MiB"):
        capi.plan_engine(64 * mib, 18, 200 * mib)
    assert len({fast.settings, bounded.settings, on_demand.settings}) == 2  # bounds checks or not


def test_bounded_engines_keep_memory_safe() -> None:
    """With memories reserved only to the limit, code is bounds-checked: an access past
    the end still traps, and the pool still stops growth past the limit."""
    engine = capi.make_engine(2 << 20, 2, capi.EngineSizing(True, 2 << 20, 64 << 10))
    pre = pre_for(engine, """(module (memory (export "memory") 1 64)
      (func (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))""")
    inst = capi.Instance(engine, pre, 2 << 20, None)
    try:
        assert inst.call(inst.func(b"peek"), 0) & 0xFFFFFFFF == 0
        with pytest.raises(capi.CallFailed, match="out of bounds"):
            inst.call(inst.func(b"peek"), 65536)
        assert inst.call(inst.func(b"grow"), 1) & 0xFFFFFFFF == 1
        assert inst.call(inst.func(b"grow"), 40) & 0xFFFFFFFF == 0xFFFFFFFF  # 2 MiB is 32 pages at most
    finally:
        inst.close()


def test_a_wasmtime_without_a_symbol_is_a_load_error_not_a_crash(tmp_path: Path) -> None:
    """capi binds C names at import: a missing one must be exit 3 and one line, not exit 70."""
    script = textwrap.dedent(f"""
        import ctypes, sys
        found = ctypes.CDLL.__getattr__
        def without(self, name):
            if name == "wasmtime_caller_context":
                raise AttributeError(name)
            return found(self, name)
        ctypes.CDLL.__getattr__ = without
        from vrclog_cli.cli import main
        sys.exit(main(["parse", "--plugin", {str(SAMPLES / "vrpoker.wasm")!r}, {str(tmp_path / "x.log")!r}]))
    """)
    (tmp_path / "x.log").write_text("x\n")
    result = python(script)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("vrclog: error: wasmtime ") and "wasmtime_caller_context" in result.stderr
    assert len(result.stderr.splitlines()) == 1
