"""The bytes of a JSON export on their way to the streaming parser, made safe: nesting deeper than
:data:`core.limits.MAX_JSON_DEPTH` is refused while streaming (before ijson builds the item, whose cost grows with the
square of the depth), and an escape of half a UTF-16 surrogate pair (``"\\udc00"``: a JavaScript string cut inside
an emoji) becomes ``\\ufffd``, the same six bytes and one character, so the text reads and its offsets stay.

Both scans run over whole chunks with ``bytes`` methods and numpy (no Python loop per byte, no regular expression
over clean text): the depth scan keeps only the quotes and brackets (``bytes.translate``, after dropping escaped
backslashes and quotes) and tells strings from structure by the parity of the quotes; the surrogate regex runs only
on a chunk that holds a ``\\ud``/``\\uD`` escape. Together they cost about a tenth of the parse
(``bench/README.md``).
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
_KEEP_MARKS = bytes(range(256)).translate(None, b'"[]{}')  # what bytes.translate deletes to keep quotes, brackets
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
        self._in_string = False  # the previous chunk ended inside a string
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
        if b"\\ud" in data or b"\\uD" in data:  # a surrogate escape at all (rare: astral characters, emoji)
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
        # Escapes first: a pair of backslashes is one character, and a backslash before a quote keeps the string
        # open; left to right, as the parser reads them. (A chunk never ends inside a run of backslashes: read()
        # holds those back.) What is left between quotes is string, the brackets elsewhere are structure.
        start_inside = self._in_string
        flat = data.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in data else data
        marks = flat.translate(None, _KEEP_MARKS)  # the quotes and brackets, in order
        if not marks:
            return
        arr = np.frombuffer(marks, np.uint8)
        quote = arr == 0x22
        inside = (np.cumsum(quote) & 1).astype(bool) ^ start_inside  # a bracket after an odd number of quotes
        self._in_string = start_inside ^ bool(int(quote.sum()) & 1)
        brackets = arr[~quote & ~inside]
        if brackets.size:
            self._brackets(brackets, data, start_inside)

    def _brackets(self, brackets: np.ndarray, chunk: bytes, start_inside: bool) -> None:
        steps = np.where(brackets & 2, 1, -1)  # "[" 0x5B and "{" 0x7B have bit 2, "]" 0x5D and "}" 0x7D not
        opens = int((steps > 0).sum())
        if self.depth + opens <= self._max_depth:
            self.depth = max(0, self.depth + 2 * opens - int(brackets.size))
            return
        walk = np.cumsum(steps)
        if self.depth + int(walk.min()) >= 0 and self.depth + int(walk.max()) <= self._max_depth:
            self.depth += int(walk[-1])  # never below 0 nor past the limit: the common case, in one pass
            return
        for k, step in enumerate(steps.tolist()):  # rare: walk the brackets alone to see whether the limit is crossed
            if step > 0:
                self.depth += 1
                if self.depth > self._max_depth:
                    self._too_deep(chunk, k, start_inside)
            else:
                self.depth = max(0, self.depth - 1)

    def _too_deep(self, chunk: bytes, k: int, inside: bool) -> None:
        """Raise for the ``k``-th bracket (outside strings) of ``chunk``, naming its byte and line."""
        at, escape = -1, False
        for pos, byte in enumerate(chunk):  # byte by byte, only on the error path (one chunk)
            if inside:
                if escape:
                    escape = False
                elif byte == 0x5C:
                    escape = True
                elif byte == 0x22:
                    inside = False
            elif byte == 0x22:
                inside = True
            elif byte in b"[]{}":
                k -= 1
                if k < 0:
                    at = pos
                    break
        line = self.lines + chunk[: max(at, 0)].count(b"\n") + 1
        lim = limits.MAX_JSON_DEPTH
        where = f"at byte {self.offset + at:,}, line {line}" if at >= 0 else f"line {line}"
        raise ReportLensError(
            f"{self._path.name} nests lists and objects more than {lim.value} levels deep ({where}); {lim.hint()}. "
            "A Label Studio export needs about 7: the file is not an export, or a task's data holds a deeply nested "
            "value; remove it and export again."
        )
