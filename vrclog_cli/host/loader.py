"""Reading, compiling and validating a plugin file (design.md sections 2 and 3).

Everything here happens once per plugin, before any line runs; each failure
is a PluginLoadError whose message names the file and what is wrong.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PluginFileError, PluginLoadError
from ..limits import Limits, format_size
from ..records import field, record
from . import capi, module_cache
from .abi import (
    FREE_EXPORT,
    FREE_SIGNATURE,
    HOST_MODULE,
    HOST_SIGNATURES,
    INIT_EXPORTS,
    INIT_SIGNATURE,
    PREFILTER_SECTION,
    REQUIRED_EXPORTS,
    TYPES_SECTION,
    WASI_MODULE,
    WASM_MAGIC,
    WASM_PAGE,
    Signature,
    format_signature,
)
from .component import (
    CompiledComponent,
    CompileNotice,
    ComponentCompileError,
    compile_component,
    is_component,
)
from .interface import Import, Interface, Item, Unsupported, read_interface
from .prefilter import Declared, PrefilterError, read_prefilter
from .sections import MalformedBinary, custom_sections

if TYPE_CHECKING:
    import wasmtime


@record(frozen=True)
class CompiledPlugin:
    path: Path
    module: capi.Module
    #: "_initialize", "_start" or None: what runs once in every fresh instance.
    init_export: str | None
    #: Whether the module imports WASI (a store then needs a WASI context).
    needs_wasi: bool
    #: Whether the compiled code came from the on-disk cache (no compilation).
    from_cache: bool = False
    #: The exported memory's declared minimum: every fresh instance has at least this.
    min_memory_bytes: int = 0
    #: Its declared maximum (None: unbounded).
    max_memory_bytes: int | None = None
    #: Whether ``free`` is exported (required by ABI v1, optional in v2).
    has_free: bool = True
    #: SHA-256 (hex) of the module's bytes: what a pickled Plugin is checked against.
    sha256: str = ""
    #: What its ``vrclog.prefilter`` section declares.
    declared: Declared = field(default_factory=lambda: Declared(None))


def describe_file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _refuse_unless_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise PluginFileError(f"{path}: is {describe_file_type(mode)}, not a plugin file")


def read_plugin_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing anything that is not a regular file or is too big.

    O_NONBLOCK keeps a FIFO from blocking the open; the size is enforced by
    reading at most max_bytes + 1 bytes, never by trusting stat.  Windows has no
    O_NONBLOCK: there the path is looked at before it is opened (a named pipe or
    a device such as CON is refused unopened), and checked again once open.
    """
    if sys.platform == "win32":
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise PluginFileError(f"{path}: cannot open: {exc.strerror}") from None
        _refuse_unless_regular(path, mode)
        flags = os.O_RDONLY | os.O_BINARY | os.O_NOINHERIT
    else:
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise PluginFileError(f"{path}: is a directory, not a plugin file") from None
        raise PluginFileError(f"{path}: cannot open: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        _refuse_unless_regular(path, info.st_mode)
        # One read of the size stat gives, plus a byte (a file that grew shows): reading a
        # 17.5 MB component in 1 MiB chunks and joining them took 31 ms, one read 18.  Then
        # on to the end of the file (a short read, a file still growing), still bounded.
        chunks = [os.read(fd, min(info.st_size, max_bytes) + 1)]
        total = len(chunks[0])
        while total <= max_bytes and (chunk := os.read(fd, min(1 << 20, max_bytes + 1 - total))):
            chunks.append(chunk)
            total += len(chunk)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(data) > max_bytes:
            raise PluginLoadError(
                f"{path}: larger than the {format_size(max_bytes)} plugin size limit")
        return data
    except OSError as exc:
        raise PluginFileError(f"{path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_plugin(path: Path, limits: Limits) -> bytes:
    """The plugin's bytes under its kind's size limit (a component's is the larger)."""
    data = read_plugin_file(path, max(limits.max_plugin_bytes, limits.max_component_bytes))
    component = is_component(data)
    limit = limits.max_component_bytes if component else limits.max_plugin_bytes
    if len(data) > limit:
        kind = "component " if component else ""
        raise PluginLoadError(f"{path}: larger than the {format_size(limit)} {kind}plugin size limit")
    return data


#: Plugin sources in the languages docs/plugin-abi.md shows (and their neighbours).
SOURCE_SUFFIXES = frozenset({".c", ".h", ".zig", ".py", ".js", ".mjs", ".ts", ".rs", ".go", ".wit"})


def to_wasm_binary(path: Path, data: bytes) -> bytes:
    """Binary modules as they are; WAT text compiled to binary."""
    if not data:
        raise PluginLoadError(f"{path}: empty file, not a WebAssembly module")
    if data.startswith(WASM_MAGIC):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PluginLoadError(
            f"{path}: not a WebAssembly module (no \\0asm header) and not WAT text") from None
    if path.suffix.lower() in SOURCE_SUFFIXES:  # a new user's likely slip: the source, not the build
        raise PluginLoadError(
            f"{path}: plugin source, not a built plugin: build it to .wasm first "
            "(`make` in its folder; docs/plugin-abi.md)")
    import wasmtime  # wasmtime-py's WAT parser: only for text plugins

    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise PluginLoadError(
            f"{path}: not a WebAssembly module (no \\0asm header) and not valid WAT text: {first}"
        ) from None


def module_interface(path: Path, wasm: bytes) -> Interface:
    """What the module imports and exports: read from its binary, or (for an encoding
    that reader does not know) asked of wasmtime-py."""
    try:
        return read_interface(wasm)
    except Unsupported:
        pass
    except MalformedBinary as exc:
        raise PluginLoadError(f"{path}: invalid WebAssembly module: {exc}") from None
    return reflected_interface(path, wasm)


def reflected_interface(path: Path, wasm: bytes) -> Interface:
    """What wasmtime-py's reflection says the module imports and exports (the reference
    that the binary reader is pinned to)."""
    import wasmtime

    def item(ty: object) -> Item:
        if isinstance(ty, wasmtime.FuncType):
            return Item("func", signature=(tuple(map(str, ty.params)), tuple(map(str, ty.results))))
        if isinstance(ty, wasmtime.MemoryType):
            return Item("memory", limits=(ty.limits.min, ty.limits.max), is_64=ty.is_64)
        return Item(type(ty).__name__.removesuffix("Type").lower())

    try:
        module = wasmtime.Module(wasmtime.Engine(), wasm)
    except wasmtime.WasmtimeError as exc:
        raise PluginLoadError.invalid(path, "module", exc) from None
    return Interface(tuple(Import(i.module, i.name or "", item(i.type)) for i in module.imports),
                     {e.name: item(e.type) for e in module.exports})


def _check_func(path: Path, exports: Mapping[str, Item], name: str, wanted: Signature) -> None:
    item = exports.get(name)
    if item is None:
        raise PluginLoadError(f"{path}: missing export {name}")
    if item.signature is None:
        raise PluginLoadError(f"{path}: export {name} is not a function")
    got = item.signature
    if got != wanted:
        raise PluginLoadError(
            f"{path}: export {name} has type {format_signature(got)}, "
            f"expected {format_signature(wanted)}")


def validate_module(path: Path, interface: Interface, limits: Limits) -> str | None:
    """Checks exports and imports every ABI version shares; returns the init export
    to run, if any.  What depends on the version is checked once the plugin said
    which it is (Plugin's probe)."""
    exports = interface.exports
    memory = exports.get("memory")
    if memory is None:
        raise PluginLoadError(f"{path}: missing export memory")
    if memory.limits is None:
        raise PluginLoadError(f"{path}: export memory is not a memory")
    if memory.is_64:
        raise PluginLoadError(f"{path}: export memory is a 64-bit memory; plugins need a 32-bit one")
    if memory.limits[0] * WASM_PAGE > limits.max_memory_bytes:
        raise PluginLoadError(
            f"{path}: memory starts at {memory.limits[0] * WASM_PAGE} bytes, over the "
            f"{format_size(limits.max_memory_bytes)} limit")
    for name, wanted in REQUIRED_EXPORTS.items():
        _check_func(path, exports, name, wanted)
    if FREE_EXPORT in exports:
        _check_func(path, exports, FREE_EXPORT, FREE_SIGNATURE)
    init = next((name for name in INIT_EXPORTS if name in exports), None)
    if init is not None and exports[init].signature != INIT_SIGNATURE:
        raise PluginLoadError(f"{path}: export {init} must be a function ()->()")
    for imp in interface.imports:
        where = f"import {imp.module}.{imp.name}"
        if imp.module == HOST_MODULE:
            host_sig = HOST_SIGNATURES.get(imp.name)
            if host_sig is None:
                raise PluginLoadError(
                    f"{path}: {where} is not a vrclog host function "
                    f"(there are: {', '.join(HOST_SIGNATURES)})")
            if imp.item.signature is None:
                raise PluginLoadError(f"{path}: {where} must be a function")
            got = imp.item.signature
            if got != host_sig:
                raise PluginLoadError(
                    f"{path}: {where} has type {format_signature(got)}, "
                    f"expected {format_signature(host_sig)}")
        elif imp.module != WASI_MODULE:
            raise PluginLoadError(
                f"{path}: {where} is not available (plugins may import only from {HOST_MODULE} "
                f"and {WASI_MODULE})")
    return init


def declared_prefilter(path: Path, wasm: bytes) -> Declared:
    """What the binary's prefilter section declares; PluginLoadError naming the section."""
    try:
        return read_prefilter(custom_sections(wasm, PREFILTER_SECTION), custom_sections(wasm, TYPES_SECTION))
    except MalformedBinary as exc:
        raise PluginLoadError(f"{path}: invalid WebAssembly module: {exc}") from None
    except PrefilterError as exc:
        where = "" if str(exc).startswith("custom section ") else f"custom section {PREFILTER_SECTION}: "
        raise PluginLoadError(f"{path}: {where}{exc}") from None


def compile_plugin(path: Path, engine: capi.Engine, limits: Limits, engine_settings: str,
                   notice: CompileNotice | None,
                   component_engine: Callable[[str, bool], tuple[wasmtime.Engine, str]],
                   ) -> CompiledPlugin | CompiledComponent:
    """The plugin compiled for ``engine`` (from the cache when it holds it); ``engine_settings``:
    what of the engine's configuration shapes compiled code, for the cache key; ``notice``:
    what tells a person about a compilation that takes seconds; ``component_engine``: the
    engine for a component compiled by the compiler named (and whether it is a large one),
    and its settings (wasmtime-py's: its component API compiles it)."""
    data = to_wasm_binary(path, read_plugin(path, limits))
    declared = declared_prefilter(path, data)
    digest = hashlib.sha256(data).hexdigest()
    if is_component(data):
        *first, last = capi.component_compilers()
        large = len(data) >= capi.LARGE_COMPONENT_BYTES
        for compiler in first:  # Winch, where it runs: 4x faster to compile
            wt_engine, settings = component_engine(compiler, large)
            try:
                return compile_component(path, data, digest, wt_engine, limits.max_memory_bytes, settings,
                                         declared, notice, compiler, large)
            except ComponentCompileError:  # refused: the last compiler's verdict is reported
                pass
        wt_engine, settings = component_engine(last, large)
        return compile_component(path, data, digest, wt_engine, limits.max_memory_bytes, settings,
                                 declared, notice, last, large)
    key = module_cache.cache_key(digest, f"max_memory={limits.max_memory_bytes},{engine_settings}")
    module = module_cache.load(engine, key)
    from_cache = module is not None
    if module is None:
        try:
            module = capi.Module.compile(engine, data)
        except capi.WasmError as exc:
            raise PluginLoadError.invalid(path, "module", exc) from None
    interface = module_interface(path, data)
    init = validate_module(path, interface, limits)
    if not from_cache:
        module_cache.store(module, key)
    needs_wasi = any(imp.module == WASI_MODULE for imp in interface.imports)
    memory = interface.exports["memory"]
    assert memory.limits is not None  # validate_module checked it
    minimum, maximum = memory.limits
    return CompiledPlugin(
        path=path, module=module, init_export=init, needs_wasi=needs_wasi, from_cache=from_cache,
        min_memory_bytes=minimum * WASM_PAGE,
        max_memory_bytes=None if maximum is None else maximum * WASM_PAGE,
        has_free=FREE_EXPORT in interface.exports, declared=declared, sha256=digest)
