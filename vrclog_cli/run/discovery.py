"""Finding VRChat's own log files (``output_log_*.txt``).

VRChat writes them to ``%LOCALAPPDATA%Low\\VRChat\\VRChat`` on Windows; under
Proton on Linux that is inside the Steam prefix of app 438100.
"""

from __future__ import annotations

import os
from pathlib import Path

LOG_GLOB = "output_log_*.txt"
_PROTON_TAIL = Path("steamapps/compatdata/438100/pfx/drive_c/users/steamuser/AppData/LocalLow/VRChat/VRChat")


def default_log_dirs() -> list[Path]:
    """Where VRChat keeps its logs on this machine, most likely first."""
    candidates: list[Path] = []
    local = os.environ.get("LOCALAPPDATA")
    if local:
        candidates.append(Path(local + "Low") / "VRChat" / "VRChat")
    home = Path(os.path.expanduser("~"))
    for steam in (home / ".steam/steam", home / ".local/share/Steam",
                  home / ".var/app/com.valvesoftware.Steam/.local/share/Steam"):
        candidates.append(steam / _PROTON_TAIL)
    return candidates


def log_files(directory: Path) -> list[Path]:
    """The directory's VRChat logs, oldest first (by modification time, then name)."""
    files = [p for p in directory.glob(LOG_GLOB) if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def find_default_logs() -> tuple[Path | None, list[Path]]:
    """(the first existing VRChat log folder, its logs oldest first)."""
    for directory in default_log_dirs():
        if directory.is_dir():
            return directory, log_files(directory)
    return None, []
