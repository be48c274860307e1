"""brat standoff (``.txt`` + ``.ann``) -> ParsedTask, for corpora such as MACCROBAT2020.

Only text-bound annotations (``T`` lines) become spans. A discontinuous entity (``Type s1 e1;s2 e2``) becomes one
span per fragment, with a warning; events, relations, attributes and notes are counted in one info issue. A span
whose text does not match the document at its offsets is re-anchored like a Label Studio span, or skipped with an
error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from core.spancheck import reanchor
from core.types import Annotation, Issue, ParsedTask, ReportLensError, Span, snippet


def parse_brat(txt_path: Path, ann_path: Path | None = None, issues: list[Issue] | None = None,
               position: int = 0) -> ParsedTask:
    """One brat document. ``issues`` collects what was repaired or skipped."""
    issues = issues if issues is not None else []
    txt_path = Path(txt_path)
    ann_path = Path(ann_path) if ann_path else txt_path.with_suffix(".ann")
    try:
        text = txt_path.read_text(encoding="utf-8")
        ann_lines = ann_path.read_text(encoding="utf-8").splitlines() if ann_path.exists() else []
    except UnicodeDecodeError as exc:
        raise ReportLensError(f"{txt_path.name}: not UTF-8 (byte {exc.start}); re-save the file as UTF-8.") from None
    ref = f"File {txt_path.name}"
    spans: list[Span] = []
    other: Counter[str] = Counter()
    for n, line in enumerate(ann_lines, 1):
        if not line.strip():
            continue
        if not line.startswith("T"):
            other[line[:1]] += 1
            continue
        parts = line.split("\t")
        if len(parts) < 2 or " " not in parts[1]:
            issues.append(Issue("error", "bad_line", f"{ann_path.name} line {n}: cannot read {line[:60]!r}; expected "
                                "'Tn<TAB>Type start end<TAB>text'.", task=ref))
            continue
        label, _, ranges = parts[1].partition(" ")
        frags = [r.split() for r in ranges.split(";")]
        if len(frags) > 1:
            issues.append(Issue("warning", "discontinuous", f"{ref} line {n}: discontinuous {label} entity split into "
                                f"{len(frags)} spans ({ranges}).", task=ref))
        expected = parts[2] if len(parts) > 2 and len(frags) == 1 else None
        for frag in frags:
            try:
                start, end = int(frag[0]), int(frag[1])
            except (ValueError, IndexError):
                issues.append(Issue("error", "bad_offsets", f"{ref} line {n}: offsets {ranges!r} are not integers.",
                                    task=ref))
                continue
            span = _anchored(text, start, end, label, expected, ref, issues)
            if span is not None:
                spans.append(span)
    if other:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(other.items()))
        issues.append(Issue("info", "ignored_annotations",
                            f"{ref}: events/relations/attributes not imported ({kinds}).", task=ref))
    ann = Annotation(source="human", spans=tuple(dict.fromkeys(spans)), author="brat", external_id=ann_path.name)
    return ParsedTask(text=text, meta={"file": txt_path.name}, annotations=(ann,), position=position,
                      source_name=txt_path.name)


def _anchored(text: str, start: int, end: int, label: str, expected: str | None, ref: str,
              issues: list[Issue]) -> Span | None:
    if not 0 <= start < end <= len(text):
        issues.append(Issue("error", "offset_out_of_range", f"{ref}: span ({start}, {end}, {label!r}) lies outside "
                            f"the text (length {len(text)}); fix the .ann file.", task=ref, span=(start, end, label)))
        return None
    if expected is None or text[start:end] == expected:
        return Span(start, end, label)
    hit = reanchor(text, start, end, expected)
    if hit is None:
        issues.append(Issue("error", "offset_mismatch", f"{ref}: span ({start}, {end}, {label!r}) should read "
                            f"{expected!r} but the text there is {text[start:end]!r}, and it is not found nearby; "
                            "fix the .ann file.", task=ref, span=(start, end, label),
                            snippet=snippet(text, start, end)))
        return None
    found = hit[0]
    issues.append(Issue("warning", "offset_repaired", f"{ref}: span ({start}, {end}, {label!r}) re-anchored to "
                        f"({found[0]}, {found[1]}) where its text {expected!r} is.", task=ref,
                        span=(start, end, label), snippet=snippet(text, found[0], found[1])))
    return Span(found[0], found[1], label)


def iter_brat_folder(folder: Path, issues: list[Issue]) -> Iterator[ParsedTask]:
    """Every ``.txt`` with its ``.ann`` in ``folder`` (sorted by name, so the order is stable)."""
    for i, txt in enumerate(sorted(Path(folder).glob("*.txt"))):
        yield parse_brat(txt, None, issues, position=i)
