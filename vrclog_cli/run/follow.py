"""``--follow``: keep reading a growing log like ``tail -F``.

Survives truncation (reads again from the start; also when the file was
truncated and rewritten past the read offset between two polls, which the
bytes just before the offset tell) and replacement (rotation:
the path now names another file, which is read from its start once the old
one is drained).  Given a directory, follows its newest ``output_log_*.txt``
and moves on when VRChat starts another: to the next log after it, oldest first,
each read to its end (however fast new ones appear: jumping to the newest lost
a log made in between).  A partial last line waits
for its newline.  Never ends by itself: the run is stopped by a signal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import InputError
from .discovery import log_files
from .sources import BATCH_LINES, CHUNK, Idle, Item, LineSplitter, SourceFailed, open_shared, snapshot_end

POLL_S = 0.2
#: How many bytes before the read offset are remembered to notice a rewrite.
SIGNATURE_BYTES = 64


class _Followed:
    def __init__(self, path: Path, max_line_bytes: int, from_start: bool, offsets: bool = False,
                 start: tuple[int, int] = (0, 0)) -> None:
        self.path = path
        self.fd = open_shared(path)  # VRChat may rotate or delete it meanwhile, on Windows too
        st = os.fstat(self.fd)
        self.inode = (st.st_dev, st.st_ino)
        self.position = 0
        #: The last bytes read, ending at ``position``.
        self.signature = b""
        if not from_start:
            self.position = os.lseek(self.fd, st.st_size, os.SEEK_SET)
            self.signature = self._bytes_before(self.position)
        self.splitter = LineSplitter(str(path), max_line_bytes, offsets=offsets)
        self.splitter.position = self.splitter.partial_start = self.position
        if from_start and start[0] and start[0] <= st.st_size:  # a cursor's place, or --new's
            self.position = os.lseek(self.fd, start[0], os.SEEK_SET)
            self.signature = self._bytes_before(self.position)
            self.splitter.resume(*start)

    def read(self) -> bytes:
        chunk = os.read(self.fd, CHUNK)
        self.position += len(chunk)
        self.signature = (self.signature + chunk)[-SIGNATURE_BYTES:]
        return chunk

    def _bytes_before(self, position: int) -> bytes:
        """The file's bytes just before ``position`` (lseek and read: os.pread is POSIX only)."""
        start = max(0, position - SIGNATURE_BYTES)
        os.lseek(self.fd, start, os.SEEK_SET)
        data = os.read(self.fd, position - start)
        os.lseek(self.fd, position, os.SEEK_SET)
        return data

    def rewritten(self, size: int) -> bool:
        """Whether what was read is no longer what the file holds: truncated below the
        offset, or truncated and rewritten past it."""
        return size < self.position or self._bytes_before(self.position) != self.signature

    def start_over(self) -> None:
        os.lseek(self.fd, 0, os.SEEK_SET)
        self.position = 0
        self.signature = b""
        self.splitter.restart()

    def close(self) -> None:
        os.close(self.fd)


def follow_items(target: str, max_line_bytes: int, stopped: Callable[[], bool],
                 batch_lines: int = BATCH_LINES, offsets: bool = False,
                 start_of: Callable[[str], tuple[int, int]] | None = None,
                 new: bool = False) -> Iterator[Item]:
    """Batches of lines as they are appended, with an Idle marker whenever caught up;
    ``offsets``: batches carry each line's byte offset; ``start_of``: where to start a
    file (byte offset, lines before it: a cursor's place), else its beginning; ``new``:
    the file followed first starts at its end (logs that appear later are read whole)."""
    base = Path(target)
    watch_dir = base if base.is_dir() else None
    #: Logs of the folder read to their end, or there before the run (tail starts at the newest).
    finished: set[Path] = set(log_files(watch_dir)[:-1]) if watch_dir is not None else set()

    def current_path(after: Path | None = None) -> Path | None:
        """The log to read next: the oldest of the folder's not yet finished (other than
        ``after``, the one being read); the path itself when following a file."""
        if watch_dir is None:
            return base
        return next((p for p in log_files(watch_dir) if p not in finished and p != after), None)

    followed: _Followed | None = None
    started_any = False  # whether a file was opened yet (--new skips the first one's lines)
    reported_missing = False
    while not stopped():
        if followed is None:
            path = current_path()
            if path is None or not path.exists():
                if not reported_missing:
                    what = f"no {watch_dir}/output_log_*.txt yet" if watch_dir else f"{base}: not found"
                    yield SourceFailed(InputError(f"{what}; waiting for it"))
                    reported_missing = True
                yield Idle()
                time.sleep(POLL_S)
                continue
            try:
                start = start_of(str(path)) if start_of is not None else (0, 0)
                if new and not started_any:  # --new: what it holds now is not new
                    start = snapshot_end(str(path))
                followed = _Followed(path, max_line_bytes, from_start=True, offsets=offsets, start=start)
                started_any = True
            except OSError as exc:
                yield SourceFailed(InputError(f"{path}: cannot open: {exc.strerror}"))
                yield Idle()
                time.sleep(POLL_S)
                continue
        chunk = followed.read()
        if chunk:
            lines = followed.splitter.feed(chunk)
            if lines is not None:
                yield from lines.batches(batch_lines)
            continue
        # Caught up: flush what we have, then look for truncation or rotation.
        yield Idle()
        time.sleep(POLL_S)
        try:
            st = os.stat(followed.path)
            same = (st.st_dev, st.st_ino) == followed.inode
        except FileNotFoundError:
            st, same = None, False
        newer = current_path(after=followed.path)
        if same and st is not None and followed.rewritten(st.st_size):
            followed.start_over()
        elif not same or (newer is not None and newer != followed.path):
            # Replaced or rotated: drain what the old file still has, then switch.
            rest = b"".join(iter(followed.read, b""))
            for lines in (followed.splitter.feed(rest), followed.splitter.finish()):
                if lines is not None:
                    yield from lines.batches(batch_lines)
            followed.close()
            finished.add(followed.path)
            followed = None
            reported_missing = False
    if followed is not None:
        followed.close()
