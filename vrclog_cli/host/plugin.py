"""One log line through a fresh plugin instance, under a time budget.

A ``Runtime`` owns the engine, the linker with the host functions, and the
epoch ticker thread; every ``Plugin`` loaded through it shares them.  A
loaded plugin may be called from many threads at once: each call gets its
own store and instance, and nothing survives between calls.

The time budget counts the calling thread's CPU time (instantiation, the
init export, parse_line, free and the host functions it calls), so time a
call spends waiting for a core or for the interpreter lock never turns into
a timeout; garbage collection and one-time set-up are taken off that clock,
and long lines get an allowance per MiB (budget.py).  The epoch ticker only
decides how often the budget is checked.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring as encode_json_string  # type: ignore[attr-defined]
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import Cancelled, InputTooLarge, PluginLoadError, PluginRuntimeError, PluginTimeout
from ..events import Event, decode_event, decode_output, orjson_module, plugin_reported
from ..limits import Limits, format_size
from ..records import record
from . import budget, capi, module_cache
from .abi import (
    FREE_EXPORT,
    INPUT_OFFSET,
    INPUT_REGION,
    PREFILTER_SECTION,
    SUPPORTED_VERSIONS,
    requires_free,
    supported_text,
)
from .component import EXPORT, HOST_INTERFACE, CompiledComponent, CompileNotice, ExternRow, externs
from .hostfuncs import LogLimiter, component_host_calls, define_host_functions, define_wasi
from .installed import wasmtime_version
from .loader import CompiledPlugin, compile_plugin
from .prefilter import Declared, Prefilter

if TYPE_CHECKING:
    import wasmtime

    from .capi.components import ComponentLinker

T = TypeVar("T")
STDERR_LEVEL = -1
INFO_LEVEL = 1
LEVEL_NAMES = {STDERR_LEVEL: "stderr", 0: "debug", INFO_LEVEL: "info", 2: "warn", 3: "error"}


@record(frozen=True)
class PluginLog:
    """A message a plugin logged (host ``log``) or wrote to its WASI stderr."""

    plugin: Path
    level: int
    message: str

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, f"level{self.level}")


LogHandler = Callable[[PluginLog], None]


#: How often an engine is ticked while its calls are within their budget: a cancel or
#: Ctrl-C reaches a call in at most this (see _Ticking).
PATIENCE_S = 0.05
#: Why a closed Runtime loads nothing more.
_CLOSED = "this Runtime is closed (no time budget runs in it): load plugins in an open one"


class _CallState:
    """What the deadline hook and host functions need to know about this thread's call."""

    __slots__ = ("budget_s", "cpu_deadline", "logs", "plugin", "reason", "stderr", "stderr_writes",
                 "wall_due")

    def __init__(self, plugin: Plugin, budget_s: float) -> None:
        self.plugin = plugin
        self.budget_s = budget_s
        #: The plugin's WASI stderr writes so far (counted only while they are captured).
        self.stderr_writes = plugin.stderr_writes
        #: The ticker need not tick before this wall-clock moment, when the call could
        #: first be over its budget (a thread's CPU time never runs ahead of the wall clock).
        now = time.monotonic()
        self.wall_due = now + budget_s
        _in_flight.add(self)
        #: Moved later by budget.credit for work that is not the plugin's own.
        self.cpu_deadline = (time.thread_time() if plugin.runtime.measure_cpu
                             else budget.clock_start(now, budget_s)) + budget_s
        self.reason: str | None = None
        #: Messages the plugin logged, handed on when the call returns: showing one
        #: (the first loads rich) is the host's work, not the plugin's, and must
        #: not spend the plugin's time budget.
        self.logs: list[tuple[int, bytes]] | None = None
        #: A component's stderr during the call (its interpreter's traceback, if it
        #: raises), at most STDERR_KEPT bytes: read only when the call fails.
        self.stderr: bytearray | None = None

    def keep_stderr(self, data: bytes) -> None:
        if self.stderr is None:
            self.stderr = bytearray()
        self.stderr += data[:STDERR_KEPT - len(self.stderr)]

    def keep_log(self, level: int, message: bytes) -> None:
        if self.logs is None:
            self.logs = []
        self.logs.append((level, message))

    def emit_logs(self) -> None:
        for level, message in self.logs or ():
            try:
                self.plugin._emit_log(level, message)
            except OSError:  # stderr gone: the message is dropped, as over-the-rate ones are
                return


_local = budget.local
#: Calls in flight (_CallState.wall_due): what the ticker waits for.
_in_flight: set[_CallState] = set()


def _finished(state: _CallState) -> None:
    """A call has returned: the ticker stops watching it."""
    _in_flight.discard(state)


def _earliest_due() -> float:
    """The soonest moment a call in flight could be over its budget (inf: none in flight)."""
    return min([state.wall_due for state in tuple(_in_flight)], default=math.inf)


