"""Loading and validating a component plugin (design.md 2d): the ``vrclog:plugin`` world.

A component is told from a core module by its header.  Its world is checked at
load against the WIT shipped in ``wit/plugin.wit``, and each failure names the
export or import that is missing or mistyped (exit 3).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PluginLoadError
from ..records import field, record
from . import module_cache
from .prefilter import Declared

if TYPE_CHECKING:  # imported where used: ~25 ms of start-up that core-module runs never pay
    import wasmtime
    from wasmtime import component as wc

#: The header's version and layer fields: core modules are 01 00 00 00.
COMPONENT_HEADER = b"\0asm\x0d\x00\x01\x00"
WIT_PACKAGE = "vrclog:plugin@1.0.0"
HOST_INTERFACE = "vrclog:plugin/host@1.0.0"
TYPES_INTERFACE = "vrclog:plugin/types@1.0.0"
EXPORT = "parse-line"
#: The world a component plugin targets, as plugin info and plugin check name it.
WORLD = f"{WIT_PACKAGE} plugin"
WIT_FILE = Path(__file__).with_name("wit") / "plugin.wit"

_EVENT = ("record{kind: string, timestamp: option<string>, player-name: option<string>, "
          "player-id: option<string>, world-id: option<string>, world-name: option<string>, "
          "instance-id: option<string>, data: list<tuple<string, string>>}")
_PLUGIN_ERROR = "record{message: string, code: option<string>}"
#: The export's type as ``describe`` writes it.
EXPORT_TYPE = f"func(string) -> result<list<{_EVENT}>, {_PLUGIN_ERROR}>"
#: The host interface's functions, each optional.
HOST_FUNCS = {
    "log": "func(u8, string)",
    "regex-match": "func(string, string) -> bool",
    "regex-find-submatch": "func(string, string) -> option<list<string>>",
    "now-ms": "func() -> s64",
}


def is_component(data: bytes) -> bool:
    return data.startswith(COMPONENT_HEADER[:4]) and data[6:8] == COMPONENT_HEADER[6:8]


@record(frozen=True)
class CompiledComponent:
    path: Path
    component: wc.Component
    #: What it was compiled for (components may have an engine of their own), and by.
    engine: wasmtime.Engine
    compiler: str = "cranelift"
    #: An interpreter-sized component (capi.LARGE_COMPONENT_BYTES): its engine keeps no
    #: memory resident between instances.
    large: bool = False
    from_cache: bool = False
    sha256: str = ""
    declared: Declared = field(default_factory=lambda: Declared(None))


@functools.cache
def _scalars() -> dict[type, str]:
    from wasmtime import component as wc

    return {wc.Bool: "bool", wc.S8: "s8", wc.U8: "u8", wc.S16: "s16", wc.U16: "u16", wc.S32: "s32",
            wc.U32: "u32", wc.S64: "s64", wc.U64: "u64", wc.F32: "f32", wc.F64: "f64", wc.Char: "char",
            wc.String: "string"}


def describe(ty: object) -> str:
    """A WIT-like spelling of a component type, for comparing and for messages."""
    from wasmtime import component as wc

    scalar = _scalars().get(type(ty))
    if scalar is not None:
        return scalar
    if isinstance(ty, wc.ListType):
        return f"list<{describe(ty.element)}>"
    if isinstance(ty, wc.OptionType):
        return f"option<{describe(ty.payload)}>"
    if isinstance(ty, wc.ResultType):
        ok = describe(ty.ok) if ty.ok is not None else "_"
        err = describe(ty.err) if ty.err is not None else "_"
        return f"result<{ok}, {err}>"
    if isinstance(ty, wc.TupleType):
        return f"tuple<{', '.join(describe(t) for t in ty.elements)}>"
    if isinstance(ty, wc.RecordType):
        return "record{" + ", ".join(f"{name}: {describe(t)}" for name, t in ty.fields) + "}"
    if isinstance(ty, wc.FuncType):
        params = ", ".join(describe(t) for _, t in ty.params)
        result = ty.result
        return f"func({params})" + (f" -> {describe(result)}" if result is not None else "")
    return type(ty).__name__.removesuffix("Type").lower()


#: (interface or None, name, kind, type): a row of ``plugin info``'s tables.
ExternRow = tuple[str | None, str, str, str]


def externs(ctype: wc.ComponentType, engine: wasmtime.Engine) -> tuple[list[ExternRow], list[ExternRow]]:
    """(imports, exports) as (interface, name, kind, type) rows for ``plugin info``: the host
    interface's functions one by one, any other interface (WASI's) as one row."""
    from wasmtime import component as wc

    def rows(items: dict[str, Any]) -> list[ExternRow]:
        out: list[ExternRow] = []
        for name, item in items.items():
            ty = item.ty
            if isinstance(ty, wc.ComponentInstanceType):
                members = ty.exports(engine)
                if name == HOST_INTERFACE:
                    out += [(name, f, "func", describe(m.ty)) for f, m in members.items()]
                else:
                    kind = "WASI 0.2" if _is_wasi_p2(name) else "interface"
                    count = len(members)
                    out.append((None, name, "instance", f"{kind}, {count} item{'s' * (count != 1)}"))
            elif isinstance(ty, wc.FuncType):
                out.append((None, name, "func", describe(ty)))
            else:
                out.append((None, name, "type", describe(ty)))
        return out
    return rows(ctype.imports(engine)), rows(ctype.exports(engine))


#: The WASI 0.2 interfaces wasmtime's linker provides (add_wasip2): any other wasi: name
#: failed only at instantiation, as "cannot instantiate: unknown error".
WASI_P2_INTERFACES = frozenset({
    "wasi:cli/environment", "wasi:cli/exit", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:cli/stderr",
    "wasi:cli/terminal-input", "wasi:cli/terminal-output", "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout", "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock", "wasi:clocks/wall-clock",
    "wasi:filesystem/types", "wasi:filesystem/preopens",
    "wasi:io/error", "wasi:io/poll", "wasi:io/streams",
    "wasi:random/random", "wasi:random/insecure", "wasi:random/insecure-seed",
    "wasi:sockets/network", "wasi:sockets/instance-network", "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket", "wasi:sockets/tcp", "wasi:sockets/tcp-create-socket",
    "wasi:sockets/ip-name-lookup",
})


def _is_wasi_p2(name: str) -> bool:
    interface, _, version = name.partition("@")
    return interface in WASI_P2_INTERFACES and version.startswith("0.2.")


def validate_world(path: Path, ctype: wc.ComponentType, engine: wasmtime.Engine) -> None:
    """Checks the component against the world: PluginLoadError naming what does not fit."""
    from wasmtime import component as wc

    exports = ctype.exports(engine)
    found = exports.get(EXPORT)
    if found is None:
        raise PluginLoadError(f"{path}: component does not export {EXPORT} (world {WORLD}; "
                              f"exports: {', '.join(exports) or 'none'})")
    got = describe(found.ty)
    if got != EXPORT_TYPE:
        raise PluginLoadError(f"{path}: export {EXPORT} has type {got}, expected {EXPORT_TYPE}")
    imports = ctype.imports(engine)
    for name, item in imports.items():
        if name == HOST_INTERFACE:
            ty = item.ty
            if not isinstance(ty, wc.ComponentInstanceType):
                raise PluginLoadError(f"{path}: import {name} must be an instance")
            for func_name, func in ty.exports(engine).items():
                wanted = HOST_FUNCS.get(func_name)
                if wanted is None:
                    raise PluginLoadError(f"{path}: import {name}#{func_name} is not a host function "
                                          f"(there are: {', '.join(HOST_FUNCS)})")
                if describe(func.ty) != wanted:
                    raise PluginLoadError(f"{path}: import {name}#{func_name} has type "
                                          f"{describe(func.ty)}, expected {wanted}")
        elif name != TYPES_INTERFACE and not _is_wasi_p2(name):
            raise PluginLoadError(
                f"{path}: import {name} is not available (components may import WASI 0.2 "
                f"interfaces and {HOST_INTERFACE})")


#: Wraps a compilation that takes seconds (a component's, on first use): given the file and
#: its size, a context manager that tells a person meanwhile (the CLI shows progress).
CompileNotice = Callable[[Path, int], AbstractContextManager[object]]
#: Smaller components compile in well under a second: not worth a line on stderr
#: (measured: the 1.5 MiB QuickJS sample 0.6 s, the 17.5 MiB CPython one 4 s).
ANNOUNCED_BYTES = 1 << 20


class ComponentCompileError(PluginLoadError):
    """A component the compiler refused (another compiler may take it)."""


_COMPILE_REFUSAL = "invalid WebAssembly component:"  # how PluginLoadError.invalid begins


def compile_component(path: Path, data: bytes, digest: str, engine: wasmtime.Engine,
                      max_memory_bytes: int, engine_settings: str, declared: Declared,
                      notice: CompileNotice | None = None, compiler: str = "cranelift",
                      large: bool = False) -> CompiledComponent:
    """The component compiled for ``engine`` (from the cache when it holds it), its world checked.
    Compiling an interpreter's component takes 3-5 s (measured: 18 MB componentize-py output,
    2 cores), loading it from the cache ~2 ms: ``notice`` wraps the compilation.
    ``digest``: the SHA-256 (hex) of ``data``."""
    from wasmtime import WasmtimeError
    from wasmtime import component as wc

    key = module_cache.cache_key(digest, f"component,max_memory={max_memory_bytes},{engine_settings}")
    if (why := module_cache.load_refusal(key)) is not None:  # refused before: no compile again
        refused = ComponentCompileError if why.startswith(_COMPILE_REFUSAL) else PluginLoadError
        raise refused(f"{path}: {why}")
    from .capi.components import deserialize_component, deserialize_component_file

    compiled = module_cache.load_with(deserialize_component, engine, key, deserialize_component_file)
    from_cache = compiled is not None
    try:
        if compiled is None:
            announce = notice if len(data) >= ANNOUNCED_BYTES else None
            try:
                with announce(path, len(data)) if announce is not None else nullcontext():
                    compiled = wc.Component(engine, data)
            except WasmtimeError as exc:
                raise ComponentCompileError.invalid(path, "component", exc) from None
        validate_world(path, compiled.type, engine)
    except PluginLoadError as exc:
        # The verdict, kept like the compiled code (seconds and ~400 MB of compiling a
        # refused interpreter's component on every run, measured 7 s otherwise).
        module_cache.store_refusal(key, str(exc).removeprefix(f"{path}: "))
        raise
    if not from_cache:
        module_cache.store(compiled, key)
    return CompiledComponent(path=path, component=compiled, engine=engine, compiler=compiler,
                             large=large, from_cache=from_cache, sha256=digest, declared=declared)
