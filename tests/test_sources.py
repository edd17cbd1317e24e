"""Reading sources: line splitting limits and streaming gzip."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vrclog_cli.run.sources import UNKNOWN_OFFSET, CorruptGzip, Decoder, LineFinder, LineSplitter
from vrclog_cli.vrchat.builtin import RAW_LINE_FINDER, BuiltinParser


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


def inflate_until_damage(data: bytes, step: int) -> tuple[bytes, str]:
    """What a Decoder hands out before it raises, and the error it raises."""
    decoder = Decoder()
    out: list[bytes] = []
    with pytest.raises(CorruptGzip) as raised:
        for i in range(0, len(data), step):
            out.extend(decoder.feed(data[i:i + step]))
        out.extend(decoder.finish())
    return b"".join(out), str(raised.value)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(min_size=1, max_size=20000), cut=st.floats(0.0, 0.999),
       step=st.integers(min_value=1, max_value=5000))
def test_truncated_gzip_is_damage_after_what_it_held(raw: bytes, cut: float, step: int) -> None:
    packed = gzip.compress(raw)
    at = max(1, int(len(packed) * cut))
    if at < 2:
        at = 2  # one byte of magic alone is not recognised as gzip at all
    data, error = inflate_until_damage(packed[:at], step)
    assert raw.startswith(data)
    assert error.startswith("ended inside a member") and error.endswith(f"at byte {at}")


@pytest.mark.parametrize(("damage", "words"), [
    (lambda p: p[:-8] + bytes([p[-8] ^ 1]) + p[-7:], "the CRC-32 in the trailer does not match"),
    (lambda p: p[:-1] + bytes([p[-1] ^ 1]), "the length in the trailer does not match"),
    (lambda p: p + b"hello", "data that is not gzip after the last member"),
    (lambda p: p + p[:30], "ended inside a member at byte"),
])
def test_damaged_trailer_or_tail_is_damage_after_every_byte_it_held(damage: object, words: str) -> None:
    raw = b"".join(b"line %d\n" % i for i in range(20000))
    for step in (7, 4096, 1 << 20):
        data, error = inflate_until_damage(damage(gzip.compress(raw)), step)  # type: ignore[operator]
        assert data == raw and words in error


def test_zero_padding_after_gzip_is_ignored_as_gzip_ignores_it() -> None:
    raw = b"padded\n"
    assert inflate(gzip.compress(raw) + bytes(1000), 7) == raw
    assert inflate_until_damage(gzip.compress(raw) + bytes(10) + b"x", 3)[1].endswith("at byte 37")


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
    splitter = LineSplitter("x", max_line_bytes=100)
    for _ in range(1000):
        assert splitter.feed(b"a" * 1000) is None
        assert len(splitter.partial) <= 104
    lines = splitter.feed(b"\n")
    assert lines is not None
    (line,) = lines
    assert line.too_large == 1_000_000 and line.text == "" and line.number == 1


def split_all(data: bytes, step: int, cap: int, needles: tuple[bytes, ...] | None,
              finder: LineFinder | None = None) -> list[tuple[int, str, int]]:
    splitter = LineSplitter("x", cap, needles, finder)
    batches = [splitter.feed(data[i:i + step]) for i in range(0, len(data), step)]
    batches.append(splitter.finish())
    return [(line.number, line.text, line.too_large) for b in batches if b is not None for line in b]


PIECES = st.sampled_from([b"a", b"b", b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf", b"\xff", b"\xe6",
                          b"\xe6\x97\xa5", b"[VR", b"Poker]", b"[VRPoker]", "é".encode(), b"\x80", b"\xc3"])
NEEDLE_SETS = st.sampled_from([("[VRPoker]",), ("b",), ("日", "a"), ("é",), ("\r",), ("ab", "\ufeff")])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(PIECES, max_size=120), step=st.sampled_from([1, 3, 17, 64, 100_000]),
       cap=st.sampled_from([4, 30, 10_000]), substrings=NEEDLE_SETS)
@example(parts=[b"x\nb1\nb2\nzz\nb3\r\n\xffb\n"], step=100_000, cap=10_000, substrings=("b",))
def test_needled_split_decodes_every_line_a_prefilter_can_accept(
        parts: list[bytes], step: int, cap: int, substrings: tuple[str, ...]) -> None:
    """Pinned to the plain split: same lines, numbers and sizes; where any substring is in
    the plain text, the same text; elsewhere that text or ""."""
    data = b"".join(parts)
    plain = split_all(data, step, cap, None)
    needled = split_all(data, step, cap, tuple(s.encode() for s in substrings))
    assert [(n, big) for n, _, big in needled] == [(n, big) for n, _, big in plain]
    for (_, fast, _), (_, text, _) in zip(needled, plain, strict=True):
        if any(s in text for s in substrings):
            assert fast == text
        else:
            assert fast in ("", text)


HEADER = b"2025.06.17 18:20:05 Debug      -  "
BUILTIN_PIECES = st.sampled_from([HEADER, HEADER.replace(b"05 ", b"0\xc3\xa9 "),
                                  HEADER.replace(b"Debug", b"D\xc3\xa9bug"), b"\xe6\x97\xa5" + HEADER,
                                  b"[Behaviour] ", b"OnLeftRoom", b"OnPlayerJoined ", b"Jo (usr_1)",
                                  b"[VRC Camera] Took screenshot to: ", b"x", b"\n", b"\r\n", b"\xff",
                                  b"\xef\xbb\xbf", b"\xc3"])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(BUILTIN_PIECES, max_size=60), step=st.sampled_from([1, 7, 64, 100_000]),
       cap=st.sampled_from([40, 10_000]))
@example(parts=[b"x\n", HEADER.replace(b"05 ", b"0\xc3\xa9 "), b"[Behaviour] ", b"OnLeftRoom", b"\n", b"x"],
         step=100_000, cap=10_000)  # a non-ASCII header: the line must give no event
def test_prefixed_split_keeps_every_line_the_builtin_parser_can_use(
        parts: list[bytes], step: int, cap: int) -> None:
    """Pinned to the plain split: same lines, numbers and sizes, and the built-in parser
    finds the same events in what is decoded as in the plain text."""
    data = b"".join(parts)
    plain = split_all(data, step, cap, None)
    prefixed = split_all(data, step, cap, None, RAW_LINE_FINDER)
    assert [(n, big) for n, _, big in prefixed] == [(n, big) for n, _, big in plain]
    parser = BuiltinParser()
    for (_, fast, _), (_, text, _) in zip(prefixed, plain, strict=True):
        assert fast in ("", text)
        assert parser.call(fast) == parser.call(text)


def _follow_until(items: Iterator[object], want: int, deadline_s: float = 10) -> list[str]:
    """The lines ``follow_items`` yields until ``want`` of them came (or the deadline)."""
    from vrclog_cli.run.sources import Lines

    got: list[str] = []
    deadline = time.monotonic() + deadline_s
    while len(got) < want and time.monotonic() < deadline:
        item = next(items)
        if isinstance(item, Lines):
            got.extend(item.texts)
    return got


def test_a_followed_log_may_be_renamed_and_deleted_while_it_is_read(tmp_path: Path) -> None:
    """VRChat (or a user) rotates and deletes logs while vrclog follows them: the reader
    must not lock them (on Windows it shares delete access), and it moves to the new file."""
    from vrclog_cli.run.follow import follow_items

    log = tmp_path / "live.log"
    log.write_text("first\n")
    items = follow_items(str(log), 1 << 20, stopped=lambda: False)
    assert _follow_until(items, 1) == ["first"]
    old = tmp_path / "old.log"
    log.rename(old)  # while the reader holds it open
    log.write_text("second\n")
    assert _follow_until(items, 1) == ["second"]
    with old.open("a") as f:  # the rotated file is still writable, and deletable
        f.write("late\n")
    old.unlink()
    with log.open("a") as f:
        f.write("third\n")
    assert _follow_until(items, 1) == ["third"]


def test_needled_bytes_estimates_what_prefilters_let_through(tmp_path: Path) -> None:
    from vrclog_cli.run.sources import needled_bytes

    hit, miss = b"[VRPoker] Round 1 begins\n", b"[Network] ping 12ms\n" * 9
    log = tmp_path / "a.log"
    log.write_bytes((hit + miss) * 20_000)  # 4.3 MB, larger than the sample
    estimate = needled_bytes([str(log)], (b"[VRPoker]",))
    assert estimate is not None and abs(estimate - len(hit) * 20_000) < len(hit) * 200  # within 1 %
    assert needled_bytes([str(log)], (b"absent",)) == 0
    packed = tmp_path / "a.log.gz"
    packed.write_bytes(gzip.compress(log.read_bytes()))
    assert needled_bytes([str(packed)], (b"[VRPoker]",)) is None  # its bytes tell nothing
    assert needled_bytes(["-"], (b"[VRPoker]",)) is None and needled_bytes([], (b"x",)) is None
    assert needled_bytes([str(tmp_path / "missing.log"), str(log)], (b"[VRPoker]",)) == estimate


def test_a_file_truncated_while_it_is_read_is_a_warning_and_no_half_line(tmp_path: Path) -> None:
    """The reader has taken its first 256 KiB when the file is cut to 100 KiB: the lines of
    what it read are given, the piece of line read last is not (it was never finished),
    and a warning names the file."""
    from vrclog_cli.run.sources import CHUNK, Lines, SourceWarning, read_items

    log = tmp_path / "cut.log"
    lines = [f"line {i:07d} " + "x" * 80 for i in range(7000)]  # ~650 KB
    log.write_text("".join(line + "\n" for line in lines))
    got: list[str] = []
    warnings: list[str] = []
    items = read_items([str(log)], 1 << 20, batch_lines=64)
    for item in items:
        if isinstance(item, Lines):
            got.extend(item.texts)
            if len(got) >= 64 and log.stat().st_size > 100_000:
                with log.open("r+b") as f:
                    f.truncate(100_000)
        elif isinstance(item, SourceWarning):
            warnings.append(item.message)
    assert len(warnings) == 1 and warnings[0].startswith(f"{log}: truncated while it was read ")
    assert got == lines[:len(got)]  # whole lines only, in order: none cut off
    assert 0 < len(got) <= CHUNK // 90


def split_offsets(data: bytes, step: int, cap: int, needles: tuple[bytes, ...] | None,
                  finder: LineFinder | None, batch: int) -> list[tuple[int, int | None, str]]:
    splitter = LineSplitter("x", cap, needles, finder, offsets=True)
    batches = [splitter.feed(data[i:i + step]) for i in range(0, len(data), step)]
    batches.append(splitter.finish())
    assert all(b.offsets is not None and len(b.offsets) == len(b.texts) for b in batches if b is not None)
    return [(line.number, line.offset, line.text) for b in batches if b is not None
            for part in b.batches(batch) for line in part]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(PIECES, max_size=120), step=st.sampled_from([1, 3, 17, 64, 100_000]),
       cap=st.sampled_from([4, 30, 10_000]), mode=st.sampled_from(["plain", "needles", "prefixes"]),
       batch=st.sampled_from([1, 5, 64]))
@example(parts=[b"\xef\xbb\xbfa\r\n", b"b" * 50, b"\n", b"c"], step=3, cap=4, mode="plain", batch=1)
def test_each_line_knows_its_byte_offset(parts: list[bytes], step: int, cap: int, mode: str,
                                          batch: int) -> None:
    """A line's offset is where its bytes begin in the source (a BOM is the first line's),
    whatever the chunking, the cap, the batching; a line the reader left undecoded (no
    parser can take it) may have UNKNOWN_OFFSET instead."""
    data = b"".join(parts)
    starts = [0] + [i + 1 for i, byte in enumerate(data) if byte == 0x0A]
    if data.endswith(b"\n") or not data:
        starts.pop()  # no line after the last line ending
    needles = (b"b",) if mode == "needles" else None
    prefixes = RAW_LINE_FINDER if mode == "prefixes" else None
    got = split_offsets(data, step, cap, needles, prefixes, batch)
    assert [n for n, _, _ in got] == list(range(1, len(starts) + 1))
    for (_, offset, text), start in zip(got, starts, strict=True):
        if mode == "plain" or text:
            assert offset == start
        else:
            assert offset in (start, UNKNOWN_OFFSET)


def test_a_vrchat_line_among_skipped_ones_knows_its_offset() -> None:
    line = b"2025.06.17 18:20:02 Debug      -  [Behaviour] OnLeftRoom"
    data = b"noise\r\n" * 3 + line + b"\n" + b"x" * 10 + b"\n" + line + b"\r\n"
    got = split_offsets(data, 1 << 20, 1 << 20, None, RAW_LINE_FINDER, 64)
    assert [offset for _, offset, text in got if text == line.decode()] == [21, 21 + len(line) + 12]
