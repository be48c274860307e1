"""CoNLL-2003 files (Label Studio's CONLL2003 export, or classic CoNLL) back into texts and character spans.

The original spacing is lost in CoNLL, so the text is rebuilt: tokens joined by one space, sentences by a
newline. Label Studio writes one ``-DOCSTART-`` line at the top and one blank-line separated block per task;
classic CoNLL-2003 starts every document with ``-DOCSTART-`` and separates sentences with blank lines.
:func:`sniff` and :func:`read` (ReportLens never writes CoNLL: convert from the JSON export's character spans).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import IssueCode
from core.formats.labelconfig import LabelConfig
from core.formats.lsresults import ParseContext, unknown_span
from core.formats.report import UTF8_BOM, ParseReport, check_path, encoding_error, first_char
from core.types import Annotation, Issue, ParsedTask, ReportLensError, Span, snippet

NAME = "conll"
DOCSTART = "-DOCSTART-"
STARTS, INSIDE, ENDS = "BSU", "IEL", "ESLU"


@dataclass
class _Doc:
    first_line: int
    sentences: list[list[tuple[str, str]]] = field(default_factory=list)
    current: list[tuple[str, str]] = field(default_factory=list)

    def end_sentence(self) -> None:
        if self.current:
            self.sentences.append(self.current)
            self.current = []

    @property
    def empty(self) -> bool:
        return not self.sentences and not self.current


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` (a line's last column) is not a tag of the BIO / IOBES / IO schemes, or ``None`` when it is."""
    if tag in ("O", "_"):
        return None
    prefix, sep, label = tag.partition("-")
    if not sep:
        return "it has no B-/I-/E-/S- prefix (tags are O, or a prefix and a label such as B-DRUG)"
    if len(prefix) != 1 or prefix not in STARTS + INSIDE:
        return f"its prefix {prefix + '-'!r} is not one of {', '.join(p + '-' for p in sorted(set(STARTS + INSIDE)))}"
    if not label:
        return f"it has no label after {prefix + '-'!r}"
    return None


def _bad_tag(path: Path, lineno: int, line: bytes, tag: str, problem: str) -> ReportLensError:
    shown = line.decode("utf-8", errors="replace").strip()[:60]
    return ReportLensError(
        f"{path.name} line {lineno}: the last column {tag!r} of {shown!r} is not a tag: {problem}. A CoNLL file ends "
        "each token line with its tag, so this is not a CoNLL export (a plain-text report?): import the Label Studio "
        "JSON export instead, or fix the tag."
    )


