"""Checking one region's character offsets against its document, and re-anchoring it when the text moved.

Label Studio stores ``start``/``end`` and (usually) the selected ``text``. When the two disagree, the text is
searched for near the offsets; a nearby copy fixes the offsets, otherwise the region is reported and skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.types import Issue, Span, SpanError, check_span, snippet

MIN_WINDOW = 50
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # characters JavaScript counts as two


@dataclass(frozen=True)
class Checked:
    """Result of checking one region: the offsets to use (``None`` when skipped), an issue, and whether repaired."""

    offsets: tuple[int, int] | None
    issue: Issue | None = None
    repaired: bool = False


def as_offset(value: object) -> int | None:
    """``value`` as an int offset, accepting integral floats (``12.0``); ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _nearest(candidates: list[tuple[int, int]], start: int) -> tuple[int, int] | None:
    return min(candidates, key=lambda c: (abs(c[0] - start), c[0])) if candidates else None


def _find_exact(text: str, needle: str, lo: int, hi: int) -> list[tuple[int, int]]:
    out = []
    i = text.find(needle, lo, hi)
    while i != -1:
        out.append((i, i + len(needle)))
        i = text.find(needle, i + 1, hi)
    return out


def _find_loose(text: str, needle: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """Matches of ``needle`` where any run of whitespace may differ (newline vs space, doubled spaces)."""
    words = needle.split()
    if not words:
        return []
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    return [(m.start(), m.end()) for m in pattern.finditer(text, lo, hi)]


def _utf16_to_index(text: str, unit: int) -> int | None:
    """Python index of the character at UTF-16 code unit ``unit`` (JavaScript counts astral characters twice)."""
    units = 0
    for i, ch in enumerate(text):
        if units == unit:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text) if units == unit else None


def _from_utf16(text: str, start: int, end: int, wanted: str) -> tuple[int, int] | None:
    if text.isascii() or not _ASTRAL.search(text):
        return None
    s, e = _utf16_to_index(text, start), _utf16_to_index(text, end)
    if s is None or e is None or text[s:e] != wanted:
        return None
    return (s, e)


def reanchor(text: str, start: int, end: int, wanted: str) -> tuple[tuple[int, int], str] | None:
    """Where ``wanted`` really is near ``start``, and how it was found; ``None`` when it is not nearby."""
    utf16 = _from_utf16(text, start, end, wanted)
    if utf16:
        return utf16, "reading the offsets as UTF-16 code units (the text has characters outside the BMP)"
    window = max(MIN_WINDOW, 2 * len(wanted))
    lo, hi = max(0, start - window), min(len(text), start + len(wanted) + window)
    found = _nearest(_find_exact(text, wanted, lo, hi), start)
    if found:
        return found, "finding the text nearby"
    found = _nearest(_find_loose(text, wanted, lo, hi), start)
    if found:
        return found, "finding the text nearby (ignoring differences in whitespace)"
    return None


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    return start + len(piece) - len(piece.lstrip()), end - len(piece) + len(piece.rstrip())


def _issue(
    level: str,
    code: str,
    message: str,
    ref: str,
    span: tuple[int, int, str] | None = None,
    text: str = "",
    at: tuple[int, int] | None = None,
) -> Issue:
    where = at or (span[:2] if span else None)
    return Issue(
        level,
        code,
        message,
        task=ref,
        span=span,  # type: ignore[arg-type]
        snippet=snippet(text, *where) if where and text else None,
    )


def check_region(text: str, start: object, end: object, label: str, wanted: object, ref: str) -> Checked:
    """Validate ``[start, end)`` of a region labelled ``label`` in ``text``; ``wanted`` is Label Studio's ``text``.

    ``ref`` names the task in messages ("Task 812").
    """
    s, e = as_offset(start), as_offset(end)
    if s is None or e is None:
        message = (
            f"{ref}: span ({start!r}, {end!r}, {label!r}) has offsets that are not integers; span skipped. "
            "Label Studio writes character offsets as whole numbers: redraw the region or re-export the task."
        )
        return Checked(None, _issue("error", "offset_not_integer", message, ref))
    try:
        check_span(text, Span(s, e, label))
    except SpanError as exc:
        code = "empty_span" if 0 <= s and e <= len(text) else "offset_out_of_range"
        return Checked(None, _issue("error", code, f"{ref}: {exc} Span skipped.", ref, (s, e, label), text))
    if not isinstance(wanted, str) or text[s:e] == wanted:
        return Checked((s, e))
    return _mismatch(text, s, e, label, wanted, ref)


def _mismatch(text: str, s: int, e: int, label: str, wanted: str, ref: str) -> Checked:
    span, found_text = (s, e, label), text[s:e]
    head = (
        f"{ref}: span ({s}, {e}, {label!r}) text {wanted!r} does not match the document at those offsets "
        f"({found_text!r})"
    )
    if found_text.strip() and found_text.strip() == wanted.strip():
        if found_text == found_text.strip():
            return Checked((s, e))
        ns, ne = _trimmed(text, s, e)
        message = f"{head}, only in leading/trailing whitespace; trimmed to ({ns}, {ne})."
        return Checked((ns, ne), _issue("warning", "offset_trimmed", message, ref, span, text), repaired=True)
    found = reanchor(text, s, e, wanted)
    if found:
        (ns, ne), how = found
        message = f"{head}; re-anchored to ({ns}, {ne}) by {how}."
        issue = _issue("warning", "offset_repaired", message, ref, span, text, at=(ns, ne))
        return Checked((ns, ne), issue, repaired=True)
    message = (
        f"{head}, and that text was not found within {max(MIN_WINDOW, 2 * len(wanted))} characters; span "
        "skipped. Fix the region in Label Studio (the task text may have been edited after labeling) and export "
        "again."
    )
    return Checked(None, _issue("error", "offset_mismatch", message, ref, span, text))