def _current() -> _CallState | None:
    return getattr(_local, "call", None)


#: Every call of the process is to stop (cancel_all_calls): a stop signal in a command
#: that runs plugins on its main thread (plugin check), where no exception may be raised.
_all_cancelled = False


def cancel_all_calls() -> None:
    """Interrupts every call in flight in this process, and every later one, with
    Cancelled (safe from a signal handler: it raises nothing, only sets a flag that the
    next epoch tick of each call reads)."""
    global _all_cancelled
    _all_cancelled = True


def _deadline_verdict() -> str | None:
    state = _current()
    if state is None:
        return None
    if state.plugin.cancelled or _all_cancelled:
        state.reason = "cancelled"
        return "vrclog: call cancelled"
    spent = time.thread_time()
    if (writes := state.plugin.stderr_writes - state.stderr_writes) > 0:
        spent += writes * STDERR_WRITE_S  # done on wasmtime's threads, while this one waits
    if spent > state.cpu_deadline:
        state.reason = "timeout"
        return "vrclog: time budget exceeded"
    return None


_stderr_owners: weakref.WeakValueDictionary[int, Plugin] = weakref.WeakValueDictionary()


#: What one WASI stderr write of a component costs the host, charged to the call that
#: makes it: wasmtime hands each write to a thread of its own while the plugin's thread
#: waits, so a flood of writes used no CPU time of the plugin's (a 1 s budget ran 4.7 s,
#: 2.7 s of it system time).  Measured ~26 µs of other threads' CPU a write on a quiet
#: machine; more on a busy one.  Concurrent calls of one plugin each count all of its
#: writes meanwhile (only when --verbose captures them).  A core module's writes need no
#: estimate: they are served on its own thread (hostfuncs.fd_write).
STDERR_WRITE_S = 25e-6


#: The most of a component's stderr one call keeps for its error message.
STDERR_KEPT = 64 * 1024


#: A component call's own stderr token -> its call: wasmtime writes a component's stderr
#: from threads of its own, during the call, so the thread cannot tell whose call it is.
_calls_by_token: dict[int, _CallState] = {}
_call_tokens = itertools.count(1)  # never an id() (a plugin's token): those are addresses


def _route_stderr(token: int, data: bytes) -> None:
    call = _calls_by_token.get(token)
    plugin = call.plugin if call is not None else _stderr_owners.get(token)
    if plugin is None:
        return
    plugin.stderr_writes += 1
    if call is not None:
        call.keep_stderr(data)  # for the message if the call fails (uncaught_exception)
        if plugin.runtime.capture_stderr and plugin._log_limiter.allow():
            call.keep_log(STDERR_LEVEL, data)  # shown when the call returns, before its errors
        return
    if plugin.runtime.capture_stderr and plugin._log_limiter.allow():
        # Held until this thread's call returns, if it is this plugin's; wasmtime
        # may also deliver stderr later, from another thread: shown at once then.
        state = _current()
        if state is not None and state.plugin is plugin:
            state.keep_log(STDERR_LEVEL, data)
        else:
            plugin._emit_log(STDERR_LEVEL, data)


def _wants_core_stderr() -> bool:
    """Whether a core module's stderr write is shown: under its plugin's rate (asked only
    by the linker of a runtime that captures stderr)."""
    state = _current()
    return state is not None and state.plugin._log_limiter.allow()


def _on_core_stderr(message: bytes) -> None:
    state = _current()
    if state is not None:
        state.keep_log(STDERR_LEVEL, message)  # shown when the call returns, before its errors


def _allow_host_log() -> bool:
    """Module-level (not a Runtime method) so the linker's callbacks never pin a runtime."""
    state = _current()
    return (state is not None and state.plugin.runtime.on_log is not None
            and state.plugin._log_limiter.allow())


def _on_host_log(level: int, message: bytes) -> None:
    state = _current()
    if state is not None:
        state.keep_log(level, message)


def _install_hooks() -> None:
    """Routes wasmtime's epoch and stderr callbacks here: done by the first Runtime,
    not at import (importing the library changes nothing)."""
    capi.set_deadline_hook(_deadline_verdict)
    capi.set_stderr_sink(_route_stderr)
    budget.keep_collections_off_the_clock()



def encode_input(line: str) -> bytes:
    """The input document ``{"line": "..."}`` as compact UTF-8 JSON.

    What json.dumps(line, ensure_ascii=False) gives: orjson writes it in one step
    (0.3 µs for a 200-character line; checking the bytes for escapes and splicing
    them in took 1.6).  A test pins it to json.dumps.
    """
    try:
        return b'{"line":' + orjson_module().dumps(line) + b"}"
    except TypeError:  # lone surrogates from a library caller
        return b'{"line":' + encode_json_string(line).encode("utf-8", "replace") + b"}"


