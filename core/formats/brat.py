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

from core.formats.archive import iter_members, zip_member_names
from core.formats.labelconfig import LabelConfig, short_list
from core.formats.lsresults import ParseContext, unknown_span
from core.formats.report import ParseReport
from core.spancheck import reanchor
from core.types import Annotation, Issue, ParsedTask, ReportLensError, Span, snippet

NAME = "brat"
TEXT, ANN = ".txt", ".ann"


def _decode(data: bytes, name: str) -> str | Issue:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Issue("error", "brat_unreadable", f"{name} is not UTF-8 (bad byte at offset {exc.start}); document "
                     "skipped. Re-save the .txt and .ann files as UTF-8 and import again.", task=f"File {name}")


def parse_ann(text: str, ann: str, ann_name: str, ref: str, ctx: ParseContext) -> list[Span]:
    """The spans of one ``.ann`` file over ``text``; problems go to ``ctx.report`` (named by file and line)."""
    issues = ctx.report.issues
    spans: list[Span] = []
    other: Counter[str] = Counter()
    for n, line in enumerate(ann.splitlines(), 1):
        if not line.strip():
            continue
        if not line.startswith("T"):
            other[line[:1]] += 1
            continue
        where = f"{ann_name} line {n}"
        parts = line.split("\t")
        if len(parts) < 2 or " " not in parts[1]:
            issues.append(Issue("error", "bad_line", f"{where}: cannot read {line[:60]!r}; expected "
                                "'Tn<TAB>Type start end<TAB>text'. Fix the line or remove it.", task=ref))
            continue
        label, _, ranges = parts[1].partition(" ")
        frags = [r.split() for r in ranges.split(";")]
        if len(frags) > 1:
            issues.append(Issue("warning", "discontinuous", f"{where}: discontinuous {label} entity split into "
                                f"{len(frags)} spans ({ranges}).", task=ref))
        expected = parts[2] if len(parts) > 2 and len(frags) == 1 else None
        for frag in frags:
            try:
                start, end = int(frag[0]), int(frag[1])
            except (ValueError, IndexError):
                issues.append(Issue("error", "bad_offsets", f"{where}: offsets {ranges!r} are not integers; span "
                                    "skipped. Write them as 'start end' character offsets.", task=ref))
                continue
            ctx.report.spans_seen += 1
            span = _anchored(text, (start, end, label), expected, where, ref, ctx)
            if span is None:
                continue
            if not ctx.known_span(label):
                unknown_span(label, span.as_tuple(), text, ref, ctx)
                continue
            ctx.tally.add_span(label)
            spans.append(span)
    if other:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(other.items()))
        issues.append(Issue("info", "ignored_annotations",
                            f"{ann_name}: events/relations/attributes not imported ({kinds}).", task=ref))
    return list(dict.fromkeys(spans))


def _anchored(text: str, span: tuple[int, int, str], expected: str | None, where: str, ref: str,
              ctx: ParseContext) -> Span | None:
    start, end, label = span
    issues = ctx.report.issues
    if not 0 <= start < end <= len(text):
        issues.append(Issue("error", "offset_out_of_range", f"{where}: span ({start}, {end}, {label!r}) lies outside "
                            f"the text (length {len(text)}); span skipped. Check that the .ann belongs to this "
                            ".txt, or fix its offsets.", task=ref, span=span))
        return None
    if expected is None or text[start:end] == expected:
        return Span(start, end, label)
    hit = reanchor(text, start, end, expected)
    if hit is None:
        issues.append(Issue("error", "offset_mismatch", f"{where}: span ({start}, {end}, {label!r}) should read "
                            f"{expected!r} but the text there is {text[start:end]!r}, and it is not found nearby; "
                            "span skipped. Check that the .ann belongs to this .txt (same version), or fix its "
                            "offsets.", task=ref, span=span, snippet=snippet(text, start, end)))
        return None
    found = hit[0]
    ctx.report.repaired += 1
    issues.append(Issue("warning", "offset_repaired", f"{where}: span ({start}, {end}, {label!r}) re-anchored to "
                        f"({found[0]}, {found[1]}) where its text {expected!r} is.", task=ref, span=span,
                        snippet=snippet(text, found[0], found[1])))
    return Span(found[0], found[1], label)


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
            self.ctx.report.add(Issue(
                "error", "brat_missing_text", f"{ann} in {self.where} has no {stem} beside it, so its annotations have "
                "no text; skipped. Add the .txt the annotations were made on (same name, same folder), or remove the "
                ".ann.", task=f"File {ann}"))
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
            self.ctx.report.note("info", "brat_unannotated", f"{len(self.unannotated)} .txt file(s) in {self.where} "
                                 f"have no .ann beside them and were imported unlabelled: "
                                 f"{short_list(self.unannotated, 5)}.")
        self.ctx.close()


def _zip_files(path: Path, ctx: ParseContext) -> dict[str, bytes]:
    def on_error(kind: str, name: str, message: str) -> None:
        ctx.report.add(Issue("error", f"brat_{kind}", message, task=f"File {name}"))

    wanted = {n for n in zip_member_names(path) if PurePosixPath(n).suffix.lower() in (TEXT, ANN)}
    return {name: data for name, data in iter_members(path, path.name, on_error) if name in wanted}


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
