"""The wasm side: one plugin, one line, one fresh instance."""