def error_gist(message: str) -> str:
    """The gist of a wasmtime error on one line, without the wasm backtrace."""
    text = message.strip()
    if "Caused by:" in text:
        text = text.split("Caused by:", 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("wasm backtrace", "0:", "1:"))]
    for line in lines:
        if not line[0].isdigit():
            return line.removeprefix("wasm trap: ")
    return lines[0] if lines else "unknown error"


class Runtime:
    """Engine, linker and epoch ticker shared by every plugin of a process."""

    def __init__(self, limits: Limits | None = None, *, on_log: LogHandler | None = None,
                 capture_stderr: bool = False, instance_slots: int = 256,
                 min_instance_slots: int | None = None, on_compile: CompileNotice | None = None,
                 measure_cpu: bool = False) -> None:
        self.limits = limits or Limits()
        #: Whether calls record the CPU time they used (budget.local.last and .slowest):
        #: for --stats and plugin check; 0.6 µs a line (a thread_time call) otherwise spared.
        self.measure_cpu = measure_cpu
        self.on_log = on_log
        self.on_compile = on_compile
        self.capture_stderr = capture_stderr
        _install_hooks()
        try:
            # Planned before the engine is made: a reservation over the limit would abort there.
            self.sizing = capi.plan_engine(self.limits.max_memory_bytes, instance_slots,
                                           capi.address_space_room(), min_instance_slots)
            self.engine = capi.make_engine(self.limits.max_memory_bytes, instance_slots, self.sizing)
        except capi.RuntimeApiError as exc:
            raise PluginLoadError(str(exc)) from None
        self.linker = capi.Linker(self.engine)
        if capture_stderr:
            define_wasi(self.linker, self.limits, _wants_core_stderr, _on_core_stderr)
        else:
            define_wasi(self.linker, self.limits)
        define_host_functions(self.linker, self.limits, _allow_host_log, _on_host_log)
        self._plugins: weakref.WeakSet[Plugin] = weakref.WeakSet()
        #: Per compiler (capi.component_compilers): each engine, its linker, its ticking.
        self._component_engines: dict[tuple[str, bool], tuple[wasmtime.Engine, str]] = {}
        self._component_linkers: dict[tuple[str, bool], ComponentLinker] = {}
        self._component_tickings: list[_Ticking] = []
        #: Whether the components' engines pool their instances (set with the first).
        self.components_pooled = False
        self._component_lock = threading.Lock()
        self._instance_slots = instance_slots
        self._tick = max(0.001, min(0.005, self.limits.timeout_s / 10))
        self._patience = min(PATIENCE_S, self.limits.timeout_s)
        #: The core engine's ticking, from its first plugin on (a run of components only
        #: has none).
        self._ticking: _Ticking | None = None
        self._closed = False

    def _tick_core_engine(self) -> None:
        with self._component_lock:
            if self._ticking is None and not self._closed:
                self._ticking = _TICKER.add(self.engine, self._tick, self._patience)

    def load(self, path: str | Path, *, prefilter: bool = True) -> Plugin:
        """A loaded, probed plugin.  ``prefilter=False`` gives it every line, whatever
        its ``vrclog.prefilter`` section declares."""
        if self._closed:
            raise PluginLoadError(f"{path}: {_CLOSED}")
        compiled = compile_plugin(Path(path), self.engine, self.limits, self.sizing.settings,
                                  self.on_compile, self.component_engine)
        plugin = Plugin(self, compiled, prefilter=prefilter)
        notes = module_cache.take_notes()
        if self.on_log is not None:  # shown with --verbose
            if (note := module_cache.unsafe_note()) is not None:
                notes.append(note)
            for note in notes:
                self.on_log(PluginLog(Path(path), INFO_LEVEL, note))
        self._plugins.add(plugin)
        return plugin

    def component_engine(self, compiler: str = "cranelift",
                         large: bool = False) -> tuple[wasmtime.Engine, str]:
        """The engine component plugins compiled by ``compiler`` run in, made on first need,
        and its settings (for the cache key): a pool with room for components' several
        core instances and memories, keeping some of each memory resident
        (capi.component_keep_resident: none for a ``large`` one, an interpreter's).
        Under an address-space limit such a pool would not fit: memories are then made on
        demand, each reserving only the memory limit (bounds-checked code), capped by the
        store's limiter."""
        with self._component_lock:
            made = self._component_engines.get((compiler, large))
            if made is None:
                self.components_pooled = self.sizing == capi.EngineSizing()
                sizing = self.sizing if self.components_pooled else capi.on_demand_sizing(
                    self.limits.max_memory_bytes)
                engine = capi.make_component_engine(
                    self.limits.max_memory_bytes, self._instance_slots, sizing,
                    keep_resident=capi.component_keep_resident(large), compiler=compiler)
                # Keeping memory resident shapes no code: one cache entry serves both sizes.
                made = (engine, f"{sizing.settings},compiler={compiler}")
                if self._closed:
                    raise PluginLoadError(_CLOSED)
                self._component_engines[(compiler, large)] = made
                self._component_tickings.append(
                    _TICKER.add(engine, self._tick, self._patience))
            return made

    def component_linker(self, compiler: str, large: bool = False) -> ComponentLinker:
        """WASI 0.2 and the host interface for component plugins of that engine (see
        component_engine), made on first need."""
        engine, _ = self.component_engine(compiler, large)
        with self._component_lock:
            linker = self._component_linkers.get((compiler, large))
            if linker is None:
                try:
                    from .capi.components import ComponentLinker
                except (ImportError, AttributeError) as exc:
                    raise PluginLoadError(f"wasmtime {wasmtime_version()} lacks the component "
                                          f"C API vrclog needs ({exc})") from None
                linker = self._component_linkers[(compiler, large)] = ComponentLinker(
                    engine, HOST_INTERFACE,
                    component_host_calls(self.limits, _allow_host_log, _on_host_log))
            return linker

    def cancel(self) -> None:
        """Interrupts every call in flight in every plugin, and refuses new ones."""
        for plugin in list(self._plugins):
            plugin.cancelled = True
        self.engine.increment_epoch()
        for engine, _ in list(self._component_engines.values()):
            engine.increment_epoch()

    def close(self) -> None:
        """Stops ticking this runtime's epoch; plugins loaded here refuse to run afterwards
        (Cancelled: without the ticker, no budget could stop a call)."""
        for plugin in list(self._plugins):
            plugin.cancelled = plugin.closed = True
        with self._component_lock:
            self._closed = True
        for ticking in [self._ticking, *self._component_tickings]:
            if ticking is not None:
                ticking.ended = True

    def __del__(self) -> None:
        # A flag, not a removal: the collector may run this inside the ticker's own lock.
        # The ticker drops its engine at its next pass, and the engine is freed then.
        for ticking in [getattr(self, "_ticking", None), *getattr(self, "_component_tickings", ())]:
            if ticking is not None:
                ticking.ended = True

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@record(slots=True)
class _Ticking:
    engine: capi.Engine | wasmtime.Engine
    tick: float
    due: float  # when its epoch is next advanced (time.monotonic)
    ended: bool = False  # set by its runtime's close or collection; the ticker then lets go
    #: Every ``tick`` only once a call could be over its budget (_earliest_due), and
    #: otherwise every ``patience`` while one is in flight (so that it still sees a cancel
    #: or Ctrl-C soon).  Why not every tick: each wake of the ticker's thread takes the
    #: GIL from calls that hand it back several times a line, 1-3 ms of lost races a wake.
    #: An echo run on 40 000 lines: 1.82 s at a tick every 5 ms, 1.52 s at one every
    #: 0.5 s.  And an interpreter-sized component's memory resets (madvise) then flushed
    #: the ticker's core's TLB too: 5 200 interrupts for 3 000 lines of the Python sample,
    #: ~170 µs of system time a line of ~2.4 ms; 50 at 1 s.
    patience: float = 0.0


