"""brat standoff: a folder or ``.zip`` of ``.txt`` + ``.ann`` pairs (MACCROBAT2020 and most clinical NER corpora),
or one pair given by either file. :func:`sniff` and :func:`read`.

Only text-bound annotations (``T`` lines) become spans. A discontinuous entity (``Type s1 e1;s2 e2``) becomes one
span per fragment, with a warning; events, relations, attributes and notes are counted in one info issue. A span
whose text does not match the document at its offsets is re-anchored like a Label Studio span, or skipped with an
error. Offsets count characters of the ``.txt`` exactly as stored (no newline translation), as brat does.

Batch policy (as for DICOM): one bad pair never stops the batch. An ``.ann`` without its ``.txt`` and a ``.txt``
that is not UTF-8 are error issues (document skipped); a ``.txt`` without an ``.ann`` is imported unlabelled, noted
once. Only a single ``.ann`` given directly without its ``.txt`` raises.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from core.errors import IssueCode
from core.formats.archive import iter_members, zip_member_names
from core.formats.labelconfig import LabelConfig, short_list
from core.formats.lsresults import ParseContext, unknown_span
from core.formats.report import ParseReport
from core.spancheck import check_region, span_issue
from core.types import Annotation, Issue, ParsedTask, ReportLensError, Span

NAME = "brat"
TEXT, ANN = ".txt", ".ann"
FIX_OFFSETS = "Check that the .ann belongs to this .txt (same version), or fix its offsets."
# The first character of a brat line that is not a text-bound annotation, in words (for the ignored-results note).
OTHER_KINDS = {"E": "event", "R": "relation", "A": "attribute", "M": "attribute", "N": "normalization",
               "#": "note", "*": "equivalence"}


def _decode(data: bytes, name: str) -> str | Issue:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Issue.of(IssueCode.FILE_UNREADABLE, task=f"File {name}", where=name,
                        problem=f"is not UTF-8 (bad byte at offset {exc.start})",
                        fix="Re-save the .txt and .ann files as UTF-8 and import again.")


def parse_ann(text: str, ann: str, ann_name: str, ref: str, ctx: ParseContext) -> list[Span]:
    """The spans of one ``.ann`` file over ``text``; problems go to ``ctx.report`` (named by file and line)."""
    issues = ctx.report.issues
    spans: list[Span] = []
    other: Counter[str] = Counter()
    for n, line in enumerate(ann.splitlines(), 1):
        if not line.strip():
            continue
        if not line.startswith("T"):
            other[OTHER_KINDS.get(line[:1], repr(line[:1]))] += 1
            continue
        where = f"{ann_name} line {n}"
        parts = line.split("\t")
        if len(parts) < 2 or " " not in parts[1]:
            issues.append(Issue.of(IssueCode.BAD_LINE, task=ref, where=where, line=line[:60],
                                   expected="'Tn<TAB>Type start end<TAB>text'", outcome="line skipped"))
            continue
        label, _, ranges = parts[1].partition(" ")
        frags = [r.split() for r in ranges.split(";")]
        if len(frags) > 1:
            issues.append(Issue.of(IssueCode.DISCONTINUOUS, task=ref, where=where, label=label, n=len(frags),
                                   ranges=ranges))
        expected = parts[2] if len(parts) > 2 and len(frags) == 1 else None
        for frag in frags:
            try:
                start, end = int(frag[0]), int(frag[1])
            except (ValueError, IndexError):
                raw = (frag + [None, None])[:2]
                issues.append(span_issue(IssueCode.OFFSET_NOT_INTEGER, ref, (raw[0], raw[1], label), where=where,
                                         fix="Write them as 'start end' character offsets."))
                continue
            ctx.report.spans_seen += 1
            checked = check_region(text, start, end, label, expected, ref, where=where, fix=FIX_OFFSETS)
            if checked.issue:
                issues.append(checked.issue)
            ctx.report.repaired += int(checked.repaired)
            if checked.offsets is None:
                continue
            span = Span(*checked.offsets, label)
            if not ctx.known_span(label):
                unknown_span(label, span.as_tuple(), text, ref, ctx)
                continue
            ctx.tally.add_span(label)
            spans.append(span)
    if other:
        kinds = ", ".join(f"{k} ×{v}" for k, v in sorted(other.items()))
        issues.append(Issue.of(IssueCode.IGNORED_RESULTS, task=ref, n=sum(other.values()), counts=kinds,
                               where=f" in {ann_name}", imported="text-bound annotations (T lines)"))
    return list(dict.fromkeys(spans))


def brat_task(text: str, ann: str | None, name: str, ann_name: str, position: int, ctx: ParseContext) -> ParsedTask:
    """One document: its text (``name`` is the ``.txt``) and, when there is an ``.ann``, one human annotation."""
    ctx.report.tasks_seen += 1
    ref = f"File {name}"
    anns: tuple[Annotation, ...] = ()
    if ann is not None:
        spans = parse_ann(text, ann, ann_name, ref, ctx)
        anns = (Annotation(source="human", spans=tuple(spans), author="brat", external_id=ann_name),)
    return ParsedTask(text=text, meta={"file": name}, annotations=anns, position=position, source_name=name)


# ---------------------------------------------------------------- pairs in a folder, a zip, or one pair


def _pairs(names: list[str]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """``(txt, ann or None)`` pairs by stem, sorted, and the ``.ann`` names without a ``.txt``."""
    by_stem: dict[str, dict[str, str]] = {}
    for name in names:
        p = PurePosixPath(name)
        if p.suffix.lower() in (TEXT, ANN) and not p.name.startswith("."):
            by_stem.setdefault(str(p.with_suffix("")), {})[p.suffix.lower()] = name
    pairs = [(f[TEXT], f.get(ANN)) for _, f in sorted(by_stem.items()) if TEXT in f]
    orphans = [f[ANN] for _, f in sorted(by_stem.items()) if TEXT not in f]
    return pairs, orphans


class _Batch:
    def __init__(self, ctx: ParseContext, where: str) -> None:
        self.ctx, self.where, self.position = ctx, where, 0
        self.unannotated: list[str] = []

    def documents(self, files: dict[str, bytes] | Path, names: list[str]) -> Iterator[ParsedTask]:
        pairs, orphans = _pairs(names)
        for ann in orphans:
            stem = PurePosixPath(ann).with_suffix(TEXT).name
            self.ctx.report.note(IssueCode.BRAT_MISSING_TEXT, task=f"File {ann}", ann=ann, where=self.where,
                                 stem=stem)
        for txt, ann in pairs:
            text = self._text(files, txt)
            if isinstance(text, Issue):
                self.ctx.report.add(text)
                continue
            ann_text = None if ann is None else self._text(files, ann)
            if isinstance(ann_text, Issue):
                self.ctx.report.add(ann_text)
                continue
            if ann is None:
                self.unannotated.append(txt)
            yield brat_task(text, ann_text, txt, PurePosixPath(ann or txt).name, self.position, self.ctx)
            self.position += 1
        self.close()

    @staticmethod
    def _text(files: dict[str, bytes] | Path, name: str) -> str | Issue:
        data = files[name] if isinstance(files, dict) else (files / name).read_bytes()
        return _decode(data, name)

    def close(self) -> None:
        if self.unannotated:
            self.ctx.report.note(IssueCode.BRAT_UNANNOTATED, n=len(self.unannotated), where=self.where,
                                 names=short_list(self.unannotated, 5))
        self.ctx.close()


def _zip_files(path: Path, ctx: ParseContext) -> dict[str, bytes]:
    wanted = {n for n in zip_member_names(path) if PurePosixPath(n).suffix.lower() in (TEXT, ANN)}
    return {name: data for name, data in iter_members(path, path.name, ctx.report.add) if name in wanted}


def _single(path: Path) -> tuple[Path, Path | None]:
    txt, ann = path.with_suffix(TEXT), path.with_suffix(ANN)
    if path.suffix.lower() == ANN and not txt.is_file():
        raise ReportLensError(
            f"{path.name} has no {txt.name} beside it: brat keeps the report text in a .txt file of the same name. "
            f"Put {txt.name} next to it (on the Import page: upload both files, or a .zip of the pairs) and import "
            "again.")
    return txt, ann if ann.is_file() else None


def sniff(path: Path) -> bool:
    """A folder or zip holding ``.ann`` files, an ``.ann`` file, or a ``.txt`` with its ``.ann`` beside it."""
    if path.is_dir():
        return any(p.suffix.lower() == ANN for p in path.rglob("*") if p.is_file())
    suffix = path.suffix.lower()
    if suffix == ANN:
        return True
    if suffix == TEXT:
        return path.with_suffix(ANN).is_file()
    if suffix == ".zip" and path.is_file():
        return any(PurePosixPath(n).suffix.lower() == ANN for n in zip_member_names(path))
    return False


def read(path: Path, config: LabelConfig | None, report: ParseReport) -> Iterator[ParsedTask]:
    """The documents of a folder, a zip, or one pair (sorted by name, so the order is stable)."""
    ctx = ParseContext(config, report)
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        return _Batch(ctx, f"folder {path.name}").documents(path, names)
    if path.suffix.lower() == ".zip":
        return _zip_documents(path, ctx)
    txt, ann = _single(path)
    return _Batch(ctx, txt.parent.name or ".").documents(txt.parent, [txt.name] + ([ann.name] if ann else []))


def _zip_documents(path: Path, ctx: ParseContext) -> Iterator[ParsedTask]:
    files = _zip_files(path, ctx)
    yield from _Batch(ctx, path.name).documents(files, sorted(files))
