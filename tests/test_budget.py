"""What a line's budget counts: its own CPU time, not collections or one-time set-up, with
an allowance per MiB for long lines.  Margins come from what was measured on this machine."""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vrclog_cli.errors import PluginTimeout
from vrclog_cli.host import budget
from vrclog_cli.host.plugin import Plugin, Runtime
from vrclog_cli.limits import MIB, Limits

from .conftest import SAMPLES

PREFIX = "2024.01.15 23:59:59 Log        -  "


@dataclass
class FakeCall:
    cpu_deadline: float


@pytest.fixture
def call() -> Iterator[FakeCall]:
    state = FakeCall(100.0)
    budget.local.call = state
    try:
        yield state
    finally:
        budget.local.call = None


def spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_off_the_clock_credits_the_running_call(call: FakeCall) -> None:
    with budget.off_the_clock():
        spin(0.02)
    assert 0.02 <= call.cpu_deadline - 100.0 < 0.2


def test_credit_without_a_call_is_nothing() -> None:
    budget.local.call = None
    budget.credit(1.0)  # no call on this thread: nothing to move, nothing raised


def test_a_collection_during_a_call_is_credited(call: FakeCall) -> None:
    budget.keep_collections_off_the_clock()
    budget.keep_collections_off_the_clock()  # idempotent
    assert gc.callbacks.count(budget._on_gc) == 1
    heap = [[i] for i in range(300_000)]  # a heap worth collecting (collections ran meanwhile)
    before = call.cpu_deadline
    started = time.thread_time()
    gc.collect()
    spent = time.thread_time() - started
    del heap
    assert 0 < call.cpu_deadline - before <= spent


def test_a_calls_clock_never_starts_before_the_threads_cpu_time() -> None:
    """clock_start reads the CPU clock once a tenth of a budget and adds the wall time
    since: never early, whatever the thread did in between (ran, slept, was preempted)."""
    budget.local.cpu_reading = None
    for round_ in range(200):
        if round_ % 3 == 0:
            spin(0.0003)
        elif round_ % 3 == 1:
            time.sleep(0.0004)  # the thread runs nothing: wall time passes, CPU time does not
        cpu = time.thread_time()
        start = budget.clock_start(time.monotonic(), 0.05)
        assert start >= cpu


def test_a_calls_clock_starts_late_by_the_wait_since_the_reading_then_reads_again() -> None:
    budget.local.cpu_reading = None
    read_at = time.monotonic()
    budget.clock_start(read_at, 1.0)  # the reading, good for a tenth of the budget: 0.1 s
    time.sleep(0.003)  # the thread runs nothing: the clock starts that much late
    cpu = time.thread_time()
    now = time.monotonic()
    late = budget.clock_start(now, 1.0) - cpu
    assert now - read_at - 0.001 <= late <= now - read_at
    time.sleep(0.003)  # past a tenth of a 20 ms budget: a new reading, no longer late
    cpu = time.thread_time()
    assert 0 <= budget.clock_start(time.monotonic(), 0.02) - cpu < 0.001


def test_an_endless_loop_is_stopped_soon_after_its_budget() -> None:
    """The ticker sleeps while calls are short (see plugin._Ticking); a call that could be
    over its budget is ticked every 5 ms, its clock running from its start."""
    with Runtime(Limits(timeout_s=0.2)) as runtime:
        slow = runtime.load(SAMPLES / "slow.wasm")
        for _ in range(3):
            started = time.thread_time()
            with pytest.raises(PluginTimeout):
                slow.call("x")
            assert 0.2 <= time.thread_time() - started < 0.2 + 0.05