class _EpochTicker:
    """One thread advances the epoch of every live runtime's engine, each at its own tick
    (its budget / 10: a call's epoch callback, which takes the GIL, runs no more often
    than that) once a call could be over its budget (_Ticking); it ends when none is
    left and starts again with the next.

    One thread per process, not per Runtime: a program that keeps several runtimes
    (a bot with a plugin set per server) would otherwise wake a thread for each every
    1-5 ms.

    The ticker holds each engine strongly and is the one to let go of it, so an engine
    is never freed while its epoch is being advanced.  Held weakly, it segfaulted about
    one run in 200: a weak reference still answers while the engine's ``__del__`` runs,
    and that ``__del__`` freed the engine under the ticker's call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: list[_Ticking] = []
        self._running = False

    def add(self, engine: capi.Engine | wasmtime.Engine, tick: float, patience: float) -> _Ticking:
        """Ticks ``engine`` every ``tick`` while a call could be over its budget, and every
        ``patience`` while one is in flight (_Ticking)."""
        ticking = _Ticking(engine, tick, time.monotonic() + tick, patience=max(tick, patience))
        with self._lock:
            self._engines.append(ticking)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="vrclog-epoch", daemon=True).start()
        return ticking

    def after_fork(self) -> None:
        """A forked child has none of its parent's threads: start its own if it needs one."""
        self._lock = threading.Lock()
        self._running = False
        if self._engines:
            self._running = True
            threading.Thread(target=self._run, name="vrclog-epoch", daemon=True).start()

    @staticmethod
    def _ticks(ticking: _Ticking, now: float) -> bool:
        """Whether a ticking that is due ticks now; its next due time set either way."""
        earliest = _earliest_due()
        if earliest <= now or _all_cancelled:
            ticking.due = now + ticking.tick
            return True
        ticking.due = min(earliest, now + ticking.patience)
        return earliest != math.inf  # a call in flight still sees a tick every patience

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            with self._lock:
                ended = [t for t in self._engines if t.ended]
                self._engines = [t for t in self._engines if not t.ended]
                if not self._engines:
                    self._running = False
                    return
                due = [t for t in self._engines if t.due <= now and self._ticks(t, now)]
                wake = min(t.due for t in self._engines)
            del ended  # engines let go of outside the lock: freeing one runs Python code
            for ticking in due:
                ticking.engine.increment_epoch()
            del due
            time.sleep(max(wake - time.monotonic(), 0.0005))


