"""``vrclog plugin info``: what a plugin file is, and whether vrclog would load it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime.component import Component

from ..errors import PluginLoadError
from ..host.abi import format_signature
from ..host.component import WORLD, externs, is_component
from ..host.loader import declared_prefilter, read_plugin, to_wasm_binary
from ..host.plugin import Plugin, Runtime
from ..limits import Limits


@dataclass
class Extern:
    module: str | None
    name: str
    kind: str
    type: str


@dataclass
class PluginInfo:
    path: str
    size_bytes: int
    sha256: str
    exports: list[Extern] = field(default_factory=list)
    imports: list[Extern] = field(default_factory=list)
    memory_min_pages: int | None = None
    memory_max_pages: int | None = None
    #: "reactor" (_initialize), "command" (_start) or "library" (neither).
    wasi_model: str = "library"
    abi_version: int | None = None
    #: "core" (a module, ABI v1/v2) or "component".
    kind: str = "core"
    #: A component's world.
    world: str | None = None
    #: The declared prefilter as its section's JSON; None: the plugin sees every line.
    prefilter: dict[str, Any] | None = None
    #: Why a declared prefilter is ignored, or invalid.
    prefilter_problem: str | None = None
    #: The event types it declares it can emit (its vrclog.types section); None: not declared.
    event_types: list[str] | None = None
    valid: bool = False
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _describe(ty: Any) -> tuple[str, str]:
    if isinstance(ty, wasmtime.FuncType):
        params = tuple(str(p) for p in ty.params)
        results = tuple(str(r) for r in ty.results)
        return "func", format_signature((params, results))
    if isinstance(ty, wasmtime.MemoryType):
        limits = ty.limits
        return "memory", f"pages {limits.min}..{limits.max if limits.max is not None else 'unbounded'}"
    if isinstance(ty, wasmtime.GlobalType):
        return "global", f"{'mut ' if ty.mutable else ''}{ty.content}"
    if isinstance(ty, wasmtime.TableType):
        return "table", str(ty.element)
    return "other", type(ty).__name__


def plugin_info(plugin: str | Path | Plugin, limits: Limits | None = None) -> PluginInfo:
    """Everything we can tell about a plugin file, or a loaded plugin's file; load
    problems are reported, not raised.

    Raises PluginLoadError only when the file cannot be read or compiled at all, or
    no longer holds the loaded plugin.
    """
    loaded: Plugin | None
    loaded, path = (plugin, plugin.path) if isinstance(plugin, Plugin) else (None, Path(plugin))
    limits = limits or (loaded.limits if loaded is not None else Limits())
    raw = read_plugin(path, limits)
    info = PluginInfo(path=str(path), size_bytes=len(raw), sha256=hashlib.sha256(raw).hexdigest())
    wasm = to_wasm_binary(path, raw)
    # A loaded plugin's digest is of its binary (WAT compiled), as compile_plugin takes it.
    if loaded is not None and hashlib.sha256(wasm).hexdigest() != loaded.sha256:
        raise PluginLoadError(f"{path}: the file changed since the plugin was loaded")
    try:
        declared = declared_prefilter(path, wasm)
        info.prefilter = declared.prefilter.to_json() if declared.prefilter else None
        info.prefilter_problem = declared.warning
        info.event_types = list(declared.event_types) if declared.event_types is not None else None
    except PluginLoadError as exc:
        info.prefilter_problem = str(exc).removeprefix(f"{path}: ")
    runtime = Runtime(limits) if loaded is None else None  # a loaded plugin is not loaded again
    try:
        if runtime is not None:
            try:
                loaded = runtime.load(path)
            except PluginLoadError as exc:
                info.problem = str(exc).removeprefix(f"{path}: ")
        if loaded is not None:
            info.abi_version = loaded.abi_version
            info.valid = True
        if is_component(wasm):
            _component_externs(path, wasm, info, loaded)
        else:
            _module_externs(path, wasm, info)
    finally:
        if runtime is not None:
            runtime.close()
    return info


def _component_externs(path: Path, wasm: bytes, info: PluginInfo, plugin: Plugin | None) -> None:
    """From the loaded plugin, or (when it would not load) compiled here to list what it has."""
    if plugin is not None:
        imports, exports = plugin.world_externs()
    else:
        engine = wasmtime.Engine()
        try:
            ctype = Component(engine, wasm).type
        except wasmtime.WasmtimeError as exc:
            raise PluginLoadError.invalid(path, "component", exc) from None
        imports, exports = externs(ctype, engine)
    info.kind = "component"
    info.world = WORLD
    info.wasi_model = "component (WASI 0.2)"
    info.imports = [Extern(*row) for row in imports]
    info.exports = [Extern(*row) for row in exports]


def _module_externs(path: Path, wasm: bytes, info: PluginInfo) -> None:
    try:
        module = wasmtime.Module(wasmtime.Engine(), wasm)
    except wasmtime.WasmtimeError as exc:
        raise PluginLoadError.invalid(path, "module", exc) from None
    for exp in module.exports:
        kind, text = _describe(exp.type)
        info.exports.append(Extern(None, exp.name, kind, text))
        if exp.name == "memory" and isinstance(exp.type, wasmtime.MemoryType):
            info.memory_min_pages = exp.type.limits.min
            info.memory_max_pages = exp.type.limits.max
    for imp in module.imports:
        kind, text = _describe(imp.type)
        info.imports.append(Extern(imp.module, imp.name or "", kind, text))
    names = {e.name for e in info.exports}
    info.wasi_model = "reactor" if "_initialize" in names else "command" if "_start" in names else "library"
