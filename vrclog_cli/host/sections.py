"""Custom sections of a WebAssembly binary: read them, or write one anew.

wasmtime does not expose custom sections, and the framing is simple (an id
byte, a LEB128 size, the payload; a custom section's payload starts with its
name), so it is read here.  Core modules and components frame sections alike.
"""

from __future__ import annotations

from .abi import WASM_MAGIC

CUSTOM_SECTION_ID = 0
_HEADER_BYTES = 8  # magic and version


class MalformedBinary(ValueError):
    """The bytes are not framed as a WebAssembly binary."""


def _read_leb_u32(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(value, position after it) of an unsigned LEB128 of at most 5 bytes."""
    return read_leb(data, pos, len(data), 5)


def read_leb(data: bytes | memoryview, pos: int, end: int, max_bytes: int) -> tuple[int, int]:
    """(value, position after it) of an unsigned LEB128 of at most ``max_bytes`` bytes
    ending before ``end``."""
    value = shift = 0
    for _ in range(max_bytes):
        if pos >= end:
            raise MalformedBinary("unexpected end of the binary inside a size")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise MalformedBinary(f"a number is longer than {max_bytes} bytes")


def encode_leb_u32(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sections(wasm: bytes) -> list[tuple[int, int, int, int]]:
    """(id, start of the section, start of its payload, end) for every top-level section."""
    if not wasm.startswith(WASM_MAGIC) or len(wasm) < _HEADER_BYTES:
        raise MalformedBinary("no \\0asm header")
    found = []
    pos = _HEADER_BYTES
    while pos < len(wasm):
        start = pos
        section_id = wasm[pos]
        size, payload = _read_leb_u32(wasm, pos + 1)
        end = payload + size
        if end > len(wasm):
            raise MalformedBinary(f"section {section_id} at {start:#x} runs past the end")
        found.append((section_id, start, payload, end))
        pos = end
    return found


def _custom_name(wasm: bytes, payload: int, end: int) -> tuple[str, int]:
    """A custom section's name and where its content starts."""
    length, pos = _read_leb_u32(wasm, payload)
    if pos + length > end:
        raise MalformedBinary("a custom section's name runs past the section")
    return wasm[pos:pos + length].decode("utf-8", "replace"), pos + length


def custom_sections(wasm: bytes, name: str) -> list[bytes]:
    """The content of every custom section called ``name``, in binary order."""
    out = []
    for section_id, _start, payload, end in sections(wasm):
        if section_id == CUSTOM_SECTION_ID:
            found, content = _custom_name(wasm, payload, end)
            if found == name:
                out.append(wasm[content:end])
    return out


def with_custom_section(wasm: bytes, name: str, content: bytes | None) -> bytes:
    """The binary with every section called ``name`` removed and, unless ``content``
    is None, one such section appended (custom sections may stand anywhere)."""
    kept = [wasm[:_HEADER_BYTES]]
    for section_id, start, payload, end in sections(wasm):
        if section_id == CUSTOM_SECTION_ID and _custom_name(wasm, payload, end)[0] == name:
            continue
        kept.append(wasm[start:end])
    if content is not None:
        encoded = name.encode()
        body = encode_leb_u32(len(encoded)) + encoded + content
        kept.append(bytes([CUSTOM_SECTION_ID]) + encode_leb_u32(len(body)) + body)
    return b"".join(kept)
