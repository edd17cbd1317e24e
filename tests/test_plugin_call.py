"""One line through a fresh instance: events, isolation, limits, timeouts, cancel."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from vrclog_cli.errors import Cancelled, InputTooLarge, PluginRuntimeError, PluginTimeout
from vrclog_cli.events import Event
from vrclog_cli.host.plugin import Plugin, PluginLog, Runtime, encode_input
from vrclog_cli.limits import Limits

from .conftest import RETURN_NO_EVENTS, SAMPLES, answer, echo_plugin_wat, wat_plugin

PREFIX = "2024.01.15 23:59:59 Log        -  "

@pytest.fixture
def vrpoker(runtime: Runtime) -> Plugin:
    return runtime.load(SAMPLES / "vrpoker.wasm")


@pytest.fixture
def echo(runtime: Runtime, make_plugin) -> Plugin:  # type: ignore[no-untyped-def]
    return runtime.load(make_plugin(echo_plugin_wat()))


def load_answer(runtime: Runtime, make_plugin, text: str) -> Plugin:  # type: ignore[no-untyped-def]
    segment, body = answer(text)
    return runtime.load(make_plugin(wat_plugin(body, extra=segment)))


def test_vrpoker_events(vrpoker: Plugin) -> None:
    ts = vrpoker.call(PREFIX + "[VRPoker] Game started with 4 players")[0].timestamp
    assert ts is not None and ts.startswith("2024-01-15T23:59:59")
    assert vrpoker.call(PREFIX + "[VRPoker] Game started with 4 players") == [
        Event("vrpoker_game_start", timestamp=ts, data={"player_count": "4"})]
    assert vrpoker.call(PREFIX + '[VRPoker] Player Ｃｈｅｒｒｙ "C" wins with Full House') == [
        Event("vrpoker_winner", timestamp=ts, data={"player": 'Ｃｈｅｒｒｙ "C"', "hand": "Full House"})]
    assert vrpoker.call(PREFIX + "[VRPoker] Round 12 begins") == [
        Event("vrpoker_round", timestamp=ts, data={"round": "12"})]
    assert vrpoker.call(PREFIX + "[VRPoker] Table closed\\by host") == [
        Event("vrpoker_event", timestamp=ts, data={"message": "Table closed\\by host"})]
    assert vrpoker.call(PREFIX + "[Behaviour] OnPlayerJoined Bob") == []
    assert vrpoker.call("") == []


@pytest.mark.parametrize("line", [
    "", " ", 'quotes " and \\ backslashes \\" ', "tab\there\x01\x1f\x7f controls",
    "日本語 Ｃｈｅｒｒｙ 🍒 emoji", "\u2028\u2029 separators", "{\"line\": \"nested\"}", "x" * 8000,
])
def test_awkward_lines_round_trip(echo: Plugin, line: str) -> None:
    assert echo.call(line) == [Event("echo", data={"line": line})]


def test_input_region_boundary(echo: Plugin) -> None:
    fits = "a" * (8192 - len(encode_input("")))
    assert len(encode_input(fits)) == 8192
    assert echo.call(fits)[0].data == {"line": fits}
    with pytest.raises(InputTooLarge, match="8193 bytes") as info:
        echo.call(fits + "a")
    assert info.value.kind == "input_too_large"


def test_fresh_instance_every_line(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    # A global counter: the call traps if the counter is not 1 on entry + 1.
    body = """
      (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
      (if (i32.ne (global.get $calls) (i32.const 1)) (then unreachable))
      """ + RETURN_NO_EVENTS
    plugin = runtime.load(make_plugin(wat_plugin(body, extra="(global $calls (mut i32) (i32.const 0))")))
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(plugin.call, ["line"] * 400)) == [[]] * 400


def test_memory_writes_do_not_survive(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    body = """
      (if (i32.ne (i32.load (i32.const 0x24000)) (i32.const 0)) (then unreachable))
      (i32.store (i32.const 0x24000) (i32.const 42))
      """ + RETURN_NO_EVENTS
    plugin = runtime.load(make_plugin(wat_plugin(body)))
    for _ in range(5):
        assert plugin.call("x") == []


def test_table_writes_do_not_survive(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    # Freed tables are reset in place (kept resident), not handed back to the kernel:
    # the reset must still restore the element segment's initial entry.
    body = """
      (if (i32.eqz (ref.is_null (table.get $t (i32.const 1)))) (then unreachable))
      (if (ref.is_null (table.get $t (i32.const 0))) (then unreachable))
      (table.set $t (i32.const 1) (table.get $t (i32.const 0)))
      (table.set $t (i32.const 0) (ref.null func))
      """ + RETURN_NO_EVENTS
    extra = "(table $t 4 funcref) (elem (table $t) (i32.const 0) func $noop) (func $noop)"
    plugin = runtime.load(make_plugin(wat_plugin(body, extra=extra)))
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(plugin.call, ["x"] * 50)) == [[]] * 50


def test_trap_is_runtime_error(runtime: Runtime) -> None:
    with pytest.raises(PluginRuntimeError, match="unreachable") as info:
        runtime.load(SAMPLES / "trap.wasm").call("x")
    assert info.value.kind == "runtime_error"
    assert "\n" not in str(info.value)


def test_stack_overflow_is_runtime_error(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin("(call $deep (i32.const 0)) drop " + RETURN_NO_EVENTS, extra="""
      (func $deep (param i32) (result i32) (call $deep (i32.add (local.get 0) (i32.const 1))))""")
    with pytest.raises(PluginRuntimeError, match="stack"):
        runtime.load(make_plugin(wat)).call("x")


def test_endless_loop_times_out(runtime: Runtime) -> None:
    slow = runtime.load(SAMPLES / "slow.wasm")
    started = time.monotonic()
    with pytest.raises(PluginTimeout) as info:
        slow.call("x")
    assert 0.045 < time.monotonic() - started < 1.0
    assert info.value.kind == "timeout"


def test_timeout_is_configurable(make_plugin) -> None:  # type: ignore[no-untyped-def]
    runtime = Runtime(Limits(timeout_s=0.2))
    slow = runtime.load(SAMPLES / "slow.wasm")
    started = time.monotonic()
    with pytest.raises(PluginTimeout, match="200 ms"):
        slow.call("x")
    assert time.monotonic() - started >= 0.2


def test_memory_growth_is_capped(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    # Grow a page at a time, touching each, until memory.grow fails; then trap
    # with a message if more than 64 MiB were ever granted.
    body = """
      (block $done
        (loop $more
          (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
          (i32.store (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)) (i32.const 7))
          (br $more)))
      (if (i32.gt_u (memory.size) (i32.const 1024)) (then unreachable))
      (i64.const 0xffffffff00000000)"""
    with pytest.raises(PluginRuntimeError, match="over the 1 MiB limit"):
        runtime.load(make_plugin(wat_plugin(body))).call("x")


@pytest.mark.parametrize(("limit", "pages"), [(1_000_000, 15), (1 << 20, 16), (3 << 20, 48)])
def test_memory_limit_is_whole_pages_under_it(make_plugin, limit: int, pages: int) -> None:  # type: ignore[no-untyped-def]
    # parse_line grows until memory.grow fails and answers with memory.size as out_len.
    body = """
      (block $done
        (loop $more
          (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
          (br $more)))
      (i64.or (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 32)) (i64.const 0x21000))"""
    runtime = Runtime(Limits(max_memory_bytes=limit))
    try:
        assert len(runtime.load(make_plugin(wat_plugin(body))).call_raw(b'{"line":"x"}')) == pages
    finally:
        runtime.close()


def test_output_in_memory_grown_by_parse_line(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    # The output is read at the base address taken before the call: it must still
    # be right after memory.grow (pooled memories grow in place).
    body = """
      (drop (memory.grow (i32.const 20)))
      (i64.store (i32.const 0x100000) (i64.const 0x2122232425262728))
      (i64.or (i64.shl (i64.const 8) (i64.const 32)) (i64.const 0x100000))"""
    plugin = runtime.load(make_plugin(wat_plugin(body)))
    assert plugin.call_raw(b'{"line":"x"}') == bytes.fromhex("2827262524232221")


@pytest.mark.parametrize(("body", "message"), [
    ("(i64.const 0x0000001000fffff0)", "outside memory"),  # range past the end of memory
    ("(i64.const 0x80000000_00000000)", "over the 1 MiB limit"),  # 2 GiB length
    ("(i64.const 0x00000010_ffffffff)", "outside memory"),  # pointer 0xFFFFFFFF
])
def test_output_range_checked(runtime: Runtime, make_plugin, body: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PluginRuntimeError, match=message):
        runtime.load(make_plugin(wat_plugin(body))).call("x")


@pytest.mark.parametrize(("output", "message"), [
    ("not json", "not valid JSON at byte 0"),
    ('{"ok":true,"events":{}}', '"events" must be an array, got an object'),
    ('{"ok":true,"events":[{"data":{}}]}', 'event 0 has no "type"'),
    ('{"ok":true,"events":[{"type":7}]}', 'event 0 has a "type" that is a number, not a string'),
    ('{"ok":true,"events":[{"type":""}]}', 'event 0 has an empty "type": an event type needs a name'),
    ('{"ok":true,"events":[{"type":"t","data":{"round":3}}]}',
     'data value for "round" is a number; use a string'),
    ('{"ok":true,"events":[{"type":"t","player_name":1}]}', '"player_name" must be a string'),
    ('{"ok":true,"events":[{"type":"t","timestamp":"yesterday"}]}', "not RFC 3339"),
    ("[1,2]", "expected a JSON object, got an array"),
    ('{"events":[]}', '"ok" must be true or false'),
])
def test_bad_output_shapes(runtime: Runtime, make_plugin, output: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PluginRuntimeError, match=message) as info:
        load_answer(runtime, make_plugin, output).call("x")
    assert info.value.kind == "runtime_error"


def test_output_not_utf8(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin("(i64.or (i64.shl (i64.const 4) (i64.const 32)) (i64.const 0x21000))",
                     extra='(data (i32.const 0x21000) "\\7b\\ff\\fe\\7d")')
    with pytest.raises(PluginRuntimeError, match="not valid UTF-8 at byte 1"):
        runtime.load(make_plugin(wat)).call("x")


def test_ok_false_carries_message_and_code(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    plugin = load_answer(runtime, make_plugin, '{"ok":false,"error":"bad round","code":"E42"}')
    with pytest.raises(PluginRuntimeError, match="bad round") as info:
        plugin.call("x")
    assert info.value.code == "E42"
    assert info.value.kind == "plugin_error"


def test_unknown_event_fields_ignored_and_optional_fields_kept(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    out = ('{"ok":true,"events":[{"type":"t","extra":[1],"player_name":"A","world_id":"wrld_1",'
           '"timestamp":"2024-01-15T23:59:59Z"},{"type":"u"}]}')
    assert load_answer(runtime, make_plugin, out).call("x") == [
        Event("t", timestamp="2024-01-15T23:59:59Z", player_name="A", world_id="wrld_1"), Event("u")]


def test_hundred_concurrent_calls() -> None:
    """Correctness under concurrency, not the budget: 100 threads instantiating at once on
    2 shared cores can spend tens of ms each in the kernel (page faults on one address
    space), which counts as their CPU time; so this runtime has a budget of seconds."""
    from vrclog_cli.limits import Limits

    vrpoker = Runtime(Limits(timeout_s=5)).load(SAMPLES / "vrpoker.wasm")
    lines = [PREFIX + f"[VRPoker] Round {i} begins" for i in range(100)]
    barrier = threading.Barrier(100)

    def call(line: str) -> list[Event]:
        barrier.wait()
        return vrpoker.call(line)

    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(call, lines))
    assert [r[0].data for r in results] == [{"round": str(i)} for i in range(100)]


def test_only_the_looping_call_times_out(runtime: Runtime) -> None:
    slow = runtime.load(SAMPLES / "slow.wasm")
    fast = runtime.load(SAMPLES / "vrpoker.wasm")

    def work(i: int) -> str:
        if i == 3:
            try:
                slow.call("x")
            except PluginTimeout:
                return "timeout"
            return "finished?"
        for _ in range(200):
            assert fast.call(PREFIX + "[VRPoker] Round 1 begins")[0].type == "vrpoker_round"
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, range(8))) == ["ok"] * 3 + ["timeout"] + ["ok"] * 4


def test_cancel_interrupts_calls_in_flight(make_plugin) -> None:  # type: ignore[no-untyped-def]
    runtime = Runtime(Limits(timeout_s=60))
    slow = runtime.load(SAMPLES / "slow.wasm")
    errors: list[BaseException] = []

    def spin() -> None:
        try:
            slow.call("x")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=spin) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    started = time.monotonic()
    runtime.cancel()
    for t in threads:
        t.join(2)
    assert time.monotonic() - started < 0.5
    assert len(errors) == 4 and all(isinstance(e, Cancelled) for e in errors)
    with pytest.raises(Cancelled):  # later calls fail fast
        slow.call("x")


def test_plugin_text_is_kept_to_one_line(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    plugin = load_answer(runtime, make_plugin,
                         '{"ok":false,"error":"two\\nlines\\u0007","code":"E\\r1"}')
    with pytest.raises(PluginRuntimeError) as info:
        plugin.call("x")
    # The library keeps the plugin's own text; the CLI's diagnostic writes it on one line.
    assert str(info.value) == "two\nlines\x07" and info.value.code == "E\r1"


def test_showing_a_log_message_is_not_the_plugins_time(make_plugin) -> None:  # type: ignore[no-untyped-def]
    # The first message shown loads rich (tens of ms on a busy machine); the host's
    # work must not spend the plugin's 50 ms. Logs are handed on when the call returns.
    shown: list[str] = []

    def slow_handler(log: PluginLog) -> None:
        spin_until = time.thread_time() + 0.12
        while time.thread_time() < spin_until:
            pass
        shown.append(log.message)

    wat = wat_plugin("(call $log (i32.const 2) (i32.const 0x22000) (i32.const 5))" + RETURN_NO_EVENTS,
                     imports='(import "env" "log" (func $log (param i32 i32 i32)))',
                     extra='(data (i32.const 0x22000) "hello")')
    runtime = Runtime(on_log=slow_handler)
    try:
        plugin = runtime.load(make_plugin(wat))
        assert plugin.call("x") == [] and plugin.call("y") == []
    finally:
        runtime.close()
    assert shown == ["hello", "hello"]


def test_a_closed_runtime_runs_nothing() -> None:
    """After its Runtime closes (its ticker gone), a plugin refuses to run: a spinning one
    would have run for ever."""
    from vrclog_cli.errors import PluginLoadError

    with Runtime(Limits(timeout_s=0.05)) as runtime:
        slow = runtime.load(SAMPLES / "slow.wasm")
    with pytest.raises(Cancelled, match="its Runtime is closed"):
        slow.call("x")
    with pytest.raises(Cancelled, match="its Runtime is closed"), slow.budgeted():
        pass
    with pytest.raises(PluginLoadError, match="this Runtime is closed"):
        runtime.load(SAMPLES / "slow.wasm")


def test_an_interpreters_uncaught_exception_is_found_in_its_stderr() -> None:
    from vrclog_cli.host.plugin import uncaught_exception

    python = (b"Traceback (most recent call last):\n  File \"/0/app.py\", line 8, in parse_line\n"
              b"ValueError: : kaboom \xc3\xa7\n\n"
              b"\\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1:2:"
              b"\\nPython function threw an unexpected exception\nnote: run with `RUST_BACKTRACE=1`\n")
    trace = 'Traceback (most recent call last):\n  File "/0/app.py", line 8, in parse_line\n'
    assert uncaught_exception(python) == ("ValueError: : kaboom ç", trace + "ValueError: : kaboom ç")
    js = (b"\\nthread '<unnamed>' (1) panicked at crates/runtime/src/interpreter.rs:51:31:\\nFailed to call "
          b"'parseLine': Value(Exception(\\nException { message: Some(\"say \\\"hi\\\" \\u{1f600}\"), stack: "
          b"Some(\"    at parseLine (/app.js:2:42)\\n\") })\\n)\n")
    said = 'uncaught exception: say "hi" \U0001f600'
    assert uncaught_exception(js) == (said, said + "\n    at parseLine (/app.js:2:42)")
    for other in (b"", b"just a note\n", b"Traceback (most recent call last):\n",
                  b"\\nthread 'x' panicked at y"):
        assert uncaught_exception(other) is None
