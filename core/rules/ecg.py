"""The rule-based ECG extractor: measurements and statements from ECG report text, as :class:`core.types.Entity`.

What it finds (English, German as in PTB-XL, Chinese):

- ``HEART_RATE``: ``HR 78 bpm``, ``rate 78/min``, ``心率78次/分``, ``70-80 bpm``, ``hf 140``. Span: the number(s)
  and unit. attrs: ``value`` (int; ``None`` for a range), ``range`` ``[low, high]``, ``unit`` "bpm", ``measure``
  "HR" or "atrial rate".
- ``PR_INTERVAL``, ``QRS_DURATION``, ``QT_INTERVAL``, ``QTC_INTERVAL``: ``PR 160 ms``, ``QRS duration 0.09 s``,
  ``QTc间期 440ms``, ``QT/QTc 380/420 ms``. Span: name, value and unit (in ``QT/QTc a/b`` each value alone). attrs:
  ``value`` in ms (``0.16 s`` -> 160, ``converted_from``), ``unit`` "ms", ``measure`` PR/QRS/QT/QTc.
- ``AXIS``: ``axis -30°``, ``电轴 +60°`` (attrs ``value`` in degrees, ``unit`` "deg"), or a statement: ``left axis
  deviation``, ``电轴左偏``, ``linkstyp`` (attrs ``axis``: the PTB-XL heart_axis code).
- ``RHYTHM``, ``CONDUCTION``, ``FINDING``: lexicon statements (``atrial fibrillation``, ``房颤``, ``vorhofflimmern``,
  ``RBBB``, ``ST段压低``). attrs: ``concept``, ``scp_code`` (PTB-XL SCP code where one exists), ``normal``.

Every entity has ``source="rule"``, ``attrs["rule"]`` (which rule fired) and a ``score`` that says how sure the rule
is of the match (a keyword and a unit: 0.95; one of them: 0.85; a bare ``/min``: 0.7; a lexicon term 0.9, an
abbreviation 0.75; an implausible value halves it and sets ``attrs["implausible"]``). Statements also carry
``negated`` / ``uncertain`` from :mod:`core.rules.negation`. Overlapping matches: the longest wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from core.rules.holter import holter_candidates, link_context
from core.rules.lexicon import DisjointSpans, Lexicon, default_lexicon
from core.rules.negation import annotate, scopes
from core.rules.statements import FORMULA_GROUP, formula_name, prt_axes
from core.types import Entity

RULE_LABELS = ("HEART_RATE", "PR_INTERVAL", "QRS_DURATION", "QT_INTERVAL", "QTC_INTERVAL", "AXIS", "RHYTHM",
               "CONDUCTION", "FINDING", "RR_INTERVAL", "EVENT", "COUNT", "TIME", "AMPLITUDE")
CUE_LABELS = ("NEGATION", "UNCERTAINTY")
MEASURE_LABELS = {"PR": "PR_INTERVAL", "QRS": "QRS_DURATION", "QT": "QT_INTERVAL", "QTc": "QTC_INTERVAL"}
PLAUSIBLE_MS = {"PR": (40, 500), "QRS": (30, 300), "QT": (150, 800), "QTc": (150, 800)}
PLAUSIBLE_BPM = (15, 350)

_LATIN = "A-Za-zÀ-ÖØ-öø-ÿ"
_FILLER = r"(?:\s*(?:[:：=]|\b(?:of|is|was|at|about|around|approx\.?|approximately|ca\.?|von|um)\b|约|为|大约|是))*\s*"
_NUM = r"\d{1,3}(?:[.,]\d+)?"
_RANGE_SEP = r"\s*(?:-|–|—|~|～|\bto\b|\bbis\b|至|到)\s*"

_HR_KEYS = (r"heart\s+rate|ventricular\s+rate|vent\.?\s+rate|v-rate|atrial\s+rate|pulse(?:\s+rate)?|rate|HR"
            r"|herzfrequenz|kammerfrequenz|frequenz|hf|心率|心室率|心房率|房率|室率")
_HR_UNITS = (r"bpm|b\.p\.m\.?|beats\s+per\s+minute|beats\s*/\s*min(?:ute)?|/\s*min(?:ute)?\b|per\s+minute|min-1"
             r"|1\s*/\s*min|schläge\s*/\s*min|次\s*/\s*分钟?|次\s*/\s*min|次每分|次")
_HR_WITH_KEY = re.compile(
    rf"(?<![{_LATIN}])(?P<key>{_HR_KEYS})(?![{_LATIN}]){_FILLER}(?P<a>\d{{2,3}})(?:{_RANGE_SEP}(?P<b>\d{{2,3}}))?"
    rf"(?:\s*(?P<unit>{_HR_UNITS}))?", re.I)
_HR_UNIT_ONLY = re.compile(
    rf"(?<![\d.,])(?P<a>\d{{2,3}})(?:{_RANGE_SEP}(?P<b>\d{{2,3}}))?\s*(?P<unit>{_HR_UNITS})", re.I)

_IV_NAME = r"QTc[BFH]?|Q-?Tc|QT|Q-T|PR|P-R|PQ|P-Q|QRSd|QRS"
_IV_DESC = (r"(?:[\s\-]*(?:intervals?|duration|dauer|zeit|time|int\.?|width|breite|complex(?:es)?"
            r"|波群时限|波时限|间期|时限|时间|波群|波))?")
_IV_UNIT = r"ms|msec|millisec(?:onds?)?|milliseconds?|s|sec|seconds?|毫秒|秒"
_IV = re.compile(
    rf"(?<![{_LATIN}])(?P<names>(?:{_IV_NAME})(?:\s*/\s*(?:{_IV_NAME}))*)(?![a-z]){FORMULA_GROUP}{_IV_DESC}{_FILLER}"
    rf"(?P<values>{_NUM}(?:\s*/\s*{_NUM})*)(?:\s*(?P<unit>{_IV_UNIT}))?(?![{_LATIN}])", re.I)
_IV_VALUE = re.compile(_NUM)

_AXIS = re.compile(
    rf"(?<![{_LATIN}])(?P<key>(?:(?:QRS|frontal|electrical|mean|cardiac)[\s\-]+)*axis|qrs-achse|achse|心电轴|电轴)"
    rf"{_FILLER}(?P<sign>[+\-−]?)\s?(?P<a>\d{{1,3}})(?![\d.,])\s*(?P<unit>°|º|degrees?|deg\b|grad\b|度)?", re.I)


def _num(s: str) -> float:
    return float(s.replace(",", "."))


def _canon_measure(name: str) -> str:
    n = name.upper().replace("-", "")
    if n.startswith("QTC"):
        return "QTc"
    if n.startswith("QRS"):
        return "QRS"
    return {"PQ": "PR"}.get(n, n)


def _slash_before(text: str, pos: int) -> bool:
    """``text[:pos]`` ends with "/" and whitespace (``"QT/QTc rate 78"`` is a ratio, not a rate)."""
    j = pos
    while j > 0 and text[j - 1].isspace():
        j -= 1
    return j > 0 and text[j - 1] == "/"


def _heart_rates(text: str) -> Iterator[Entity]:
    taken = DisjointSpans()
    for m in _HR_WITH_KEY.finditer(text):
        key = m.group("key").lower()
        if key in ("rate", "frequenz", "hf") and not m.group("unit") and _slash_before(text, m.start("a")):
            continue
        near = text[max(0, m.start() - 10) : m.start()]
        atrial = any(k in key for k in ("atrial", "心房", "房率")) or bool(re.search(r"vorhof|atrial", near, re.I))
        yield from _hr_entity(text, m, keyword=True, atrial=atrial)
        taken.add(m.start(), m.end(), None)
    for m in _HR_UNIT_ONLY.finditer(text):
        if taken.overlaps(m.start(), m.end()):
            continue
        if m.group("unit").strip() == "次" and not re.match(r"\s*/", text[m.end():]):
            continue  # "次" alone (times) is no rate unit
        before = text[max(0, m.start() - 12) : m.start()]
        yield from _hr_entity(text, m, keyword=False, atrial=bool(re.search(r"vorhof|atrial|心房", before, re.I)))


def _hr_entity(text: str, m: re.Match[str], keyword: bool, atrial: bool) -> Iterator[Entity]:
    a, b, unit = int(m.group("a")), m.group("b"), m.group("unit")
    if unit is not None and unit.strip() == "次" and keyword:
        unit_end = m.end("unit")
    else:
        unit_end = m.end("unit") if unit else None
    end = unit_end or (m.end("b") if b else m.end("a"))
    if unit:
        score = 0.95 if keyword else (0.7 if unit.lstrip().startswith("/") else 0.85)
    else:
        score = 0.85
    low, high = (a, int(b)) if b else (a, a)
    attrs: dict[str, object] = {"rule": "heart_rate", "unit": "bpm", "measure": "atrial rate" if atrial else "HR",
                                "value": None if b else a}
    if b:
        attrs["range"] = [low, high]
    if not (PLAUSIBLE_BPM[0] <= low <= high <= PLAUSIBLE_BPM[1]):
        if not keyword:
            return
        attrs["implausible"] = True
        score /= 2
    yield Entity(m.start("a"), end, "HEART_RATE", round(score, 3), "rule", attrs)


def _intervals(text: str) -> Iterator[Entity]:
    for m in _IV.finditer(text):
        names = [n.strip() for n in m.group("names").split("/")]
        values = list(_IV_VALUE.finditer(m.group("values")))
        if len(names) != len(values):
            continue
        unit = (m.group("unit") or "").lower()
        base = m.start("values")
        for k, (name, vm) in enumerate(zip(names, values, strict=True)):
            measure = _canon_measure(name)
            raw = _num(vm.group())
            if unit in ("s", "sec", "second", "seconds", "秒"):
                ms = raw * 1000
            elif unit:
                ms = raw
            elif raw < 1:
                ms = raw * 1000  # "PR 0.16": seconds
            elif raw >= 30:
                ms = raw
            else:
                continue
            score = 0.95 if unit else 0.85
            attrs: dict[str, object] = {"rule": "interval", "measure": measure, "value": int(round(ms)), "unit": "ms"}
            if measure == "QTc" and (formula := formula_name(name, m)):
                attrs["formula"] = formula
            if unit in ("s", "sec", "second", "seconds", "秒") or (not unit and raw < 1):
                attrs["converted_from"] = f"{vm.group()} s"
            lo, hi = PLAUSIBLE_MS[measure]
            if not lo <= ms <= hi:
                attrs["implausible"] = True
                score /= 2
            if len(names) == 1:
                start, end = m.start(), m.end()
            else:
                start = base + vm.start()
                end = m.end() if k == len(names) - 1 else base + vm.end()
            yield Entity(start, end, MEASURE_LABELS[measure], round(score, 3), "rule", attrs)


def _axes(text: str) -> Iterator[Entity]:
    for m in _AXIS.finditer(text):
        value = int(m.group("a")) * (-1 if m.group("sign") in ("-", "−") else 1)
        attrs: dict[str, object] = {"rule": "axis", "measure": "axis", "value": value, "unit": "deg"}
        score = 0.95 if m.group("unit") else 0.85
        if not -180 <= value <= 360:
            attrs["implausible"] = True
            score /= 2
        yield Entity(m.start(), m.end(), "AXIS", score, "rule", attrs)


def _statements(text: str, lexicon: Lexicon) -> Iterator[Entity]:
    for start, end, term in lexicon.find(text):
        attrs: dict[str, object] = {"rule": "lexicon", "concept": term.concept, "lang": term.lang}
        if term.scp_code:
            attrs["scp_code"] = term.scp_code
        if term.axis:
            attrs["axis"] = term.axis
        if term.normal:
            attrs["normal"] = True
        yield Entity(start, end, term.label, term.score, "rule", attrs)


def _resolve(cands: list[Entity]) -> list[Entity]:
    kept = DisjointSpans()
    for e in sorted(cands, key=lambda e: (-(e.end - e.start), -e.score, e.start)):
        kept.add(e.start, e.end, e)
    return sorted(kept.items(), key=lambda e: (e.start, e.end))


def extract_ecg(text: str, include_cues: bool = False, lexicon: Lexicon | None = None) -> list[Entity]:
    """Rule entities of an ECG report, sorted by offset, negation/uncertainty attached.

    ``include_cues=True`` also returns the cues that scope an entity, as ``NEGATION`` / ``UNCERTAINTY`` entities
    (projects that label negation cues, like the demo, can then compare them with their model).
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_ecg needs a str, got {type(text).__name__}")
    lexicon = lexicon or default_lexicon()
    cands = [*_heart_rates(text), *_intervals(text), *_axes(text), *_statements(text, lexicon),
             *holter_candidates(text)]
    blocks = list(prt_axes(text))
    if blocks:  # a P-R-T axes block is read as one: no other rule inside it
        taken = DisjointSpans()
        for (start, end), _ in blocks:
            taken.add(start, end, None)
        cands = [e for e in cands if not taken.overlaps(e.start, e.end)] + [e for _, es in blocks for e in es]
    entities = link_context(text, _resolve(cands))
    found = scopes(text, entities)  # once: the flags annotate() adds do not change what it finds
    entities = annotate(text, entities, found)
    if include_cues:
        label = {"negated": "NEGATION", "uncertain": "UNCERTAINTY"}
        seen = set()
        for cue, _ in found:
            if (cue.start, cue.end) not in seen:
                seen.add((cue.start, cue.end))
                entities.append(Entity(cue.start, cue.end, label[cue.kind], 0.9, "rule", {"rule": "cue"}))
        entities.sort(key=lambda e: (e.start, e.end))
    return entities



