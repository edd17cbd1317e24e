"""What is installed: wasmtime's version, read without importing wasmtime-py (25-30 ms
of start-up that `vrclog --version` and a built-in run never need)."""

from __future__ import annotations

import functools
import os
from importlib.machinery import PathFinder


@functools.cache
def wasmtime_version() -> str:
    """The installed wasmtime's version (part of the compiled-module cache key).

    Read from the name of its ``.dist-info`` folder beside the package when there is
    one: importing importlib.metadata alone costs ~15 ms of every start-up.
    """
    spec = PathFinder.find_spec("wasmtime")
    if spec is not None and spec.submodule_search_locations:
        site = os.path.dirname(next(iter(spec.submodule_search_locations)))
        try:
            for name in os.listdir(site):
                if name.startswith("wasmtime-") and name.endswith(".dist-info"):
                    return name[len("wasmtime-"):-len(".dist-info")]
        except OSError:
            pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wasmtime")
    except PackageNotFoundError:
        return "unknown"
