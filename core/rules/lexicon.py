"""The ECG statement lexicon: terms -> (rule label, concept, SCP code), and a fast longest-match finder.

Sources, all under ``core/resources/ecg`` (see its README for origin and licences):

- the MCS English ECG thesaurus (199 statements in 26 groups); its group decides the label (rhythm groups -> RHYTHM,
  AV conduction / ventricular blocks / WPW -> CONDUCTION, axis -> AXIS, the rest -> FINDING) and
  :data:`THESAURUS_SCP` maps statements to PTB-XL SCP codes where one fits;
- the PTB-XL SCP statement descriptions (rhythm statements -> RHYTHM, diagnostic class CD -> CONDUCTION, else FINDING);
- ``extra_terms.json``: hand-made English variants and abbreviations, German (as the PTB-XL reports write it),
  Swedish and Chinese terms.

Matching is case-insensitive (abbreviations such as "AF" or "LAD" are case-sensitive), tolerant of spaces and hyphens
between words, and bounded by non-letters for Latin-script terms; Chinese terms match anywhere. At one position the
longest term wins; German umlauts also match their "ae/oe/ue" spelling.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

RESOURCES = Path(__file__).resolve().parent.parent / "resources" / "ecg"
THESAURUS_FILE = RESOURCES / "mcs_eng_thesaurus.json"
SCP_FILE = RESOURCES / "ptbxl_scp_statements.csv"
EXTRA_FILE = RESOURCES / "extra_terms.json"

TERM_SCORE = 0.9  # a full lexicon term
ABBR_SCORE = 0.75  # an abbreviation ("AF", "LBBB")

# MCS thesaurus group id -> rule label (groups not listed are technical remarks and are skipped)
THESAURUS_GROUP_LABEL = {
    "01.01": "FINDING", "02.01": "RHYTHM", "02.02": "RHYTHM", "02.03": "RHYTHM", "02.04": "RHYTHM", "02.05": "RHYTHM",
    "02.06": "CONDUCTION", "02.07": "RHYTHM", "03.01": "AXIS", "04.01": "FINDING", "05.01": "CONDUCTION",
    "06.01": "CONDUCTION", "07.01": "FINDING", "08.01": "FINDING", "09.01": "FINDING", "09.02": "FINDING",
    "09.03": "FINDING", "09.04": "FINDING", "09.05": "FINDING", "09.06": "FINDING", "10.01": "FINDING",
    "11.01": "FINDING", "12.01": "FINDING", "13.01": "FINDING", "14.01": "FINDING", "15.01": "FINDING",
}
# technical remarks about the recording, not findings
THESAURUS_SKIP = {f"1.1.{i}" for i in (1, 2, 3, 4, 5, 6, 7, 11, 14, 15)} | {"2.6.2", "4.1.5", "9.6.9"}
# MCS thesaurus statement id -> PTB-XL SCP code
THESAURUS_SCP = {
    "1.1.8": "LVOLT", "1.1.9": "LVOLT", "1.1.10": "LVOLT",
    "2.1.1": "SR", "2.1.2": "STACH", "2.1.3": "SBRAD", "2.1.4": "SARRH",
    "2.2.1": "PAC", "2.2.2": "BIGU", "2.2.3": "TRIGU", "2.2.4": "PAC", "2.2.13": "SVARR",
    "2.3.1": "AFIB", "2.3.2": "AFLT", "2.3.6": "SVTAC",
    "2.4.1": "PVC", "2.4.2": "BIGU", "2.4.3": "TRIGU",
    "2.6.3": "LPR", "2.6.4": "2AVB", "2.6.5": "2AVB", "2.6.6": "2AVB", "2.6.9": "3AVB",
    "2.7.2": "PACE", "2.7.3": "PACE", "2.7.4": "PACE", "2.7.5": "PACE",
    "4.1.1": "RAO/RAE", "4.1.2": "RAO/RAE", "4.1.3": "LAO/LAE", "4.1.4": "LAO/LAE",
    "5.1.2": "IRBBB", "5.1.3": "CRBBB", "5.1.4": "CRBBB", "5.1.5": "ILBBB", "5.1.6": "LAFB", "5.1.7": "LPFB",
    "5.1.8": "CLBBB", "5.1.9": "IVCD", "5.1.10": "IVCD",
    "6.1.1": "WPW", "6.1.2": "WPW",
    "7.1.1": "RVH", "7.1.2": "RVH", "7.1.3": "RVH", "7.1.4": "VCLVH", "7.1.5": "VCLVH", "7.1.6": "LVH", "7.1.7": "LVH",
    "8.1.2": "LNGQT",
    **{f"9.1.{i}": "AMI" for i in range(1, 9)}, **{f"9.3.{i}": "ASMI" for i in range(1, 9)},
    **{f"9.4.{i}": "LMI" for i in range(1, 9)}, **{f"9.5.{i}": "ALMI" for i in range(1, 9)},
    **{f"9.6.{i}": "IMI" for i in range(1, 9)},
    "10.1.1": "STE_", "12.1.1": "STD_", "12.1.2": "STD_", "12.1.3": "STD_", "12.1.4": "STD_", "13.1.10": "NT_",
}
# MCS axis statements -> PTB-XL ``heart_axis`` codes
THESAURUS_AXIS = {"3.1.1": "AXL", "3.1.2": "LAD", "3.1.3": "ALAD", "3.1.4": "RAD", "3.1.5": "ARAD", "3.1.6": "MID"}
# words a statement may start with that the negation module treats as uncertainty cues instead
_HEDGES = re.compile(r"^(?:cannot rule out|possible|probable|probably|consider)\s+", re.I)
_LATIN = "A-Za-zÀ-ÖØ-öø-ÿ"
_UMLAUTS = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}


@dataclass(frozen=True)
class Term:
    """One surface form of an ECG statement."""

    text: str
    label: str  # RHYTHM, CONDUCTION, AXIS or FINDING
    concept: str  # canonical English name
    scp_code: str | None = None  # PTB-XL SCP code
    axis: str | None = None  # PTB-XL heart_axis code (AXIS terms)
    normal: bool = False  # a normal statement ("normal axis", "normal ECG")
    lang: str = "en"
    case_sensitive: bool = False
    source: str = "extra"  # extra | mcs | scp

    @property
    def score(self) -> float:
        return ABBR_SCORE if self.case_sensitive else TERM_SCORE


def _variants(term: str) -> list[str]:
    """``complex(es)`` -> complex, complexes, complex(es); umlauts also as ae/oe/ue."""
    out = [term]
    m = re.search(r"\((\w+)\)", term)
    if m:
        out += [term[: m.start()] + term[m.end():], term[: m.start()] + m.group(1) + term[m.end():]]
    more = []
    for t in out:
        if any(ch in t for ch in _UMLAUTS):
            more.append("".join(_UMLAUTS.get(ch, ch) for ch in t))
    return [t.strip() for t in out + more if t.strip()]


def _thesaurus_terms() -> list[Term]:
    data = json.loads(THESAURUS_FILE.read_text(encoding="utf-8"))
    out = []
    for group in data["groups"]:
        label = THESAURUS_GROUP_LABEL.get(group["id"])
        if label is None:
            continue
        for rep in group["reports"]:
            if rep["id"] in THESAURUS_SKIP:
                continue
            name = _HEDGES.sub("", rep["name"]).strip()
            concept = name[:1].lower() + name[1:] if not name[:2].isupper() else name
            this_label = label
            if label == "RHYTHM" and "complex" in name.lower():
                this_label = "FINDING"  # premature / escape complexes are ectopy, not a rhythm
            axis = THESAURUS_AXIS.get(rep["id"])
            out.append(Term(name, this_label, concept, THESAURUS_SCP.get(rep["id"]), axis, rep["id"] == "3.1.6",
                            source="mcs"))
    return out


def _scp_terms() -> list[Term]:
    out = []
    with SCP_FILE.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            code, desc = row[""].strip(), row["description"].strip()
            if not code or not desc:
                continue
            if row.get("rhythm", "").strip():
                label = "RHYTHM"
            elif row.get("diagnostic_class", "").strip() == "CD":
                label = "CONDUCTION"
            else:
                label = "FINDING"
            desc = re.sub(r"\s*\(former \w+\)", "", desc)
            out.append(Term(desc, label, desc, code, normal=code == "NORM", source="scp"))
    return out


def _extra_terms() -> list[Term]:
    data = json.loads(EXTRA_FILE.read_text(encoding="utf-8"))
    out = []
    for c in data["concepts"]:
        common = {"label": c["label"], "concept": c["concept"], "scp_code": c.get("scp"), "axis": c.get("axis"),
                  "normal": bool(c.get("normal"))}
        for lang in ("en", "de", "sv", "zh"):
            out += [Term(t, lang=lang, **common) for t in c.get(lang, ())]
        out += [Term(t, lang="en", case_sensitive=True, **common) for t in c.get("abbr", ())]
    return out


def _pattern(text: str) -> str:
    words = [w for w in re.split(r"[\s\-‐–]+", text) if w]
    body = r"[\s\-‐–]*".join(re.escape(w) for w in words)
    if re.match(f"[{_LATIN}0-9]", text):
        body = f"(?<![{_LATIN}0-9]){body}"
    if re.search(f"[{_LATIN}0-9]$", text):
        body = f"{body}(?![{_LATIN}0-9])"
    return body


def _key(s: str) -> str:
    return re.sub(r"[\s\-‐–]+", "", s).casefold()


class Lexicon:
    """A set of :class:`Term` and the compiled matcher. ``find`` returns non-overlapping ``(start, end, term)``."""

    def __init__(self, terms: list[Term]) -> None:
        self.terms: dict[tuple[str, bool], Term] = {}
        surfaces: dict[bool, set[str]] = {False: set(), True: set()}
        for term in terms:
            for variant in _variants(term.text):
                key = (variant if term.case_sensitive else _key(variant), term.case_sensitive)
                # first definition wins: the hand-made list comes first, so its labels and codes take precedence
                self.terms.setdefault(key, Term(**{**term.__dict__, "text": variant}))
                surfaces[term.case_sensitive].add(variant if term.case_sensitive else variant.casefold())

        def alternation(texts: set[str]) -> str:
            """Longest first; grouped by first character behind a lookahead, so at each position the regex tries
            one group instead of every term (the same matches: only that group's terms can start there, in the
            same order)."""
            groups: dict[str, list[str]] = {}
            for t in sorted(texts, key=lambda t: (-len(t), t)):
                first = next(w for w in re.split(r"[\s\-‐–]+", t) if w)[0]
                groups.setdefault(first, []).append(_pattern(t))
            return "|".join(f"(?={re.escape(ch)})(?:{'|'.join(ps)})" for ch, ps in groups.items())

        self._insensitive = re.compile(alternation(surfaces[False]), re.I)
        self._sensitive = re.compile(alternation(surfaces[True])) if surfaces[True] else None

    def __len__(self) -> int:
        return len(self.terms)

    def find(self, text: str) -> list[tuple[int, int, Term]]:
        hits: list[tuple[int, int, Term]] = []
        for m in self._insensitive.finditer(text):
            term = self.terms.get((_key(m.group()), False))
            if term is not None:
                hits.append((m.start(), m.end(), term))
        if self._sensitive is not None:
            for m in self._sensitive.finditer(text):
                term = self.terms.get((m.group(), True))
                if term is not None:
                    hits.append((m.start(), m.end(), term))
        return _non_overlapping(hits)


def _non_overlapping(hits: list[tuple[int, int, Term]]) -> list[tuple[int, int, Term]]:
    """Longest first (then full terms before abbreviations, then leftmost); drop what overlaps a kept hit."""
    kept = DisjointSpans()
    for h in sorted(hits, key=lambda h: (-(h[1] - h[0]), h[2].case_sensitive, h[0])):
        kept.add(h[0], h[1], h)
    return sorted(kept.items(), key=lambda h: h[0])


class DisjointSpans:
    """Non-overlapping ``[start, end)`` spans, each with an item: :meth:`add` keeps a span only when it overlaps none
    kept so far. The characters covered are marked in a bytearray, so a check costs the span's length, not the
    number of spans kept (n spans: linear, not quadratic). ``items()`` in the order they were kept."""

    def __init__(self) -> None:
        self._covered = bytearray()
        self._spans: list[tuple[int, int]] = []
        self._items: list[Any] = []

    def overlaps(self, start: int, end: int) -> bool:
        if start >= end:  # an empty span overlaps a kept one that holds it strictly inside (as the plain test says)
            return any(s < end and start < e for s, e in self._spans)
        return self._covered.find(1, start, end) != -1

    def add(self, start: int, end: int, item: Any) -> bool:
        if self.overlaps(start, end):
            return False
        if end > len(self._covered):
            self._covered.extend(bytes(max(end - len(self._covered), len(self._covered))))
        self._covered[start:end] = b"\x01" * (end - start)
        self._spans.append((start, end))
        self._items.append(item)
        return True

    def items(self) -> list[Any]:
        return list(self._items)


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The bundled lexicon (built once per process, ~0.1 s)."""
    return Lexicon(_extra_terms() + _thesaurus_terms() + _scp_terms())
