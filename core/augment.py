"""Span-preserving data augmentation for small NER projects (off by default; ``TrainConfig.augment`` copies per report).

Every operation edits the text and moves the spans with it, so each augmented document is as valid as its source:

- **synonyms**: a phrase from a group of interchangeable medical wordings (``atrial fibrillation`` / ``AF`` /
  ``AFib``, ``heart rate`` / ``HR`` / ``ventricular rate`` ...) is replaced by another member of its group, only where
  the phrase lies wholly inside one entity or wholly outside every entity (an entity that *is* the phrase becomes the
  synonym, with the same label);
- **numbers**: an integer is moved by up to ±15 % (at least ±1), keeping it positive and its digit count plausible,
  so ``78 bpm`` can become ``84 bpm`` and ``QTc 440 ms`` ``QTc 412 ms``; decimals, list markers and numbers
  inside words (``V1``, ``12-lead``) are left alone;
- **rephrasing**: sentences are reordered (a report's findings are listed in any order) and a few report phrasings
  outside entities are swapped (``There is`` / ``Evidence of`` / ``Noted:``...).

Edits never cross an entity boundary; a document with nothing to change comes back unchanged (and is skipped by
:func:`augment_documents`). Pure and deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

from core.types import Document, Span

# Groups of interchangeable wordings (case-insensitive match; the replacement keeps a leading capital).
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("atrial fibrillation", "AF", "AFib", "a-fib"),
    ("atrial flutter", "AFL"),
    ("sinus rhythm", "normal sinus rhythm", "NSR"),
    ("sinus tachycardia", "sinus tach"),
    ("sinus bradycardia", "sinus brady"),
    ("heart rate", "HR", "ventricular rate"),
    ("left bundle branch block", "LBBB", "left BBB"),
    ("right bundle branch block", "RBBB", "right BBB"),
    ("first degree AV block", "1st degree AV block", "first-degree atrioventricular block", "1AVB"),
    ("left ventricular hypertrophy", "LVH"),
    ("left axis deviation", "leftward axis"),
    ("right axis deviation", "rightward axis"),
    ("ST elevation", "ST-segment elevation"),
    ("ST depression", "ST-segment depression"),
    ("T wave inversion", "inverted T waves", "TWI"),
    ("premature ventricular contractions", "PVCs", "ventricular ectopics"),
    ("pleural effusion", "pleural fluid"),
    ("consolidation", "airspace consolidation", "airspace opacity"),
    ("pneumothorax", "PTX"),
    ("cardiomegaly", "enlarged cardiac silhouette", "enlarged heart"),
    ("nodule", "nodular opacity"),
    ("bpm", "beats per minute", "/min"),
    ("ms", "msec", "milliseconds"),
    ("mm", "millimeters"),
    ("cm", "centimeters"),
)

# Report phrasings swapped only outside entities.
PHRASES: tuple[tuple[str, ...], ...] = (
    ("There is", "Evidence of", "Noted:", "Findings include"),
    ("No evidence of", "No", "Without", "Negative for"),
    ("Impression:", "Conclusion:", "Summary:"),
    ("consistent with", "compatible with", "suggestive of"),
    ("unchanged", "stable", "no interval change"),
)

# A quantity: not part of a word or of "12-lead", not a list marker ("2." or "2)" at a line start).
NUMBER = re.compile(r"(?<![\w.\-/])(?<!^)(\d{1,4})(\.\d+)?(?![\w\-])", re.MULTILINE)
LIST_MARKER = re.compile(r"^\s*\d{1,3}[.)]\s", re.MULTILINE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])|\n+")


def _index(groups: Sequence[Sequence[str]]) -> tuple[re.Pattern[str], dict[str, tuple[str, ...]]]:
    members = {m.lower(): tuple(g) for g in groups for m in g}
    alts = sorted(members, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(a) for a in alts) + r")(?![\w-])", re.IGNORECASE)
    return pattern, members


_SYN = _index(SYNONYMS)
_PHR = _index(PHRASES)


def _inside(spans: Sequence[Span], a: int, b: int) -> Span | None | bool:
    """The span holding ``[a, b)`` wholly; ``None`` when it touches no span; ``False`` when it crosses a boundary."""
    for s in spans:
        if s.start <= a and b <= s.end:
            return s
        if a < s.end and s.start < b:
            return False
    return None


def apply_edits(text: str, spans: Sequence[Span], edits: Iterable[tuple[int, int, str]]) -> tuple[str, list[Span]]:
    """Replace ``[start, end)`` ranges (non-empty, non-overlapping, none crossing a span boundary) and move the spans
    with the text: a span shifts by the edits before it and grows or shrinks by the edits inside it."""
    ordered = sorted(edits)
    out, pos = [], 0
    for a, b, new in ordered:
        if a < pos or b <= a:
            raise ValueError(f"edits must be non-empty and not overlap; got [{a}, {b}) after {pos}")
        out += [text[pos:a], new]
        pos = b
    out.append(text[pos:])
    new_spans = []
    for sp in spans:
        before = inside = 0
        for a, b, new in ordered:
            delta = len(new) - (b - a)
            if b <= sp.start:
                before += delta
            elif sp.start <= a and b <= sp.end:
                inside += delta
            elif a < sp.end and sp.start < b:
                raise ValueError(f"edit [{a}, {b}) crosses span [{sp.start}, {sp.end})")
        start = sp.start + before
        new_spans.append(Span(start, start + (sp.end - sp.start) + inside, sp.label))
    return "".join(out), sorted(new_spans)


def _case_like(src: str, new: str) -> str:
    if len(src) > 1 and src.isupper() and not new.isupper():
        return new.upper()
    if src[:1].isupper() and new[:1].islower():
        return new[:1].upper() + new[1:]
    if src[:1].islower() and new[:1].isupper() and not new.isupper():
        return new[:1].lower() + new[1:]
    return new


def _lexicon_edits(text: str, spans: Sequence[Span], rng: random.Random, index: tuple, p: float,
                   outside_only: bool) -> list[tuple[int, int, str]]:
    pattern, members = index
    edits = []
    for m in pattern.finditer(text):
        where = _inside(spans, m.start(), m.end())
        if where is False or (outside_only and where is not None) or rng.random() >= p:
            continue
        found = m.group(0)
        others = [g for g in members[found.lower()] if g.lower() != found.lower()]
        if others:
            edits.append((m.start(), m.end(), _case_like(found, rng.choice(others))))
    return edits


def _number_edits(text: str, spans: Sequence[Span], rng: random.Random, p: float) -> list[tuple[int, int, str]]:
    edits = []
    markers = {m.end() for m in LIST_MARKER.finditer(text)}
    for m in NUMBER.finditer(text):
        a, b = m.span(1)
        if m.group(2) or (any(b < e <= b + 3 for e in markers) and text[b:b + 1] in ".)"):
            continue  # decimals (0.44 s) and list markers stay as they are
        if _inside(spans, m.start(), m.end()) is False or rng.random() >= p:
            continue
        value = int(m.group(1))
        step = max(1, round(value * 0.15))
        new = max(1, value + rng.randint(-step, step))
        if new == value or len(str(new)) > len(str(value)) + 1 or len(str(new)) < len(str(value)) - 1:
            continue
        edits.append((a, b, str(new)))
    return edits


def reorder_sentences(text: str, spans: Sequence[Span], rng: random.Random) -> tuple[str, list[Span]]:
    """Shuffle the sentences (none may be cut by an entity); separators stay in place."""
    cuts = [(m.start(), m.end()) for m in SENTENCE_END.finditer(text)]
    bounds = [0] + [c for cut in cuts for c in cut] + [len(text)]
    pieces = [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]
    if len(pieces) < 3 or any(_inside(spans, a, b) is False for a, b in zip(bounds[1:-1:2], bounds[2:-1:2],
                                                                               strict=True)):
        return text, list(spans)
    sentences = pieces[:-1] if not text[pieces[-1][0]:pieces[-1][1]].strip() else pieces
    order = list(range(len(sentences)))
    rng.shuffle(order)
    seps = [text[a:b] for a, b in cuts]
    out, new_spans, pos = [], [], 0
    for k, i in enumerate(order):
        a, b = sentences[i]
        for s in spans:
            if a <= s.start and s.end <= b:
                new_spans.append(Span(pos + s.start - a, pos + s.end - a, s.label))
        out.append(text[a:b])
        pos += b - a
        if k < len(seps):
            out.append(seps[k])
            pos += len(seps[k])
    rest = "".join(seps[len(order):]) + (text[pieces[-1][0]:] if len(sentences) < len(pieces) else "")
    return "".join(out) + rest, sorted(new_spans)


def augment_document(doc: Document, rng: random.Random, *, p_synonym: float = 0.5, p_number: float = 0.5,
                     p_phrase: float = 0.3, p_reorder: float = 0.3) -> Document:
    """One augmented copy of ``doc`` (same id and meta plus ``augmented_from``); spans stay on the same words."""
    text, spans = doc.text, list(doc.spans)
    edits = _lexicon_edits(text, spans, rng, _SYN, p_synonym, outside_only=False)
    taken = [(a, b) for a, b, _ in edits]
    edits += [e for e in _number_edits(text, spans, rng, p_number)
              if not any(a < e[1] and e[0] < b for a, b in taken)]
    taken = [(a, b) for a, b, _ in edits]
    edits += [e for e in _lexicon_edits(text, spans, rng, _PHR, p_phrase, outside_only=True)
              if not any(a < e[1] and e[0] < b for a, b in taken)]
    text, spans = apply_edits(text, spans, edits)
    if rng.random() < p_reorder:
        text, spans = reorder_sentences(text, spans, rng)
    return Document(doc.id, text, tuple(sorted(spans)), {**doc.meta, "augmented_from": doc.id})


def augment_documents(docs: Sequence[Document], copies: int, seed: int = 0) -> list[Document]:
    """``copies`` augmented versions of each document (ids ``"<id>#aug<k>"``), dropping copies identical to their
    source; the originals are not included."""
    rng = random.Random(seed)
    out = []
    for doc in docs:
        seen = {doc.text}
        for k in range(copies):
            new = augment_document(doc, rng)
            if new.text in seen:
                continue
            seen.add(new.text)
            out.append(replace(new, id=f"{doc.id}#aug{k + 1}"))
    return out