def _scan(path: Path) -> tuple[int, bool]:
    """How many ``-DOCSTART-`` lines the file has, and whether any tag starts with ``B-`` (else IO tagging); a last
    column that is not a tag (:func:`tag_problem`) raises, naming the line."""
    docstarts, has_begin = 0, False
    with path.open("rb") as raw:
        for lineno, line in enumerate(raw, 1):
            cols = line.split()
            if not cols:
                continue
            if cols[0].lstrip(UTF8_BOM) == DOCSTART.encode():
                docstarts += 1
            elif len(cols) > 1:
                tag = cols[-1].decode("utf-8", errors="replace")
                problem = tag_problem(tag)
                if problem:
                    raise _bad_tag(path, lineno, line, tag, problem)
                has_begin = has_begin or tag[:2] in ("B-", "S-", "U-")
    return docstarts, has_begin


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, decoded line) pairs; non-UTF-8 bytes raise with their byte offset."""
    offset = 0
    with path.open("rb") as raw:
        for lineno, line in enumerate(raw, 1):
            body = line[len(UTF8_BOM) :] if lineno == 1 and line.startswith(UTF8_BOM) else line
            start = offset + len(line) - len(body)
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise encoding_error(path, start + exc.start, f" (line {lineno})") from exc
            offset += len(line)
            yield lineno, text.rstrip("\r\n")


def parse_tag(tag: str) -> tuple[str, str] | None:
    """``B-DRUG`` -> ``("B", "DRUG")``; ``O`` -> ``None``; an unprefixed tag is read as IO (``("I", tag)``)."""
    if tag in ("O", "_", ""):
        return None
    prefix, sep, label = tag.partition("-")
    if sep and len(prefix) == 1 and prefix in STARTS + INSIDE and label:
        return prefix, label
    return "I", tag


def tags_to_spans(
    offsets: list[tuple[int, int]], tags: list[str], breaks: set[int]
) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]:
    """Character spans from per-token tags (BIO, IO, BIOES), and the entities that began with ``I-``.

    ``breaks`` holds the token indexes that start a sentence; no entity crosses one.
    """
    spans: list[list] = []
    orphans: list[list] = []
    current: list | None = None
    for i, ((start, end), tag) in enumerate(zip(offsets, tags, strict=True)):
        parsed = parse_tag(tag)
        if parsed and parsed[0] in INSIDE and current and current[2] == parsed[1] and i not in breaks:
            current[1] = end
        else:
            current = None
            if parsed:
                current = [start, end, parsed[1]]
                spans.append(current)
                if parsed[0] in INSIDE:
                    orphans.append(current)
        if parsed and parsed[0] in ENDS:
            current = None
    return [tuple(s) for s in spans], [tuple(s) for s in orphans]  # type: ignore[misc]


def rebuild(sentences: list[list[tuple[str, str]]]) -> tuple[str, list[tuple[int, int]], list[str], set[int]]:
    """The text (tokens joined by spaces, sentences by newlines), token offsets, tags and sentence starts."""
    parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    tags: list[str] = []
    breaks: set[int] = set()
    pos = 0
    for si, sentence in enumerate(sentences):
        breaks.add(len(offsets))
        for ti, (token, tag) in enumerate(sentence):
            sep = ("\n" if si else "") if ti == 0 else " "
            parts.append(sep + token)
            pos += len(sep)
            offsets.append((pos, pos + len(token)))
            tags.append(tag)
            pos += len(token)
    return "".join(parts), offsets, tags, breaks


def _doc_task(doc: _Doc, position: int, ctx: ParseContext, io_tagging: bool) -> ParsedTask:
    doc.end_sentence()
    text, offsets, tags, breaks = rebuild(doc.sentences)
    found, orphans = tags_to_spans(offsets, tags, breaks)
    ref = ParsedTask(text="", position=position).ref
    spans = []
    ctx.report.spans_seen += len(found)
    for start, end, label in found:
        if not ctx.known_span(label):
            unknown_span(label, (start, end, label), text, ref, ctx)
            continue
        ctx.tally.add_span(label)
        spans.append(Span(start, end, label))
    if orphans and not io_tagging:
        s, e, label = orphans[0]
        ctx.report.add(
            Issue.of(
                IssueCode.ORPHAN_INSIDE,
                task=ref,
                span=(s, e, label),
                snippet=snippet(text, s, e),
                line=doc.first_line, n=len(orphans), start=s, end=e, label=label, text=text[s:e],
            )
        )
    return ParsedTask(
        text=text,
        task_id=None,
        meta={"conll_line": doc.first_line},
        annotations=(Annotation(source="human", spans=tuple(spans)),),
        position=position,
    )


def _mode_note(ctx: ParseContext, docstarts: int, io_tagging: bool) -> None:
    if docstarts <= 1:
        how = "each blank-line separated block is one task (as Label Studio writes its CONLL2003 export)"
    else:
        how = "each -DOCSTART- document is one task, its sentences joined by newlines"
    io = " No 'B-' tags: read as IO tagging, so touching entities with the same label merge." if io_tagging else ""
    ctx.report.note(IssueCode.CONLL_LAYOUT, docstarts=docstarts, how=how, io=io)


def _looks_like_conll(rest: bytes) -> bool:
    line = rest.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    return line.startswith(DOCSTART) or len(line.split()) >= 2


def sniff(path: Path) -> bool:
    """A text file whose first line is ``-DOCSTART-`` or has two or more columns (``token ... TAG``). The registry
    asks the JSON formats first, so a file that parses as JSON is never read as CoNLL."""
    return path.is_file() and _looks_like_conll(first_char(path)[1])


def read(path: Path, config: LabelConfig | None, report: ParseReport) -> Iterator[ParsedTask]:
    """Stream the documents of a CoNLL file as tasks with one human annotation each."""
    return _read(check_path(path), ParseContext(config, report))


def _read(path: Path, ctx: ParseContext) -> Iterator[ParsedTask]:
    docstarts, has_begin = _scan(path)
    by_block = docstarts <= 1
    io_tagging = not has_begin
    _mode_note(ctx, docstarts, io_tagging)
    doc: _Doc | None = None
    position = 0
    for lineno, line in _lines(path):
        cols = line.split()
        boundary = bool(cols) and cols[0] == DOCSTART
        if doc is not None and (boundary or (by_block and not cols)):
            if not doc.empty:
                ctx.report.tasks_seen += 1
                yield _doc_task(doc, position, ctx, io_tagging)
                position += 1
            doc = None
        if boundary:
            continue
        if not cols:
            if doc is not None:
                doc.end_sentence()
            continue
        if len(cols) == 1:
            ctx.report.note(IssueCode.BAD_LINE, level="warning", where=f"Line {lineno}", line=line.strip(),
                            expected="'token ... TAG' (it has one column)", outcome="read it as an untagged token")
        doc = doc or _Doc(first_line=lineno)
        doc.current.append((cols[0], cols[-1] if len(cols) > 1 else "O"))
    if doc is not None and not doc.empty:
        ctx.report.tasks_seen += 1
        yield _doc_task(doc, position, ctx, io_tagging)
    ctx.close()