_TICKER = _EpochTicker()
if hasattr(os, "register_at_fork"):  # POSIX only; Windows never forks
    os.register_at_fork(after_in_child=_TICKER.after_fork)


class Plugin:
    """A validated plugin, callable from many threads; one fresh instance per call."""

    def __init__(self, runtime: Runtime, compiled: CompiledPlugin | CompiledComponent, *,
                 prefilter: bool = True) -> None:
        self.runtime = runtime
        self.path = compiled.path
        #: SHA-256 (hex) of the module's bytes.
        self.sha256 = compiled.sha256
        self.from_cache = compiled.from_cache
        self.limits = runtime.limits
        self.cancelled = False
        #: Its runtime was closed: it refuses to run (cancelled is set too).
        self.closed = False
        #: What the plugin's section declares, used or not.
        self.declared: Declared = compiled.declared
        #: The prefilter in force: lines it rejects give no events and make no instance.
        self.prefilter: Prefilter | None = compiled.declared.prefilter if prefilter else None
        #: Problems worth one line at load (an ignored prefilter), for whoever loads it.
        self.warnings: list[str] = []
        self._use_prefilter = prefilter
        if prefilter and compiled.declared.warning:
            self.warnings.append(f"{self.path}: custom section {PREFILTER_SECTION}: "
                                 f"{compiled.declared.warning}")
        self._log_limiter = LogLimiter(self.limits.log_per_second)
        #: A component's stderr token (its calls also have their own); a core module's
        #: stderr is served on its call's thread instead (hostfuncs.fd_write).
        self._stderr_token: int | None = None
        #: A component's WASI stderr writes seen (captured ones only): the deadline hook
        #: charges them.
        self.stderr_writes = 0
        if runtime.capture_stderr and isinstance(compiled, CompiledComponent):
            self._stderr_token = id(self)
            _stderr_owners[self._stderr_token] = self
        # Read on every line: kept flat rather than looked up through self.limits.
        self._timeout = self.limits.timeout_s
        self._per_byte_s = self.limits.timeout_per_mib_s / budget.MIB
        self._measure = runtime.measure_cpu
        self._max_input = self.limits.max_input_bytes
        self._max_line = self.limits.max_line_bytes
        self._max_output = self.limits.max_output_bytes
        #: "core" (ABI v1/v2) or "component" (the vrclog:plugin world).
        self.kind = "core"
        self.abi_version: int | None
        #: The events of one line, prefilter or not; raises a LineError subclass or Cancelled.
        self.parse: Callable[[str], list[Event]]
        if isinstance(compiled, CompiledComponent):
            self._init_component(runtime, compiled)
        else:
            self._init_core(runtime, compiled)

    def _init_component(self, runtime: Runtime, compiled: CompiledComponent) -> None:
        from .capi.components import ComponentCaller

        self.kind = "component"
        self._world = compiled.component
        self.abi_version = None
        try:
            self._engine: capi.Engine | wasmtime.Engine = compiled.engine
            self._component = ComponentCaller(
                compiled.engine, runtime.component_linker(compiled.compiler, compiled.large),
                compiled.component, EXPORT,
                self._stderr_token, None if runtime.components_pooled else self.limits.max_memory_bytes)
        except capi.CallFailed as exc:
            raise PluginLoadError(f"{self.path}: {error_gist(str(exc))}") from None
        # The probe: it must link and instantiate within the budget.
        self._probed(self._component.instantiate_only, "cannot instantiate", "instantiation")
        self.parse = self._parse_component

    def _init_core(self, runtime: Runtime, compiled: CompiledPlugin) -> None:
        self._engine = runtime.engine
        runtime._tick_core_engine()
        self._init: bytes | None = compiled.init_export.encode() if compiled.init_export else None
        try:
            self._pre = runtime.linker.instantiate_pre(compiled.module)
        except capi.WasmError as exc:
            raise PluginLoadError(f"{self.path}: cannot link: {error_gist(str(exc))}") from None
        self._caller = capi.LineCaller(
            runtime.engine, self._pre, self._init, compiled.needs_wasi,
            compiled.min_memory_bytes, None if runtime.sizing.pooled else self.limits.max_memory_bytes)
        self.abi_version = self._probe(compiled)
        self.parse = self._parse_v1 if self.abi_version == 1 else self._parse_v2

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def event_types(self) -> tuple[str, ...] | None:
        """The event types its vrclog.types section declares it can emit (None: not declared)."""
        return self.declared.event_types

    def __reduce__(self) -> tuple[Callable[..., Plugin], tuple[str, str, Limits, bool]]:
        """Pickled by reference (path, content hash, limits), not by its native handles:
        another process loads it again, compiled code coming from the module cache."""
        return plugin_by_reference, (str(self.path), self.sha256, self.limits, self._use_prefilter)

    def cancel(self) -> None:
        """Interrupts this plugin's calls in flight; later calls raise Cancelled at once."""
        self.cancelled = True
        self._engine.increment_epoch()

    def _emit_log(self, level: int, message: bytes) -> None:
        handler = self.runtime.on_log
        if handler is None:
            return
        text = message[: self.limits.log_message_bytes].decode("utf-8", "replace").rstrip("\n")
        handler(PluginLog(self.path, level, text))  # as the plugin wrote it: shown with one_line

    def world_externs(self) -> tuple[list[ExternRow], list[ExternRow]]:
        """A component's imports and exports as ``plugin info`` lists them (from the code
        already compiled: compiling again takes seconds for an interpreter's component)."""
        if self.kind != "component":
            raise TypeError("world_externs: a core module has no world")
        assert not isinstance(self._engine, capi.Engine)  # a component's engine is wasmtime-py's
        return externs(self._world.type, self._engine)

    def new_instance(self) -> capi.Instance:
        """A fresh instance, its init export run, for inspecting the module (its probe,
        ``plugin check``'s memory-layout checks); the caller closes it.  Core plugins only.
        The init export runs under the time budget (within ``budgeted``, under its)."""
        if self.kind != "core":
            raise TypeError("new_instance: a component has no core instance to inspect")
        if _current() is None:
            with self.budgeted():
                return self.new_instance()
        inst = capi.Instance(self.runtime.engine, self._pre, self.limits.max_memory_bytes, None)
        if self._init is not None:
            try:
                inst.call(inst.func(self._init))
            except capi.CallFailed as exc:
                if exc.exit_code != 0:  # proc_exit(0) in _start is success
                    inst.close()
                    raise
        return inst

    @contextlib.contextmanager
    def budgeted(self) -> Iterator[_CallState]:
        """Calls on this thread within the block (on instances from new_instance) run under
        one time budget: an instance's start function or alloc that never ends is stopped
        (plugin check hung on one for ever).  Ctrl-C that traps such a call is raised."""
        if self.cancelled:
            raise self._refusal()
        state = _CallState(self, self._timeout)
        _local.call = state
        try:
            yield state
        finally:
            _local.call = None
            _finished(state)
            state.emit_logs()
            if capi.take_interrupted():
                raise KeyboardInterrupt

    def _probe(self, compiled: CompiledPlugin) -> int:
        """First instantiation, under the time budget: init must finish, and abi_version
        must name a supported version whose needs the module meets."""
        def probe() -> tuple[int, int]:
            inst = self.new_instance()
            try:
                return inst.memory()[1], inst.call(inst.func(b"abi_version"))
            finally:
                inst.close()

        what = self._init.decode() if self._init else "instantiation"
        size, version = self._probed(probe, f"{what} failed", f"{what} or abi_version")
        if version not in SUPPORTED_VERSIONS:
            raise PluginLoadError(f"{self.path}: abi_version returned {version}; this vrclog "
                                  f"supports ABI versions {supported_text()}")
        if requires_free(version) and not compiled.has_free:
            raise PluginLoadError(f"{self.path}: missing export {FREE_EXPORT} (required by ABI v1)")
        if version == 1:
            region = f"{INPUT_OFFSET:#x}-{INPUT_OFFSET + INPUT_REGION:#x}"
            maximum = compiled.max_memory_bytes
            if size < INPUT_OFFSET + INPUT_REGION or (
                    maximum is not None and maximum < INPUT_OFFSET + INPUT_REGION):
                raise PluginLoadError(
                    f"{self.path}: memory is {size} bytes; the ABI v1 input region {region} "
                    "does not fit (or use ABI v2, which has no fixed input region)")
        return version

    def _probed(self, run: Callable[[], T], failed: str, too_slow: str) -> T:
        """``run`` at load time under the time budget, its logs shown after; a failure is a
        PluginLoadError: "PATH: <too_slow> did not finish within N ms" or "PATH: <failed>: why"."""
        state = _CallState(self, self.limits.timeout_s)
        _local.call = state
        try:
            return run()
        except capi.CallFailed as exc:
            if capi.take_interrupted():
                raise KeyboardInterrupt from None
            if state.reason == "cancelled":
                raise Cancelled("cancelled") from None
            if state.reason == "timeout":
                raise PluginLoadError(f"{self.path}: {too_slow} did not finish within "
                                      f"{self.limits.timeout_s * 1000:g} ms") from None
            raise PluginLoadError(f"{self.path}: {failed}: {error_gist(str(exc))}") from None
        finally:
            _local.call = None
            _finished(state)
            state.emit_logs()

    def accepts(self, line: str) -> bool:
        """Whether the prefilter in force lets the line through to the plugin."""
        return self.prefilter is None or self.prefilter.accepts(line)

    def call(self, line: str) -> list[Event]:
        """The events of one line (none where the prefilter rejects it); raises a
        LineError subclass or Cancelled."""
        return self.parse(line) if self.accepts(line) else []

    def _parse_v1(self, line: str) -> list[Event]:
        payload = encode_input(line)
        if len(payload) > self._max_input:
            raise InputTooLarge(
                f"input JSON is {len(payload)} bytes, over the "
                f"{self.limits.max_input_bytes}-byte input region of ABI v1")
        return decode_output(self.call_raw(payload))

    def line_budget(self, line_bytes: int) -> float:
        """The CPU time (seconds) a line of that many bytes may take in this plugin."""
        return budget.line_budget(self._timeout, self.limits.timeout_per_mib_s, line_bytes)

    def _line_bytes(self, line: str) -> bytes:
        """The line as the plugin gets it (v2, components): valid UTF-8, within the line limit."""
        try:
            raw = line.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from a library caller (wasmtime aborts on them)
            raw = line.encode("utf-8", "replace")
        if len(raw) > self._max_line:
            raise InputTooLarge(
                f"line is {len(raw)} bytes, over the {format_size(self._max_line)} line limit")
        return raw

    def _parse_v2(self, line: str) -> list[Event]:
        raw = self._line_bytes(line)
        return decode_output(self._checked(self._timeout + len(raw) * self._per_byte_s,
                                           self._caller.run_v2, raw, self._max_output))

    def _parse_component(self, line: str) -> list[Event]:
        raw = self._line_bytes(line)
        ok, value = self._guarded(self._timeout + len(raw) * self._per_byte_s,
                                  self._component.run, raw, self._max_output, stderr_of_call=True)
        if ok:
            return [decode_event(i, item) for i, item in enumerate(value)]
        raise plugin_reported(*value)

    def call_raw(self, payload: bytes) -> bytes:
        """ABI v1: the raw output bytes of parse_line for an already encoded input document."""
        return self._checked(self._timeout + len(payload) * self._per_byte_s,
                             self._caller.run, INPUT_OFFSET, payload, self._max_output)

    def _guarded(self, budget_s: float, run: Callable[..., Any], *args: object,
                 stderr_of_call: bool = False) -> Any:
        """One call under a budget of ``budget_s`` CPU seconds, its failures classified;
        what ``run`` returns.  ``stderr_of_call``: ``run`` takes a stderr token for this
        call (a component's: see _route_stderr)."""
        if self.cancelled or _all_cancelled:
            raise self._refusal()
        state = _CallState(self, budget_s)
        _local.call = state
        token = 0
        if stderr_of_call:
            token = next(_call_tokens)
            _calls_by_token[token] = state
            args = (*args, token)
        try:
            return run(*args)
        except capi.CallFailed as exc:
            if capi.take_interrupted():
                raise KeyboardInterrupt from None
            error = self._classify(exc, state)
            if (state.stderr and isinstance(error, PluginRuntimeError)
                    and (raised := uncaught_exception(bytes(state.stderr))) is not None):
                error = PluginRuntimeError(raised[0], detail=raised[1])
                if state.logs:  # the traceback goes with the error, as one block
                    state.logs = [log for log in state.logs if log[0] != STDERR_LEVEL]
            raise error from None
        finally:
            _local.call = None
            _finished(state)
            if token:
                del _calls_by_token[token]
            if self._measure:
                _record_cpu(state)
            if state.logs is not None:
                state.emit_logs()

    def _refusal(self) -> Cancelled:
        if self.closed:
            return Cancelled(f"{self.path}: its Runtime is closed (a closed runtime's time budget "
                             "no longer runs): load it in an open one")
        return Cancelled("cancelled")

    def _checked(self, budget_s: float, run: Callable[..., tuple[int, int, bytes | None]],
                 *args: object) -> bytes:
        """A core plugin's call under the budget; the output bytes."""
        result: tuple[int, int, bytes | None] = self._guarded(budget_s, run, *args)
        out_ptr, out_len, output = result
        if output is None:
            if out_len > self.limits.max_output_bytes:
                raise PluginRuntimeError(
                    f"output of {out_len} bytes is over the "
                    f"{format_size(self.limits.max_output_bytes)} limit")
            raise PluginRuntimeError(
                f"bad plugin output: range [{out_ptr:#x}, {out_ptr + out_len:#x}) is outside memory")
        return output

    def _budget_text(self, budget_s: float) -> str:
        """"50 ms budget", or for a long line "300 ms budget of this 1 MiB line (50 ms + 250 ms
        per MiB)"."""
        base = self._timeout
        if budget_s - base < 0.0005:
            return f"{base * 1000:g} ms budget"
        size = format_size(round((budget_s - base) / self._per_byte_s))
        return (f"{budget_s * 1000:.0f} ms budget of this {size} line ({base * 1000:g} ms + "
                f"{self.limits.timeout_per_mib_s * 1000:g} ms per MiB)")

    def _classify(self, exc: capi.CallFailed, state: _CallState) -> Exception:
        if state.reason == "cancelled":
            return Cancelled("cancelled")
        if state.reason == "timeout":
            return PluginTimeout(f"plugin ran longer than the {self._budget_text(state.budget_s)}")
        if exc.exit_code is not None:
            return PluginRuntimeError(f"plugin exited with code {exc.exit_code}")
        if isinstance(exc, capi.OutputTooLarge):
            return PluginRuntimeError(
                f"output is over the {format_size(self.limits.max_output_bytes)} limit")
        if exc.during is not None:
            message = f"{exc.during}: {error_gist(str(exc))}"
            if message.endswith("returned 0"):
                message += (" (out of memory? an instance may use at most "
                            f"{format_size(self.limits.max_memory_bytes)})")
            return PluginRuntimeError(message)
        return PluginRuntimeError(error_gist(str(exc)))