def test_line_budget_grows_with_the_line() -> None:
    assert budget.line_budget(0.05, 0.25, 0) == 0.05
    assert budget.line_budget(0.05, 0.25, MIB) == pytest.approx(0.30)
    assert budget.line_budget(0.05, 0.25, MIB // 2) == pytest.approx(0.175)


class SlowCollector:
    """A gc callback that burns ``seconds`` of CPU in the next collection inside a call, as
    a full collection of a large heap does; installed after vrclog's, so it runs inside the
    span that vrclog's callback measures."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = 0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start" and not self.fired and getattr(budget.local, "call", None) is not None:
            self.fired += 1
            spin(self.seconds)


def test_a_slow_collection_inside_a_host_call_is_not_a_timeout() -> None:
    """vrpoker asks the host for a regex on a VRPoker line; a 150 ms collection started there
    (three times the 50 ms budget) is the host's work, not the line's."""
    runtime = Runtime(Limits(), measure_cpu=True)
    plugin = runtime.load(SAMPLES / "vrpoker.wasm")
    line = PREFIX + "[VRPoker] Round 7 begins"
    plugin.call(line)  # re2 imported, pattern compiled
    slow = SlowCollector(0.15)
    thresholds = gc.get_threshold()
    gc.callbacks.append(slow)
    gc.set_threshold(1, 1, 1)  # the host call's first allocation collects
    try:
        events = plugin.call(line)
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(slow)
        runtime.close()
    assert slow.fired == 1
    assert [e.data for e in events] == [{"round": "7"}]
    used, line_budget = budget.local.last
    assert used < line_budget


# A v2 plugin that reads every byte of its line ROUNDS times and answers no events:
# linear in the line's length, with no end-of-line trick.
LINEAR_WAT = """
(module
  (memory (export "memory") 17)
  (func (export "abi_version") (result i32) i32.const 2)
  (func (export "alloc") (param i32) (result i32) i32.const 0x1000)
  (data (i32.const 0x100) "{\\"ok\\":true,\\"events\\":[]}")
  (func (export "parse_line") (param $p i32) (param $n i32) (result i64)
    (local $i i32) (local $r i32) (local $sum i32)
    (loop $rounds
      (local.set $i (i32.const 0))
      (block $done (loop $bytes
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $sum (i32.add (local.get $sum)
                                 (i32.load8_u (i32.add (local.get $p) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $bytes)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $rounds (i32.lt_u (local.get $r) (i32.const 40))))
    (i64.or (i64.shl (i64.const 23) (i64.const 32)) (i64.const 0x100)))
)
"""


def _load(limits: Limits, path: Path) -> tuple[Runtime, Plugin]:
    runtime = Runtime(limits, measure_cpu=True)
    return runtime, runtime.load(path)


def test_a_linear_plugin_gets_the_time_a_long_line_needs(tmp_path: Path) -> None:
    wat = tmp_path / "linear.wat"
    wat.write_text(LINEAR_WAT)
    long_line = "a" * MIB
    runtime, plugin = _load(Limits(timeout_s=30), wat)
    plugin.call(long_line)
    cpu = budget.local.last[0]  # what this machine needs for a 1 MiB line
    runtime.close()
    assert cpu > 0.005

    # A base budget far too small for the long line, plus an allowance per MiB three times
    # what it needs: the long line passes, and so does a short one.
    runtime, plugin = _load(Limits(timeout_s=cpu / 4, timeout_per_mib_s=cpu * 3), wat)
    try:
        assert plugin.call(long_line) == []
        assert plugin.call("short") == []
    finally:
        runtime.close()

    # Without the allowance, the same line is over its budget, and the message says which.
    runtime, plugin = _load(Limits(timeout_s=cpu / 4, timeout_per_mib_s=0), wat)
    try:
        with pytest.raises(PluginTimeout, match=r"ms budget$"):
            plugin.call(long_line)
    finally:
        runtime.close()


def test_an_endless_loop_on_a_long_line_is_stopped_after_base_plus_allowance(make_plugin) -> None:  # type: ignore[no-untyped-def]
    from .conftest import echo_plugin_wat

    runtime = Runtime(Limits(timeout_s=0.02, timeout_per_mib_s=0.1))
    plugin = runtime.load(make_plugin(echo_plugin_wat()))
    try:
        started = time.thread_time()
        with pytest.raises(PluginTimeout) as raised:
            plugin.call("L" * 8000)  # ABI v1: 8 KB of input, ~0.8 ms of allowance
        assert time.thread_time() - started < 0.02 + 0.1 + 0.1
    finally:
        runtime.close()
    assert "plugin ran longer than the 21 ms budget of this" in str(raised.value)
    assert "(20 ms + 100 ms per MiB)" in str(raised.value)


def test_the_command_line_gives_long_lines_their_allowance(tmp_path: Path) -> None:
    """`vrclog parse --timeout-per-mib`: a 1 MiB line through the linear plugin passes with the
    allowance and times out (exit 5, naming the allowance) without enough of it; --stats names
    the largest share of its budget a call used."""
    from .conftest import vrclog

    wat = tmp_path / "linear.wat"
    wat.write_text(LINEAR_WAT)
    runtime, plugin = _load(Limits(timeout_s=30), wat)
    plugin.call("a" * MIB)
    cpu = budget.local.last[0]
    runtime.close()
    log = tmp_path / "long.log"
    log.write_text("short\n" + "a" * MIB + "\nshort again\n")
    base = f"{cpu / 4 * 1000:.3f}ms"
    roomy = vrclog("parse", "--plugin", wat, "--timeout", base, "--timeout-per-mib",
                   f"{cpu * 3 * 1000:.3f}ms", "--stats", log)
    assert roomy.returncode == 0, roomy.stderr
    share = re.search(r"slowest plugin call\W+([\d.]+) ms CPU of its ([\d.]+) ms budget \((\d+)%\)",
                      roomy.stderr)
    assert share is not None and 0 < int(share[3]) < 100, roomy.stderr
    tight = vrclog("parse", "--plugin", wat, "--timeout", base, "--timeout-per-mib", "1us", log)
    assert tight.returncode == 5
    assert f"{log}:2: timeout: linear.wat: plugin ran longer than the" in tight.stderr
    assert tight.stderr.rstrip().endswith("ms budget")  # 1 µs per MiB: no allowance worth naming
