"""core.formats.jsonguard's depth scan against a byte-by-byte reference: any JSON value (strings full of quotes,
backslashes and brackets included), read in chunks of any size, reaches exactly its true depth, and one level less
is refused at the byte of the first bracket past the limit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.formats.jsonguard import JsonGuard
from core.types import ReportLensError

TRICKY = st.lists(st.sampled_from(list('ab"\\[]{}\n') + ["\\u", "é", "😀"]), max_size=12).map("".join)
VALUES = st.recursive(st.none() | st.integers() | TRICKY,
                      lambda kids: st.lists(kids, max_size=3) | st.dictionaries(TRICKY, kids, max_size=3),
                      max_leaves=25)


def reference(data: bytes, limit: int) -> tuple[int, int]:
    """(deepest level, byte of the first bracket past ``limit`` or -1), reading like a JSON parser."""
    depth = deepest = 0
    first, inside, escape = -1, False, False
    for pos, byte in enumerate(data):
        if inside:
            if escape:
                escape = False
            elif byte == 0x5C:
                escape = True
            elif byte == 0x22:
                inside = False
        elif byte == 0x22:
            inside = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit and first == -1:
                first = pos
        elif byte in b"]}":
            depth -= 1
    return deepest, first


class Chunks:
    offset = 0

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def read(self, size: int = 65536) -> bytes:
        out, self.data = self.data[: self.size], self.data[self.size :]
        return out


def drain(data: bytes, size: int, path: Path) -> JsonGuard:
    guard = JsonGuard(Chunks(data, size), path)
    while guard.read(size):
        pass
    return guard


@settings(max_examples=150, deadline=None)
@given(value=VALUES, size=st.integers(1, 40), ascii_only=st.booleans())
def test_depth_scan_matches_a_byte_by_byte_reference(value: object, size: int, ascii_only: bool) -> None:
    data = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    path = Path("x.json")
    deepest, _ = reference(data, 10**9)
    os.environ["REPORTLENS_MAX_JSON_DEPTH"] = str(max(deepest, 1))
    try:
        assert drain(data, size, path).depth == 0
        if deepest >= 2:
            os.environ["REPORTLENS_MAX_JSON_DEPTH"] = str(deepest - 1)
            _, at = reference(data, deepest - 1)
            with pytest.raises(ReportLensError, match=f"at byte {at:,},"):
                drain(data, size, path)
    finally:  # hypothesis runs many examples per test: set and restore the setting by hand, not with monkeypatch
        del os.environ["REPORTLENS_MAX_JSON_DEPTH"]