_PANIC = re.compile(r"(?:\n|\\n)thread '[^']*'(?: \(\d+\))? panicked at ")
#: componentize-js's panic on an uncaught exception, the exception in Rust's Debug form.
_JS_EXCEPTION = re.compile(r'Exception \{ message: Some\("((?:[^"\\]|\\.)*)"\), '
                           r'stack: (?:Some\("((?:[^"\\]|\\.)*)"\)|None)')
_RUST_ESCAPE = re.compile(r'\\(u\{[0-9a-fA-F]+\}|.)')


def _unescape(text: str) -> str:
    r"""A string as Rust's Debug form wrote it (``\n``, ``\"``, ``\u{1f600}``), as it was."""
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code.startswith("u{"):
            return chr(int(code[2:-1], 16))
        return {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(code, code)
    return _RUST_ESCAPE.sub(one, text)


def uncaught_exception(stderr: bytes) -> tuple[str, str] | None:
    """(the exception's own line, the whole block) of an interpreter's uncaught exception in
    what a component wrote to stderr before its call trapped; None when there is none.

    componentize-py prints a Python traceback (in fragments: ``ValueError`` / ``: `` /
    ``kaboom``) and then its runtime's Rust panic; componentize-js panics with the
    exception's message and stack in Rust's Debug form.
    """
    text = stderr.decode("utf-8", "replace")
    if (js := _JS_EXCEPTION.search(text)) is not None:
        message = f"uncaught exception: {_unescape(js.group(1))}"
        stack = _unescape(js.group(2) or "").rstrip().splitlines()
        return message, "\n".join([message, *stack])
    if (panic := _PANIC.search(text)) is not None:
        text = text[:panic.start()]
    start = text.rfind("Traceback (most recent call last):")
    if start < 0:
        return None
    lines = [line for line in text[start:].rstrip().splitlines() if line.strip()]
    return (lines[-1].strip(), "\n".join(lines)) if len(lines) > 1 else None


def _record_cpu(state: _CallState) -> None:
    """The CPU time a call used (credits taken off) against its budget, in
    budget.local.last, and the largest share of its budget any call on this thread
    used since the last take_slowest, in budget.local.slowest."""
    used = time.thread_time() - state.cpu_deadline + state.budget_s
    _local.last = (used, state.budget_s)
    _local.slowest = budget.larger_share(getattr(_local, "slowest", None), (used, state.budget_s))


def load_plugin(path: str | Path, limits: Limits | None = None) -> Plugin:
    """Convenience for library users: a plugin in a runtime of its own."""
    return Runtime(limits).load(path)


_process_runtimes: dict[Limits, Runtime] = {}
_process_plugins: dict[tuple[str, str, Limits, bool], Plugin] = {}
_process_lock = threading.Lock()


def plugin_by_reference(path: str, sha256: str, limits: Limits, prefilter: bool = True) -> Plugin:
    """The plugin a pickle refers to, loaded once per process (one runtime per set of
    limits); PluginLoadError when the file's content is no longer what was pickled."""
    key = (path, sha256, limits, prefilter)
    with _process_lock:
        plugin = _process_plugins.get(key)
        if plugin is None:
            runtime = _process_runtimes.get(limits)
            if runtime is None:
                runtime = _process_runtimes[limits] = Runtime(limits)
            plugin = runtime.load(path, prefilter=prefilter)
            if plugin.sha256 != sha256:
                raise PluginLoadError(f"{path}: changed since it was pickled (sha256 {plugin.sha256[:12]}… "
                                      f"is not {sha256[:12]}…)")
            _process_plugins[key] = plugin
        return plugin
