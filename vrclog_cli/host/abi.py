"""The plugin ABI in one place (design.md sections 2, 2b and 2c).

Versions, the v1 input region, the exports and imports with their exact
types, the custom section of the prefilter, and how a ``parse_line`` result
is unpacked.  Every other module takes these from here, so a new version is
one edit away.
"""

from __future__ import annotations

#: (param types, result types) of a function, as wasmtime names them.
Signature = tuple[tuple[str, ...], tuple[str, ...]]

#: v1: vrclog-go's ABI (the line as {"line": ...} JSON at a fixed offset);
#: v2: the line's raw UTF-8 bytes where the plugin's ``alloc`` put them.
SUPPORTED_VERSIONS = (1, 2)

#: ABI v1: where the host writes the input JSON in the plugin's memory, and its size.
INPUT_OFFSET = 0x10000
INPUT_REGION = 8192

#: Exports every plugin of every version has, with their types.
REQUIRED_EXPORTS: dict[str, Signature] = {
    "abi_version": ((), ("i32",)),
    "alloc": (("i32",), ("i32",)),
    "parse_line": (("i32", "i32"), ("i64",)),
}
#: ``free``: required by v1 (the host calls it on the output), optional in v2.
FREE_EXPORT = "free"
FREE_SIGNATURE: Signature = (("i32", "i32"), ())
#: Run once in every fresh instance, the first one exported (WASI reactor, then command).
INIT_EXPORTS = ("_initialize", "_start")
INIT_SIGNATURE: Signature = ((), ())

#: Where a plugin imports the host functions from, and their exact types.
HOST_MODULE = "env"
HOST_SIGNATURES: dict[str, Signature] = {
    "regex_match": (("i32",) * 4, ("i32",)),
    "regex_find_submatch": (("i32",) * 6, ("i32",)),
    "log": (("i32",) * 3, ()),
    "now_ms": ((), ("i64",)),
}
WASI_MODULE = "wasi_snapshot_preview1"

#: The custom section that declares which lines a plugin can match (section 2c).
PREFILTER_SECTION = "vrclog.prefilter"
#: The event types a plugin declares it can emit: {"types": ["name", ...]}.
TYPES_SECTION = "vrclog.types"

WASM_MAGIC = b"\0asm"
WASM_PAGE = 65536


def requires_free(version: int) -> bool:
    return version == 1


def unpack_result(packed: int) -> tuple[int, int]:
    """(out_ptr, out_len) of parse_line's ``(out_len << 32) | out_ptr``."""
    return packed & 0xFFFFFFFF, (packed >> 32) & 0xFFFFFFFF


def supported_text() -> str:
    """"1 and 2": for messages that name the versions this host supports."""
    names = [str(v) for v in SUPPORTED_VERSIONS]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def format_signature(sig: Signature) -> str:
    params, results = sig
    res = results[0] if len(results) == 1 else "(" + ",".join(results) + ")"
    return "(" + ",".join(params) + ")->" + res
