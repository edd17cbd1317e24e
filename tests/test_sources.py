"""Reading sources: line splitting limits and streaming gzip."""

from __future__ import annotations

import gzip

from hypothesis import given, settings
from hypothesis import strategies as st

from vrclog_cli.sources import Decoder, _LineSplitter


def inflate(data: bytes, step: int) -> bytes:
    decoder = Decoder()
    out: list[bytes] = []
    for i in range(0, len(data), step):
        out.extend(decoder.feed(data[i:i + step]))
    out.extend(decoder.finish())
    return b"".join(out)


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(st.binary(max_size=3000), min_size=1, max_size=4),
       step=st.integers(min_value=1, max_value=5000))
def test_gzip_members_any_chunking(parts: list[bytes], step: int) -> None:
    data = b"".join(gzip.compress(p) for p in parts)
    assert inflate(data, step) == b"".join(parts)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=3000), step=st.integers(min_value=1, max_value=5000))
def test_plain_bytes_pass_through(raw: bytes, step: int) -> None:
    if raw.startswith(b"\x1f\x8b"):
        raw = b"x" + raw
    assert inflate(raw, step) == raw


def test_gzip_bomb_is_inflated_in_bounded_pieces() -> None:
    bomb = gzip.compress(bytes(50_000_000), 1) + gzip.compress(b"tail\n")
    decoder = Decoder()
    biggest = 0
    total = 0
    for i in range(0, len(bomb), 262144):
        for piece in decoder.feed(bomb[i:i + 262144]):
            biggest = max(biggest, len(piece))
            total += len(piece)
    assert biggest <= Decoder.PIECE and total == 50_000_005


def test_splitter_keeps_at_most_the_cap_of_a_long_line() -> None:
    splitter = _LineSplitter("x", max_line_bytes=100)
    for _ in range(1000):
        assert splitter.feed(b"a" * 1000) is None
        assert len(splitter.partial) <= 104
    lines = splitter.feed(b"\n")
    assert lines is not None
    (line,) = lines
    assert line.too_large == 1_000_000 and line.text == "" and line.number == 1
