"""Checking one region's character offsets against its document, and re-anchoring it when the text moved.

Label Studio stores ``start``/``end`` and (usually) the selected ``text``. When the two disagree, the text is
searched for near the offsets; a nearby copy fixes the offsets, otherwise the region is reported and skipped.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from core.errors import IssueCode
from core.types import Issue, snippet

MIN_WINDOW = 50
INT64 = 2**63  # ids and offsets are stored as 64-bit integers
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # characters JavaScript counts as two


@dataclass(frozen=True)
class Checked:
    """Result of checking one region: the offsets to use (``None`` when skipped), an issue, and whether repaired."""

    offsets: tuple[int, int] | None
    issue: Issue | None = None
    repaired: bool = False


def as_offset(value: object) -> int | None:
    """``value`` as an int offset, accepting integral floats (``12.0``); ``None`` for anything else, and for numbers
    past 64 bits (``1e300`` is integral, but no database column holds it)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and -INT64 <= value < INT64:
        return value
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


@lru_cache(maxsize=8)
def _astral_ends(text: str) -> tuple[int, ...]:
    """For the k-th astral character of ``text``, the UTF-16 unit where it ends (its index + k + 2); found once per
    text (the cache holds the last few texts: one task's spans are checked one after another)."""
    if text.isascii():
        return ()
    return tuple(m.start() + k + 2 for k, m in enumerate(_ASTRAL.finditer(text)))


def _utf16_to_index(text: str, unit: int) -> int | None:
    """Python index of the character at UTF-16 code unit ``unit`` (JavaScript counts astral characters twice);
    ``None`` past the end or inside an astral character. A bisection, not a walk from the start."""
    ends = _astral_ends(text)
    k = bisect_right(ends, unit)  # astral characters wholly before ``unit``
    if k < len(ends) and ends[k] - 2 < unit:  # ``unit`` is the second half of the next one
        return None
    index = unit - k
    return index if 0 <= index <= len(text) else None


def _from_utf16(text: str, start: int, end: int, wanted: str) -> tuple[int, int] | None:
    if not _astral_ends(text):
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
    window = search_window(wanted)
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


# How to fix each offset problem of a Label Studio region; other formats pass their own ``fix``.
LS_FIXES = {
    IssueCode.OFFSET_NOT_INTEGER: "Label Studio writes character offsets as whole numbers: redraw the region or "
    "re-export the task.",
    IssueCode.EMPTY_SPAN: "Delete or redraw the region.",
    IssueCode.OFFSET_OUT_OF_RANGE: "Fix the offsets in Label Studio or re-export the task.",
    IssueCode.OFFSET_MISMATCH: "Fix the region in Label Studio (the task text may have been edited after labeling) "
    "and export again.",
}


def search_window(wanted: str) -> int:
    """How far from its offsets a span's text is looked for (characters, either side)."""
    return max(MIN_WINDOW, 2 * len(wanted))


def offsets_problem(length: int, start: int, end: int) -> IssueCode | None:
    """Why ``[start, end)`` cannot be a span of a text of ``length`` characters, or ``None`` when it can."""
    if 0 <= start < end <= length:
        return None
    return IssueCode.EMPTY_SPAN if 0 <= start and end <= length else IssueCode.OFFSET_OUT_OF_RANGE


def span_issue(
    code: IssueCode,
    ref: str,
    span: tuple[int, int, str],
    text: str = "",
    at: tuple[int, int] | None = None,
    **fields: object,
) -> Issue:
    """An issue about ``span`` of task ``ref``; ``where`` (default ``ref``) names it in the message, the snippet
    shows ``at`` (default the span) when the text is given."""
    start, end, label = span
    shown = at or (start, end)
    ok = all(isinstance(x, int) for x in shown)
    fields = {"where": ref, **fields}
    return Issue.of(
        code,
        task=ref,
        span=span if ok else None,
        snippet=snippet(text, *shown) if ok and text else None,  # type: ignore[arg-type]
        start=start,
        end=end,
        label=label,
        length=len(text),
        **fields,
    )


def check_region(
    text: str, start: object, end: object, label: str, wanted: object, ref: str, *,
    where: str | None = None, fix: str | None = None,
) -> Checked:
    """Validate ``[start, end)`` of a region labelled ``label`` in ``text``; ``wanted`` is the region's text as the
    annotation tool stored it (Label Studio's ``text``), ``None`` when it has none.

    ``ref`` names the task ("Task 812"); ``where`` names the region in messages (default ``ref``); ``fix`` replaces
    the Label Studio advice (:data:`LS_FIXES`) for formats with their own.
    """
    named = {"where": where or ref}
    s, e = as_offset(start), as_offset(end)
    if s is None or e is None:
        code = IssueCode.OFFSET_NOT_INTEGER
        issue = span_issue(code, ref, (start, end, label), fix=fix or LS_FIXES[code], **named)  # type: ignore[arg-type]
        return Checked(None, issue)
    problem = offsets_problem(len(text), s, e)
    if problem == IssueCode.OFFSET_OUT_OF_RANGE and isinstance(wanted, str) and _from_utf16(text, s, e, wanted):
        return _mismatch(text, (s, e, label), wanted, ref, fix, named)  # past the end only when counted in UTF-16
    if problem:
        return Checked(None, span_issue(problem, ref, (s, e, label), text, fix=fix or LS_FIXES[problem], **named))
    if not isinstance(wanted, str) or text[s:e] == wanted:
        return Checked((s, e))
    return _mismatch(text, (s, e, label), wanted, ref, fix, named)


def _mismatch(text: str, span: tuple[int, int, str], wanted: str, ref: str, fix: str | None,
              named: dict[str, str]) -> Checked:
    s, e, _ = span
    found_text = text[s:e]
    common = {"wanted": wanted, "found": found_text, **named}
    if found_text.strip() and found_text.strip() == wanted.strip():
        if found_text == found_text.strip():
            return Checked((s, e))
        ns, ne = _trimmed(text, s, e)
        issue = span_issue(IssueCode.OFFSET_TRIMMED, ref, span, text, new_start=ns, new_end=ne, **common)
        return Checked((ns, ne), issue, repaired=True)
    found = reanchor(text, s, e, wanted)
    if found:
        (ns, ne), how = found
        issue = span_issue(IssueCode.OFFSET_REPAIRED, ref, span, text, at=(ns, ne), new_start=ns, new_end=ne,
                           how=how, **common)
        return Checked((ns, ne), issue, repaired=True)
    code = IssueCode.OFFSET_MISMATCH
    issue = span_issue(code, ref, span, text, window=search_window(wanted), fix=fix or LS_FIXES[code], **common)
    return Checked(None, issue)
