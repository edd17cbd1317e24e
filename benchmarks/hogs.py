"""CPU hogs: processes that keep every core busy, as other jobs on a shared CI runner do.

    python benchmarks/hogs.py [-n 4] -- COMMAND [ARGS...]   runs COMMAND beside the hogs

Each hog spins in pure Python and checks now and then that the process that started
it is still there, so none outlives an interrupted run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

HOGS = 4
_SPIN = ("import os, sys\n"
         "parent = int(sys.argv[1])\n"
         "while os.getppid() == parent:\n"
         "    for _ in range(2_000_000):\n"
         "        pass\n")


@contextmanager
def hogs(count: int = HOGS) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` busy processes while the block runs; gone when it ends, however it ends."""
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN, str(os.getpid())],
                              stdin=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=HOGS, help="how many hogs (default %(default)s)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    with hogs(args.n):
        print(f"hogs: {args.n} CPU-bound processes beside: {' '.join(command)}", file=sys.stderr, flush=True)
        try:
            return subprocess.call(command)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
