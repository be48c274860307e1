"""Clinician review, the pure part: snapping a character range to token boundaries, applying one review decision to
the reviewed spans of a report, and telling which suggested entities still wait for a decision.

No database, no tokenizer here: offsets come from ``training.encoding.tokenize_documents`` (the one place the
tokenizer is asked for them), decisions and spans are plain data, so every rule tests in milliseconds.

Rules:

* **Snapping.** A range chosen by a reviewer is first stripped of surrounding whitespace, then grown to the boundaries
  of every token it touches (a range ending inside ``bradycardia`` ends where that token ends). A range that touches
  no token (only spaces, or outside the text) is an error that names the range and a snippet.
* **Reviewed spans** are the reviewer's assertions: accepted, relabelled, adjusted and added entities. A rejected
  entity is removed. Two reviewed spans may not overlap (training could keep only one of them): the decision that
  would make them overlap is refused with a message naming both.
* **Pending**: a suggested entity is pending while it is neither among the reviewed spans nor the ``before`` of an
  earlier decision by the same reviewer (a rejection, a relabel, an adjustment, a "no entity here").
* **Overlaps decide.** A pending suggestion that overlaps a reviewed span once a decision is applied (accepting one of
  two overlapping suggestions, correcting or adding an entity over it) is rejected as overlapping
  (:func:`overlapped_by`; :mod:`db.review` records the rejection), so nothing overlapping stays pending.
  ``accept_all`` accepts every pending suggestion; suggestions that overlap a reviewed span are rejected as
  overlapping; suggestions that overlap each other are the reviewer's choice, so ``accept_all`` refuses (naming them)
  until one of each group is accepted or rejected.
* **Finished**: a review is finished once no suggestion is pending and it holds at least one entity, or the reviewer
  confirmed "no entity here" (``no_entity``, refused while the review holds entities). Rejecting every suggestion
  without that confirmation leaves the review in progress: an empty review is a negative training example, so it
  must be said, not inferred (:func:`is_finished`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.types import Entity, ReportLensError, Span, snippet

ACTIONS = ("accept", "reject", "relabel", "adjust", "add", "accept_all", "no_entity")
Key = tuple[int, int, str]


def key_of(e: Entity | Span | dict) -> Key:
    """``(start, end, label)`` of an entity, a span or an entity dict (as stored in ``review_decisions``)."""
    if isinstance(e, dict):
        return (int(e["start"]), int(e["end"]), str(e["label"]))
    return (e.start, e.end, e.label)


def snap_to_tokens(text: str, offsets: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` grown to the boundaries of the tokens it touches (after trimming whitespace at its edges).

    ``offsets`` are the tokenizer's character offsets for ``text`` (special tokens, ``(0, 0)``, are ignored).
    Raises :class:`ReportLensError` when the range is empty, outside the text, or touches no token.
    """
    if not isinstance(start, int) or not isinstance(end, int):
        raise ReportLensError(f"Offsets must be whole numbers, got start={start!r}, end={end!r}.")
    if not 0 <= start < end <= len(text):
        raise ReportLensError(f"Range [{start}, {end}) is not inside the report (length {len(text)}): start must be "
                              "at least 0 and smaller than end, end at most the length.")
    s, e = start, end
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    tokens = sorted((a, b) for a, b in offsets if b > a)
    ends = [b for _, b in tokens]
    first = bisect_right(ends, s)  # first token ending after s
    touched = []
    for a, b in tokens[first:]:
        if a >= e:
            break
        if b > s:
            touched.append((a, b))
    if s == e or not touched:
        raise ReportLensError(f"Range [{start}, {end}) {snippet(text, start, end)!r} covers no word the model can "
                              "read (only spaces or punctuation it skips); widen it to include a word.")
    return min(a for a, _ in touched), max(b for _, b in touched)


