"""vrclog: a log parser whose parsing logic lives in WebAssembly plugins."""

__version__ = "0.1.0"
