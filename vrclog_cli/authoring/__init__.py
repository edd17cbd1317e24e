"""Tools for plugin authors: plugin info and plugin check."""