def is_snapped(offsets: Sequence[tuple[int, int]], start: int, end: int) -> bool:
    """Whether ``[start, end)`` already starts and ends on token boundaries."""
    starts = sorted(a for a, b in offsets if b > a)
    ends = sorted(b for a, b in offsets if b > a)
    i, j = bisect_left(starts, start), bisect_left(ends, end)
    return i < len(starts) and starts[i] == start and j < len(ends) and ends[j] == end


def _overlapping(spans: Iterable[Span], new: Span, ignore: Key | None = None) -> Span | None:
    return next((s for s in spans if s.overlaps(new) and s.as_tuple() != ignore), None)


def _refuse_overlap(text: str, spans: Iterable[Span], new: Span, ignore: Key | None = None) -> None:
    other = _overlapping(spans, new, ignore)
    if other is not None:
        raise ReportLensError(
            f"{new.describe(text)} would overlap the reviewed {other.describe(text)}; training can use only one of "
            "them. Reject or adjust that one first.")


def apply_decision(text: str, spans: Sequence[Span], action: str, before: Entity | None = None,
                   after: Entity | None = None, pending: Sequence[Entity] = ()) -> tuple[list[Span], list[Entity]]:
    """The reviewed spans after one decision, and the entities it accepted (``accept_all``: each pending one).

    ``accept``: ``before`` joins the spans. ``reject``: ``before`` leaves them (if it was there). ``relabel`` /
    ``adjust``: ``before`` is replaced by ``after``. ``add``: ``after`` joins them. ``accept_all``: every entity of
    ``pending`` that overlaps no reviewed span joins them (those overlapping a reviewed span are left to
    :func:`overlapped_by`); refused when two of them overlap each other (the reviewer chooses) or when nothing would
    be accepted into an empty review (that is "no entity here"). ``no_entity``: refused while the review holds spans;
    the spans stay empty.
    """
    if action not in ACTIONS:
        raise ReportLensError(f"Unknown review action {action!r}; use one of {', '.join(ACTIONS)}.")
    current = list(dict.fromkeys(spans))
    needs_before = action in ("accept", "reject", "relabel", "adjust")
    if needs_before and before is None:
        raise ReportLensError(f"Review action {action!r} needs the entity it applies to.")
    if action in ("relabel", "adjust", "add") and after is None:
        raise ReportLensError(f"Review action {action!r} needs the corrected entity.")
    for e in (before, after):
        if e is not None and e.end > len(text):
            raise ReportLensError(f"Entity [{e.start}, {e.end}) {e.label!r} lies outside the report (length "
                                  f"{len(text)}); reload the report, it may have changed.")
    accepted: list[Entity] = []
    if action == "accept":
        assert before is not None
        if before.span not in current:
            _refuse_overlap(text, current, before.span)
            current.append(before.span)
        accepted.append(before)
    elif action == "reject":
        assert before is not None
        current = [s for s in current if s != before.span]
    elif action in ("relabel", "adjust"):
        assert before is not None and after is not None
        current = [s for s in current if s != before.span]
        if after.span not in current:
            _refuse_overlap(text, current, after.span)
            current.append(after.span)
        accepted.append(after)
    elif action == "add":
        assert after is not None
        if after.span not in current:
            _refuse_overlap(text, current, after.span)
            current.append(after.span)
        accepted.append(after)
    elif action == "no_entity":
        if current:
            names = "; ".join(s.describe(text) for s in sorted(current))
            raise ReportLensError(f"Your review holds {len(current)} entit{'y' if len(current) == 1 else 'ies'} "
                                  f"({names}): reject {'it' if len(current) == 1 else 'them'} first, or accept the "
                                  "report instead of confirming \"no entity here\".")
    else:  # accept_all
        fresh = [e for e in dict.fromkeys(pending) if e.span not in current and _overlapping(current, e.span) is None]
        groups = overlap_groups(fresh)
        if groups:
            raise ReportLensError(
                "Report not accepted: overlapping suggestions need your choice first: "
                + "; ".join(" / ".join(_describe(text, e) for e in g) for g in groups)
                + ". Accept the right one of each (the others are then rejected as overlapping), then accept the "
                "report.")
        if not current and not fresh:
            raise ReportLensError("Nothing to accept: the report has no entity and no suggestion is pending. If that "
                                  "is right, confirm it with \"No entity here\"; else add the missing entities.")
        for e in fresh:
            if e.span not in current:
                current.append(e.span)
                accepted.append(e)
    return sorted(current), accepted


