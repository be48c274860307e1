"""Negation and uncertainty cues (English, German, Chinese) attached to the entities they scope, NegEx-style.

Policy (the tests pin each point):

- A **cue** is a phrase from :data:`CUES`; at one position the longest cue wins, so "cannot rule out" (uncertain)
  is not read as "rule out", "nicht auszuschliessen" not as "nicht", "不能排除" not as "排除". Pseudo-cues ("no
  change", "not only") consume their words and do nothing.
- Kinds: ``negated`` ("no", "without", "no evidence of", "ruled out", "未见", "无", "kein", "ohne") and
  ``uncertain`` ("possible", "probable", "suspected", "cannot exclude", "rule out" — a plan to exclude, not a
  result —, "可能", "考虑", "疑似", "不除外", "verdacht auf", "möglich").
- Direction: a **pre** cue scopes forward, a **post** cue ("ruled out", "excluded", "möglich", "待排") backward; a
  cue listed as both ("可能") is post when an entity ends right before it, else pre.
- Scope is clause-bounded: it never crosses a sentence end (". " ; ! ? 。 ； : newline), a terminator ("but",
  "however", "except", "aber", "jedoch", "sonst", "但", "但是", "然而") or a Chinese comma "，". Within that, a pre cue
  scopes the first entity after it (at most :data:`PRE_WINDOW` words away, a CJK character counting half a word)
  and each following entity joined to the previous one by a coordinator ("or", "and", "nor", ",", "/", "oder",
  "und", "或", "及", "和", "、"), so "no ST elevation or Q waves" negates both, while German reports without
  punctuation ("verdacht auf p-sinistrocardiale linkstyp ...") do not spread the cue over every later statement.
  A post cue scopes the nearest entity before it (at most :data:`POST_WINDOW` words away) and the entities
  coordinated with it.
- Measurements (heart rate, intervals, anything with a numeric ``value``) and cue entities are never negated.

:func:`annotate` sets ``attrs["negated"]`` / ``attrs["uncertain"]`` (always both, ``True``/``False``) and, when
set, ``attrs["negation_cue"]`` / ``attrs["uncertainty_cue"]`` = ``[start, end, cue text]`` on any entities, model
entities included.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from core.types import Entity

PRE_WINDOW = 6.0
POST_WINDOW = 3.0
NOT_NEGATABLE = frozenset({"HEART_RATE", "PR_INTERVAL", "QRS_DURATION", "QT_INTERVAL", "QTC_INTERVAL", "INTERVAL",
                           "NEGATION", "UNCERTAINTY"})

Kind = Literal["negated", "uncertain", "pseudo"]
Direction = Literal["pre", "post", "both"]

# (kind, direction) -> cues; matched case-insensitively, Latin cues bounded by non-letters
_CUE_TABLE: dict[tuple[Kind, Direction], tuple[str, ...]] = {
    ("negated", "pre"): (
        "no", "not", "without", "no evidence of", "no evidence for", "no sign of", "no signs of", "negative for",
        "absence of", "free of", "no longer", "no new",
        "kein", "keine", "keinen", "keiner", "ohne", "nicht", "kein hinweis auf", "kein anhalt für",
        "未见", "未见明显", "未发现", "无", "无明显", "没有", "否认", "已排除"),
    ("negated", "post"): (
        "has been ruled out", "is ruled out", "excluded", "is absent", "are absent", "not seen", "not present",
        "ausgeschlossen", "nicht nachweisbar", "阴性"),
    ("negated", "both"): ("ruled out",),
    ("uncertain", "pre"): (
        "possible", "possibly", "probable", "probably", "likely", "suspected", "suspect", "suspicious for",
        "suggestive of", "suggesting", "suggests", "consider", "cannot exclude", "can not exclude",
        "cannot rule out", "can not rule out", "rule out", "r/o", "questionable", "may be", "may represent",
        "borderline", "versus",
        "verdacht auf", "v.a.", "wahrscheinlich", "möglicherweise", "eventuell", "evtl.",
        "考虑", "疑似", "疑为", "可疑", "需排除", "倾向"),
    ("uncertain", "post"): (
        "cannot be excluded", "cannot be ruled out", "not excluded", "not ruled out", "is possible", "uncertain",
        "möglich", "mögl.", "nicht auszuschliessen", "nicht auszuschließen", "nicht sicher auszuschliessen",
        "nicht ausgeschlossen",
        "待排", "待排除", "可能性大"),
    ("uncertain", "both"): ("fraglich", "可能", "不除外", "不能排除"),
    ("pseudo", "pre"): ("no further", "no change", "no significant change", "no interval change", "not only",
                        "nicht nur", "无变化"),
}
CUES: tuple[tuple[str, Kind, Direction], ...] = tuple(
    (cue, kind, direction) for (kind, direction), cues in _CUE_TABLE.items() for cue in cues)
TERMINATORS = ("but", "however", "although", "though", "except", "apart from", "aside from", "whereas", "yet",
               "aber", "jedoch", "allerdings", "sonst", "但", "但是", "然而", "而")
COORDINATORS = ("or", "and", "nor", "and/or", "oder", "und", "bzw.", "或", "及", "和", "或者", "与", "以及",
                "、", ",", "/", "&")

_LATIN = "A-Za-zÀ-ÖØ-öø-ÿ"
_BOUNDARY = re.compile(r"[;!?。；！？:：\n，]|\.(?=\s|$)")
_TOKEN = re.compile(rf"[{_LATIN}0-9]+|[\u3400-\u9fff]")


def _bounded(phrase: str) -> str:
    body = r"\s+".join(re.escape(w) for w in phrase.split())
    if re.match(f"[{_LATIN}]", phrase):
        body = f"(?<![{_LATIN}]){body}"
    if re.search(f"[{_LATIN}]$", phrase):
        body = f"{body}(?![{_LATIN}])"
    return body


def _alternation(phrases: Sequence[str]) -> re.Pattern[str]:
    """Longest first, grouped by first character behind a lookahead (the same matches as one flat alternation:
    only one group's phrases can start at a position, in the same order; but one group tried per position)."""
    groups: dict[str, list[str]] = {}
    for p in sorted(set(phrases), key=lambda p: (-len(p), p)):
        groups.setdefault(p.split()[0][0], []).append(_bounded(p))
    return re.compile("|".join(f"(?={re.escape(ch)})(?:{'|'.join(ps)})" for ch, ps in groups.items()), re.I)


_CUE_RE = _alternation([c for c, _, _ in CUES])
_CUE_INFO = {c.casefold(): (k, d) for c, k, d in CUES}
_TERM_RE = _alternation(TERMINATORS)
_TERM_AT = re.compile(f"(?=({_TERM_RE.pattern}))", re.I)  # every start, overlapping too
_COORD_RE = re.compile(r"^[\s,、/&]*(?:" + "|".join(_bounded(c) for c in sorted(COORDINATORS, key=len, reverse=True))
                       + r")?[\s,、/&]*$", re.I)


@dataclass(frozen=True)
class Cue:
    start: int
    end: int
    text: str
    kind: Kind
    direction: Direction


def find_cues(text: str) -> list[Cue]:
    out = []
    for m in _CUE_RE.finditer(text):
        kind, direction = _CUE_INFO[re.sub(r"\s+", " ", m.group()).casefold()]
        out.append(Cue(m.start(), m.end(), m.group(), kind, direction))
    return out


def _weight(s: str, cap: float = float("inf")) -> float:
    """Words in ``s``: a Latin word or number counts 1, a CJK character 1/2 (counting stops once past ``cap``)."""
    total = 0.0
    for m in _TOKEN.finditer(s):
        t = m.group()
        total += 0.5 if len(t) == 1 and "\u3400" <= t <= "\u9fff" else 1.0
        if total > cap:
            break
    return total


class _Clauses:
    """Where clauses end in one text, found once (each cue then looks them up by bisection, so a long report costs
    linear time): the start of every sentence end (:data:`_BOUNDARY`) and of every terminator match."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.boundaries = [m.start() for m in _BOUNDARY.finditer(text)]  # one character each
        # every position where a terminator matches (overlapping ones too), as ``_TERM_RE.search(text, pos)`` sees it
        self.terms = [(m.start(), m.end(1)) for m in _TERM_AT.finditer(text)]
        self.term_starts = [s for s, _ in self.terms]

    def end(self, pos: int) -> int:
        """Where the clause holding ``pos`` ends: the next sentence end or terminator at or after ``pos``."""
        ends = []
        b = bisect_left(self.boundaries, pos)
        if b < len(self.boundaries):
            ends.append(self.boundaries[b])
        t = bisect_left(self.term_starts, pos)
        if t < len(self.term_starts):
            ends.append(self.term_starts[t])
        return min(ends, default=len(self.text))

    def start(self, pos: int) -> int:
        """Where the clause holding ``pos`` starts: after the last sentence end, then after the last terminator,
        before ``pos``."""
        start = 0
        if pos >= 1 and self.text[pos - 1] == ".":  # a full stop right before pos ends a sentence there
            start = pos
        else:
            b = bisect_left(self.boundaries, pos) - 1  # boundaries are one character: it ends at b + 1 <= pos
            if b >= 0:
                start = self.boundaries[b] + 1
        lo = bisect_left(self.term_starts, start)
        hi = bisect_left(self.term_starts, pos)
        ends = [e for _, e in self.terms[lo:hi] if e <= pos]
        return max(ends, default=start)


def _coordinated(between: str) -> bool:
    return bool(_COORD_RE.match(between)) and bool(between.strip())


def _negatable(e: Entity) -> bool:
    value = e.attrs.get("value")
    return e.label not in NOT_NEGATABLE and "measure" not in e.attrs and not isinstance(value, int | float)


def _free_cues(cues: Sequence[Cue], entities: Sequence[Entity], order: list[int], starts: list[int]) -> list[Cue]:
    """The cues that overlap no negatable entity (``order``: their indices sorted by start, ``starts`` theirs)."""
    max_end: list[int] = []  # max_end[k]: the furthest end among the first k + 1 entities by start
    for i in order:
        max_end.append(max(entities[i].end, max_end[-1] if max_end else entities[i].end))
    out = []
    for c in cues:
        k = bisect_left(starts, c.end)  # entities starting before the cue ends
        if k == 0 or max_end[k - 1] <= c.start:
            out.append(c)
    return out


def scopes(text: str, entities: Sequence[Entity], cues: Sequence[Cue] | None = None) -> list[tuple[Cue, list[int]]]:
    """Each effective cue with the indices (into ``entities``) it scopes. Cues inside a negatable entity ("Possible"
    in a statement that the lexicon already names) are ignored; cue entities (NEGATION, UNCERTAINTY) do not block.

    Linear in the text: clause ends are found once (:class:`_Clauses`) and entities by bisection."""
    cues = find_cues(text) if cues is None else cues
    order = sorted((i for i, e in enumerate(entities) if _negatable(e)), key=lambda i: entities[i].start)
    starts = [entities[i].start for i in order]
    cues = _free_cues(cues, entities, order, starts)
    clauses = _Clauses(text)
    out = []
    for cue in cues:
        if cue.kind == "pseudo":
            continue
        # no entity overlaps the cue, so those starting before it end before it, and the others start after it
        n_before = bisect_left(starts, cue.start)
        first_after = bisect_left(starts, cue.end)
        direction = cue.direction
        if direction == "both":
            last = order[n_before - 1] if n_before else None
            near = last is not None and _weight(text[entities[last].end : cue.start], cap=1) < 1 and \
                clauses.start(cue.start) <= entities[last].start
            direction = "post" if near else "pre"
        hit: list[int] = []
        if direction == "pre":
            end = clauses.end(cue.end)
            cand = []
            for j in range(first_after, len(order)):  # never order[first_after:]: a copy per cue is quadratic
                i = order[j]
                if entities[i].start > end:
                    break
                if entities[i].end <= end:
                    cand.append(i)
            if cand and _weight(text[cue.end : entities[cand[0]].start], cap=PRE_WINDOW) <= PRE_WINDOW:
                hit = [cand[0]]
                for i in cand[1:]:
                    overlapping = entities[i].start < entities[hit[-1]].end  # a rival reading of the same words
                    if not overlapping and not _coordinated(text[entities[hit[-1]].end : entities[i].start]):
                        break
                    hit.append(i)
        else:
            start = clauses.start(cue.start)
            cand = order[bisect_left(starts, start) : n_before]
            if cand and _weight(text[entities[cand[-1]].end : cue.start], cap=POST_WINDOW) <= POST_WINDOW:
                hit = [cand[-1]]
                for i in reversed(cand[:-1]):
                    overlapping = entities[i].end > entities[hit[-1]].start
                    if not overlapping and not _coordinated(text[entities[i].end : entities[hit[-1]].start]):
                        break
                    hit.append(i)
        if hit:
            out.append((cue, sorted(hit)))
    return out


def annotate(text: str, entities: Sequence[Entity],
             found: Sequence[tuple[Cue, list[int]]] | None = None) -> list[Entity]:
    """The same entities (same order) with ``negated`` / ``uncertain`` flags and the cues that set them. ``found``:
    ``scopes(text, entities)`` when the caller has it already (the flags do not change what scopes finds)."""
    flags: dict[int, dict[str, object]] = {}
    for cue, hit in scopes(text, entities) if found is None else found:
        key = "negated" if cue.kind == "negated" else "uncertain"
        for i in hit:
            f = flags.setdefault(i, {})
            if key not in f:  # the nearest cue (found first for pre cues) is recorded
                f[key] = True
                f[f"{'negation' if key == 'negated' else 'uncertainty'}_cue"] = [cue.start, cue.end, cue.text]
    out = []
    for i, e in enumerate(entities):
        if not _negatable(e):
            out.append(e)
            continue
        attrs = {**e.attrs, "negated": False, "uncertain": False, **flags.get(i, {})}
        out.append(Entity(e.start, e.end, e.label, e.score, e.source, attrs))  # not dataclasses.replace: 3x the cost
    return out
