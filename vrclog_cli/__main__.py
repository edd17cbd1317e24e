"""The ``vrclog`` command's first code: ``python -m vrclog_cli``, and the console script
(a Windows Python without Scripts on PATH, a venv not activated, use the former)."""

from __future__ import annotations

from .stops import hold_stop_signals

TYPE_CHECKING = False  # not typing's (~6 ms): this runs before Ctrl-C is held
if TYPE_CHECKING:
    from typing import NoReturn


def entry() -> NoReturn:
    """Holds stop signals before anything heavy is imported (~100 ms of modules: a
    Ctrl-C there raised KeyboardInterrupt inside an import), then runs the command."""
    hold_stop_signals()
    from .cli import entry as command

    command()


if __name__ == "__main__":  # worker processes (spawn) import this module as __mp_main__
    entry()
