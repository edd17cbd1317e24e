"""``vrclog plugin prefilter`` and ``plugin types``: write (or remove) the prefilter or the
declared event types section of any plugin binary.

Any toolchain's output works (TinyGo, AssemblyScript, Rust, C): the section is
appended after the module's own sections, replacing one that was there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError, PluginLoadError
from ..limits import Limits
from .abi import PREFILTER_SECTION, TYPES_SECTION
from .loader import declared_prefilter, read_plugin, to_wasm_binary
from .prefilter import Prefilter, encode_event_types
from .sections import MalformedBinary, with_custom_section


def embed_prefilter(source: Path, target: Path, prefilter: Prefilter | None,
                    limits: Limits | None = None) -> bytes:
    """Writes ``source`` with its prefilter section set to ``prefilter`` (None: removed)
    to ``target``, atomically; returns the bytes written."""
    return _embed(source, target, PREFILTER_SECTION, prefilter.encode() if prefilter is not None else None,
                  limits)


def embed_event_types(source: Path, target: Path, types: Sequence[str] | None,
                      limits: Limits | None = None) -> bytes:
    """Writes ``source`` declaring the event ``types`` it can emit (None: the section
    removed) to ``target``, atomically; returns the bytes written."""
    return _embed(source, target, TYPES_SECTION, encode_event_types(types) if types is not None else None,
                  limits)


def _embed(source: Path, target: Path, name: str, content: bytes | None, limits: Limits | None) -> bytes:
    limits = limits or Limits()
    wasm = to_wasm_binary(source, read_plugin(source, limits))
    try:
        out = with_custom_section(wasm, name, content)
    except MalformedBinary as exc:
        raise PluginLoadError(f"{source}: invalid WebAssembly binary: {exc}") from None
    declared_prefilter(target, out)  # what a host will read back (raises if it would refuse it)
    directory = target.resolve().parent
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"{target}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InputError(f"{target}: cannot write: {exc.strerror}") from None
    return out
