"""The bytes of a JSON export on their way to the streaming parser, made safe: nesting deeper than
:data:`core.limits.MAX_JSON_DEPTH` is refused while streaming (before ijson builds the item, whose cost grows with the
square of the depth), and an escape of half a UTF-16 surrogate pair (``"\\udc00"``: a JavaScript string cut inside
an emoji) becomes ``\\ufffd``, the same six bytes and one character, so the text reads and its offsets stay.

Both scans run over whole chunks with ``bytes`` methods and regular expressions (no Python loop per byte), so a
large export costs about what the parser costs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

import numpy as np

from core import limits
from core.types import ReportLensError

# a \uXXXX surrogate escape after an even number of backslashes (an odd number escapes the backslash itself)
_SURROGATE = re.compile(rb"(?<!\\)((?:\\\\)*)(\\u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
                        rb"|\\u[dD][c-fC-F][0-9a-fA-F]{2})")
_HIGH = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}")
_REPLACEMENT = rb"\ufffd"
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.S)  # the rest of a string, up to its closing quote
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # one complete string
_BRACKET_OUTSIDE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|([\[\]{}])', re.S)
_KEEP_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # what bytes.translate deletes to keep brackets
_HOLD_BACK = 12  # bytes of a surrogate pair escape that may straddle two chunks


def _tail_cut(data: bytes) -> int:
    """Where the run of backslashes nearest the end of ``data`` starts, when it is close enough to the end to begin
    an escape that continues in the next read (``-1``: none)."""
    cut = data.rfind(b"\\", max(0, len(data) - _HOLD_BACK))
    if cut == -1:
        return -1
    while cut > 0 and data[cut - 1] == 0x5C:  # keep the whole run of backslashes together
        cut -= 1
    if cut >= 6 and _HIGH.fullmatch(data, cut - 6, cut):  # the low half may follow: keep the pair together
        cut -= 6
        while cut > 0 and data[cut - 1] == 0x5C:
            cut -= 1
    return cut


class _Reader(Protocol):
    offset: int

    def read(self, size: int = ...) -> bytes: ...


class JsonGuard:
    """A binary reader over ``inner`` (a :class:`~core.formats.report.Utf8Reader`) for ijson.

    ``offset`` counts the bytes handed on; ``lone_surrogates`` the escapes replaced, ``first_surrogate`` the first
    one (its escape and line)."""

    def __init__(self, inner: _Reader, path: Path) -> None:
        self._inner, self._path = inner, path
        self._pending = b""
        self._max_depth = limits.MAX_JSON_DEPTH.value
        self.depth = 0
        self._outside_from = 0  # where the part of the chunk outside strings begins
        self._in_string = False
        self._escape = False  # the previous chunk ended inside a string on a backslash
        self.offset = getattr(inner, "offset", 0)
        self.lines = 0
        self.lone_surrogates = 0
        self.first_surrogate: tuple[str, int] | None = None

    def read(self, size: int = 1 << 16) -> bytes:
        if size == 0:  # ijson probes the stream type with read(0)
            return b""
        data, self._pending = self._pending, b""
        while more := self._inner.read(size):  # b"" only at the end of the file
            data += more
            cut = _tail_cut(data)
            if cut != 0:  # hand on what cannot be the start of an escape that the next read completes
                if cut > 0:
                    data, self._pending = data[:cut], data[cut:]
                break
        if b"\\u" in data:
            data = _SURROGATE.sub(self._replace_lone, data)
        self._scan_depth(data)
        self.offset += len(data)
        self.lines += data.count(b"\n")
        return data

    def _replace_lone(self, m: re.Match[bytes]) -> bytes:
        if len(m.group(2)) == 12:  # a high surrogate and its low half: a real astral character
            return m.group(0)
        self.lone_surrogates += 1
        if self.first_surrogate is None:
            line = self.lines + m.string[: m.start(2)].count(b"\n") + 1
            self.first_surrogate = (m.group(2).decode("ascii"), line)
        return m.group(1) + _REPLACEMENT

    def _scan_depth(self, data: bytes) -> None:
        pos, n = 0, len(data)
        if self._escape and n:
            pos, self._escape = 1, False
        if self._in_string:  # the rest of a string begun in an earlier chunk
            end = _STRING_REST.match(data, pos).end()  # type: ignore[union-attr]
            if end >= n or data[end] == 0x5C:  # still inside it (a backslash at the very end escapes the next byte)
                self._escape = end < n
                return
            self._in_string, pos = False, end + 1
        # outside strings: drop every complete string at once; a quote left over opens one that the next chunk ends
        outside = _STRING.sub(b"", data[pos:])
        quote = outside.find(b'"')
        self._outside_from = pos
        self._brackets(outside, 0, len(outside) if quote == -1 else quote, data)
        if quote != -1:
            self._in_string = True
            tail = outside[quote + 1 :]
            end = _STRING_REST.match(tail).end()  # type: ignore[union-attr]
            self._escape = end < len(tail)  # it ends on a backslash

    def _brackets(self, data: bytes, start: int, stop: int, chunk: bytes) -> None:
        segment = data[start:stop]
        brackets = segment.translate(None, _KEEP_BRACKETS)
        if not brackets:
            return
        opens = brackets.count(b"[") + brackets.count(b"{")
        if self.depth + opens <= self._max_depth:
            self.depth = max(0, self.depth + 2 * opens - len(brackets))
            return
        steps = np.cumsum(np.where(np.frombuffer(brackets, np.uint8) & 2, 1, -1))  # "[" 0x5B and "{" 0x7B have bit 2
        if self.depth + int(steps.min()) >= 0 and self.depth + int(steps.max()) <= self._max_depth:
            self.depth += int(steps[-1])  # never below 0 nor past the limit: the common case, in one pass
            return
        for k, byte in enumerate(brackets):  # rare: walk the brackets alone to see whether the limit is crossed
            if byte in b"[{":
                self.depth += 1
                if self.depth > self._max_depth:
                    self._too_deep(chunk, k)
            else:
                self.depth = max(0, self.depth - 1)

    def _too_deep(self, chunk: bytes, k: int) -> None:
        """Raise for the ``k``-th bracket (outside strings) of ``chunk``, naming its byte and line."""
        at = -1
        for m in _BRACKET_OUTSIDE.finditer(chunk, self._outside_from):  # only on the error path
            if m.group(1):
                k -= 1
                if k < 0:
                    at = m.start(1)
                    break
        line = self.lines + chunk[: max(at, 0)].count(b"\n") + 1
        lim = limits.MAX_JSON_DEPTH
        where = f"at byte {self.offset + at:,}, line {line}" if at >= 0 else f"line {line}"
        raise ReportLensError(
            f"{self._path.name} nests lists and objects more than {lim.value} levels deep ({where}); {lim.hint()}. "
            "A Label Studio export needs about 7: the file is not an export, or a task's data holds a deeply nested "
            "value; remove it and export again."
        )