def _describe(text: str, e: Entity) -> str:
    words = text[e.start:e.end]
    return f"{e.label} {(words if len(words) <= 60 else words[:57] + '...')!r} at [{e.start}, {e.end}) ({e.source})"


def overlap_groups(entities: Sequence[Entity]) -> list[list[Entity]]:
    """The entities that overlap one another, as groups (connected by overlap, in text order); lone ones left out."""
    ordered = sorted(dict.fromkeys(entities), key=key_of)
    groups: list[list[Entity]] = []
    end = -1
    for e in ordered:
        if groups and e.start < end:
            groups[-1].append(e)
            end = max(end, e.end)
        else:
            groups.append([e])
            end = e.end
    return [g for g in groups if len(g) > 1]


def overlapped_by(pending: Sequence[Entity], spans: Sequence[Span]) -> list[Entity]:
    """The pending suggestions a decision rejected as overlapping: those (not themselves reviewed) that overlap one
    of the reviewed ``spans``."""
    reviewed = set(spans)
    return [e for e in pending if e.span not in reviewed and _overlapping(spans, e.span) is not None]


def is_finished(was_finished: bool, was_empty: bool, spans: Sequence[Span], pending: int, action: str) -> bool:
    """Whether a review is finished (trains) after a decision.

    Finished when no suggestion is pending (once finished, suggestions of a later model version do not take that
    back) and the review holds an entity, or it is an empty review the reviewer confirmed: by this ``no_entity``
    decision, or earlier (a finished review that was empty already). Rejecting the last entity of a review does not
    make an empty review finished.
    """
    if pending and not was_finished:
        return False
    if spans:
        return True
    return action == "no_entity" or (was_finished and was_empty)


@dataclass(frozen=True)
class ReviewItem:
    """One line of a report under review: a suggestion (``entity``) and what the reviewer made of it.

    ``status``: ``pending`` (no decision yet), ``accepted`` (a reviewed span equals the suggestion), ``decided`` (the
    reviewer rejected or corrected it; the correction, if any, is its own item), ``reviewed`` (a reviewed span that is
    no suggestion: added or corrected by the reviewer).
    """

    entity: Entity
    status: str

    @property
    def in_review(self) -> bool:
        return self.status in ("accepted", "reviewed")


def review_items(candidates: Sequence[Entity], reviewed: Sequence[Span], decided: Iterable[Key]) -> list[ReviewItem]:
    """The suggestions and the reviewed spans of a report as one list in text order.

    ``decided``: the ``before`` keys of the reviewer's earlier decisions. Reviewed spans that match a suggestion keep
    its score and source; the others get source ``review`` and score 1.
    """
    done = set(decided)
    in_review = {s.as_tuple(): s for s in reviewed}
    items: list[ReviewItem] = []
    seen: set[Key] = set()
    for c in candidates:
        k = key_of(c)
        if k in seen:
            continue
        seen.add(k)
        if k in in_review:
            items.append(ReviewItem(c, "accepted"))
        else:
            items.append(ReviewItem(c, "decided" if k in done else "pending"))
    for k, s in in_review.items():
        if k not in seen:
            items.append(ReviewItem(Entity(s.start, s.end, s.label, 1.0, "review"), "reviewed"))
    return sorted(items, key=lambda it: (it.entity.start, it.entity.end, it.entity.label))


def pending_entities(candidates: Sequence[Entity], reviewed: Sequence[Span], decided: Iterable[Key]) -> list[Entity]:
    return [it.entity for it in review_items(candidates, reviewed, decided) if it.status == "pending"]
