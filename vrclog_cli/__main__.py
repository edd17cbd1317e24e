"""``python -m vrclog_cli``: the ``vrclog`` command where its script is not on PATH
(a Windows Python without Scripts on PATH, a venv not activated)."""

from .cli import entry

if __name__ == "__main__":  # worker processes (spawn) import this module as __mp_main__
    entry()