_COPY_MEASURE = ("measure", "value", "unit", "range", "converted_from", "implausible", "time", "formula", "wave")
_COPY_TERM = ("concept", "scp_code", "axis", "normal", "event")


def normalise_entity(text: str, entity: Entity) -> Entity:
    """``entity`` with a normalised value where its text allows and it has none yet (a model's "72 bpm" ->
    ``value=72, unit="bpm"``; "QTc 428 ms" -> ``measure="QTc", value=428, unit="ms"``; "Atrial fibrillation" ->
    ``concept``, ``scp_code``). Rules run on the entity's own text; what they find must cover it."""
    if "value" in entity.attrs or "concept" in entity.attrs:
        return entity
    piece = text[entity.start : entity.end]
    found = [e for e in extract_ecg(piece) if e.label not in CUE_LABELS]
    core_len = len(piece.strip(" .,;:"))
    attrs: dict[str, object] = {}
    if len(found) == 1 and found[0].end - found[0].start >= core_len * 0.6:
        keys = _COPY_MEASURE if "measure" in found[0].attrs else _COPY_TERM
        attrs = {k: found[0].attrs[k] for k in keys if k in found[0].attrs}
    elif not found and re.fullmatch(r"\s*\d{2,3}\s*", piece) and "RATE" in entity.label.upper():
        attrs = {"measure": "HR", "value": int(piece), "unit": "bpm"}
    if not attrs:
        return entity
    return Entity(entity.start, entity.end, entity.label, entity.score, entity.source, {**entity.attrs, **attrs})
