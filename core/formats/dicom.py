"""Read report text out of DICOM Structured Reports (SR) into :class:`ParsedTask` objects.

``iter_dicom(path, issues)`` accepts a single file, a folder (walked recursively) or a ``.zip`` (members are read in
memory, never extracted). Each readable SR becomes one task whose text is rendered from the SR content tree:

- a CONTAINER with a concept name becomes a heading line (``FINDINGS:``); its content is indented two spaces per level;
- TEXT gives its text value; CODE gives ``Concept: Meaning``; NUM gives ``Concept: value unit``;
  DATE/TIME/DATETIME give ``Concept: 2000-12-06``;
- inside a CONTINUOUS container, consecutive TEXT/NUM items are one sentence (``A mass of 3 cm was detected.``).

Left out on purpose: observation-context items (``HAS OBS CONTEXT``: observer and subject names, ids, device UIDs),
PNAME values, UID references, image/waveform/coordinate references and the "language of content" modifier. Patient
identifying attributes (name, id, birth date...) are never read into the text or ``meta``.

Batch policy: one bad file never stops the batch, and only a missing path raises.
- In a folder or zip, files without the DICOM preamble (``DICM`` at byte 128), whatever their extension, are skipped
  and summed up in one ``dicom_skipped_files`` info issue; so are DICOMDIR index files. A path given directly is
  always tried as DICOM.
- A file with the preamble that cannot be parsed (corrupt, truncated) gives an error ``file_unreadable``.
- A DICOM object without report text (an image, an SR without TEXT/CODE/NUM content) gives ``dicom_no_text``, naming
  its SOP class.
- A zip member over :data:`~core.formats.archive.MAX_MEMBER_BYTES`, or a zip unpacking to over
  :data:`~core.formats.archive.MAX_ZIP_TOTAL_BYTES`, gives ``file_too_large`` (codes: ``docs/issue-codes.md``).
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError

from core.errors import IssueCode
from core.formats.archive import iter_members
from core.formats.labelconfig import LabelConfig
from core.formats.report import ParseReport
from core.types import Issue, ParsedTask, ReportLensError

NAME = "dicom"
SUFFIXES = (".dcm", ".dicom")
MAGIC_OFFSET = 128
MAGIC = b"DICM"
INDENT = "  "
_SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."  # all Structured Report storage SOP classes
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory: the index of a DICOM CD/folder, no report

# fmt: off
# What pydicom (or a damaged zip) raises for bad input; named so real bugs still surface.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    InvalidDicomError, BytesLengthException, OSError, EOFError, ValueError, KeyError, IndexError, TypeError,
    NotImplementedError, RecursionError, struct.error,
)
_SKIP_RELATIONSHIPS = {"HAS OBS CONTEXT"}  # observer / subject context: names, ids, device UIDs
_SKIP_CONCEPTS = {("DCM", "121049")}  # Language of Content Item and Descendants
_UNIT_ALIASES = {"[hnsf'U]": "HU", "{beats}/min": "bpm"}
_PLAIN_UNIT = re.compile(r"[A-Za-z0-9%/.]+")
_META_FIELDS = (  # (meta key, DICOM keyword); nothing that identifies the patient
    ("study_description", "StudyDescription"), ("series_description", "SeriesDescription"), ("modality", "Modality"),
    ("study_date", "StudyDate"), ("content_date", "ContentDate"), ("completion_flag", "CompletionFlag"),
    ("verification_flag", "VerificationFlag"), ("sop_instance_uid", "SOPInstanceUID"), ("sop_class_uid", "SOPClassUID"),
)
# fmt: on


# ---------------------------------------------------------------------------------------------------------------
# rendering


def _code_meaning(seq: Any) -> str:
    return str(seq[0].get("CodeMeaning", "") or "").strip() if seq else ""


def _concept(item: Dataset) -> str:
    return _code_meaning(item.get("ConceptNameCodeSequence"))


def _skipped(item: Dataset) -> bool:
    if item.get("RelationshipType") in _SKIP_RELATIONSHIPS:
        return True
    names = item.get("ConceptNameCodeSequence")
    if names:
        code = (str(names[0].get("CodingSchemeDesignator", "")), str(names[0].get("CodeValue", "")))
        return code in _SKIP_CONCEPTS
    return False


def _clean_text(value: Any) -> str:
    text = str(value or "").replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _unit(mv: Dataset) -> str:
    seq = mv.get("MeasurementUnitsCodeSequence")
    if not seq:
        return ""
    code = str(seq[0].get("CodeValue", "") or "")
    if code in _UNIT_ALIASES:
        return _UNIT_ALIASES[code]
    if code == "1" and seq[0].get("CodingSchemeDesignator") == "UCUM":
        return ""  # unity: a plain number
    if code and _PLAIN_UNIT.fullmatch(code):
        return code
    return _code_meaning(seq)


def _num_value(item: Dataset) -> str:
    mvs = item.get("MeasuredValueSequence")
    if not mvs:
        return ""
    mv = mvs[0]
    value = mv.get("NumericValue")
    if value is None or str(value) == "":
        fp = mv.get("FloatingPointValue")
        value = "" if fp is None else f"{float(fp):g}"
    value = str(value).strip()
    if not value:
        return ""
    unit = _unit(mv)
    return f"{value} {unit}" if unit else value


def _format_date(value: str) -> str:
    v = value.strip()
    return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) >= 8 and v[:8].isdigit() else v


def _format_time(value: str) -> str:
    v = value.strip()
    return ":".join([v[0:2], v[2:4]] + ([v[4:6]] if len(v) >= 6 else [])) if v[:4].isdigit() and len(v) >= 4 else v


def _inline_value(item: Dataset) -> str:
    """The value of a non-container item as text, or '' when it has none worth showing."""
    vt = item.get("ValueType")
    if vt == "TEXT":
        return _clean_text(item.get("TextValue"))
    if vt == "CODE":
        return _code_meaning(item.get("ConceptCodeSequence"))
    if vt == "NUM":
        return _num_value(item)
    if vt == "DATE":
        return _format_date(str(item.get("Date", "") or ""))
    if vt == "TIME":
        return _format_time(str(item.get("Time", "") or ""))
    if vt == "DATETIME":
        v = str(item.get("DateTime", "") or "").strip()
        return f"{_format_date(v[:8])} {_format_time(v[8:])}".strip() if len(v) > 8 else _format_date(v)
    return ""  # PNAME, UIDREF, IMAGE, COMPOSITE, WAVEFORM, SCOORD, SCOORD3D, TCOORD: not report text


def _item_line(item: Dataset) -> str:
    value = _inline_value(item)
    if not value or item.get("ValueType") == "TEXT":
        return value
    name = _concept(item)
    return f"{name}: {value}" if name else value


def _emit(lines: list[str], text: str, depth: int) -> None:
    lines.extend(INDENT * depth + line if line else "" for line in text.split("\n"))


def _render_items(items: Iterable[Dataset], continuous: bool, depth: int, lines: list[str]) -> None:
    run: list[Dataset] = []

    def flush() -> None:
        if any(it.get("ValueType") == "TEXT" for it in run):
            sentence = " ".join(v for v in (_inline_value(it) for it in run) if v)
            _emit(lines, sentence, depth)
            for it in run:
                _render_items(it.get("ContentSequence") or [], False, depth + 1, lines)
        else:
            for it in run:
                _render_item(it, depth, lines)
        run.clear()

    for item in items:
        if _skipped(item):
            continue
        if continuous and item.get("ValueType") in ("TEXT", "NUM"):
            run.append(item)
            continue
        flush()
        _render_item(item, depth, lines)
    flush()


def _render_item(item: Dataset, depth: int, lines: list[str]) -> None:
    children = item.get("ContentSequence") or []
    if item.get("ValueType") == "CONTAINER":
        name = _concept(item)
        mark = len(lines)
        if name:
            if depth == 0 and lines and lines[-1]:
                lines.append("")
            lines.append(f"{INDENT * depth}{name.upper()}:")
        heading_end = len(lines)
        _render_items(children, item.get("ContinuityOfContent") == "CONTINUOUS", depth + 1 if name else depth, lines)
        if len(lines) == heading_end:  # an empty section: drop its heading too
            del lines[mark:]
        return
    line = _item_line(item)
    if line:
        _emit(lines, line, depth)
    _render_items(children, False, depth + 1 if line else depth, lines)


def sr_to_text(ds: Dataset) -> str:
    """Render the content tree of an SR dataset as report text ('' when it holds no text)."""
    lines: list[str] = []
    _render_items(ds.get("ContentSequence") or [], ds.get("ContinuityOfContent") == "CONTINUOUS", 0, lines)
    text = "\n".join(lines).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text)


def sop_class_name(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    if not uid:
        return "unknown SOP class"
    name = getattr(uid, "name", "") or ""
    return f"{name} ({uid})" if name and name != str(uid) else str(uid)


def dicom_meta(ds: Dataset, file_name: str) -> dict[str, Any]:
    """Descriptive, non-identifying fields for ``ParsedTask.meta`` (JSON-serialisable strings)."""
    meta: dict[str, Any] = {"source": "dicom", "file_name": file_name}
    for key, keyword in _META_FIELDS:
        value = ds.get(keyword)
        if value is not None and str(value).strip():
            meta[key] = _format_date(str(value)) if key.endswith("_date") else str(value).strip()
    if ds.get("SOPClassUID") is not None:
        meta["sop_class"] = getattr(ds.SOPClassUID, "name", str(ds.SOPClassUID))
    title = _concept(ds)
    if title:
        meta["document_title"] = title
    return meta


# ---------------------------------------------------------------------------------------------------------------
# reading


def _truncation(ds: Dataset) -> str | None:
    """Why ``ds`` looks cut short, or None. pydicom reads short values silently at end of file."""
    if "SOPClassUID" not in ds:
        return "no SOP Class UID was found after the file meta header; the file is probably truncated"
    last = list(ds.keys())[-1]
    raw = ds.get_item(last)
    if isinstance(raw, RawDataElement) and raw.value is not None and raw.length != 0xFFFFFFFF:
        if len(raw.value) < raw.length:
            return f"element {last} declares {raw.length} bytes but only {len(raw.value)} are present (truncated file)"
    return None


def _has_magic(head: bytes) -> bool:
    return len(head) >= MAGIC_OFFSET + 4 and head[MAGIC_OFFSET : MAGIC_OFFSET + 4] == MAGIC


def _reason(exc: BaseException) -> str:
    message = str(exc).split(" Use force=True")[0].rstrip(". ")
    kind = "malformed data" if isinstance(exc, struct.error) else type(exc).__name__
    return f"{kind}: {message}"


class _Reader:
    """One batch: appends issues, numbers the tasks, collects the names of non-DICOM files it skipped."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        self.position = 0
        self.skipped: list[str] = []

    def error(self, code: IssueCode, name: str, **fields: str) -> None:
        self.issues.append(Issue.of(code, task=f"File {name}", **fields))

    def parse(self, fp: BinaryIO, name: str, where: str) -> Iterator[ParsedTask]:
        """Parse one DICOM stream; yield its task or record why not. ``where`` names it in messages."""
        try:
            ds = pydicom.dcmread(fp, force=False, stop_before_pixels=True)
            if ds.file_meta.get("MediaStorageSOPClassUID") == _DICOMDIR_CLASS:
                self.skipped.append(f"{name} (DICOMDIR index)")
                return
            problem = _truncation(ds)
            text = "" if problem else sr_to_text(ds)
            meta = {} if problem else dicom_meta(ds, Path(name).name)
        except _READ_ERRORS as exc:
            problem = _reason(exc)
        if problem:
            self.error(IssueCode.FILE_UNREADABLE, name, where=where, problem=f"could not be read as DICOM ({problem})",
                       fix="Re-export it from the PACS or remove it from the batch.")
            return
        if not text:
            has_content = "ContentSequence" in ds
            why = "its SR content holds no TEXT, CODE or NUM items" if has_content else "it has no SR ContentSequence"
            fix = "Only DICOM Structured Reports carry report text; import the study's SR instead."
            if not has_content and str(ds.get("SOPClassUID", "")).startswith(_SR_CLASS_PREFIX):
                fix = "An SR without content is usually a truncated file: copy or export it again."
            self.error(IssueCode.DICOM_NO_TEXT, name, where=where, sop_class=sop_class_name(ds), why=why, fix=fix)
            return
        yield ParsedTask(text=text, task_id=None, meta=meta, position=self.position, source_name=name)
        self.position += 1

    def head(self, path: Path, name: str) -> bytes | None:
        try:
            with open(path, "rb") as fp:
                return fp.read(MAGIC_OFFSET + 4)
        except OSError as exc:
            self.error(IssueCode.FILE_UNREADABLE, name, where=f"File {name}", problem=f"could not be opened ({exc})",
                       fix="Check that the file exists and can be read, then import again.")
            return None

    def file(self, path: Path, name: str) -> Iterator[ParsedTask]:
        with open(path, "rb") as fp:
            yield from self.parse(fp, name, f"File {name}")

    def folder(self, root: Path) -> Iterator[ParsedTask]:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = path.relative_to(root).as_posix()
            head = self.head(path, name)
            if head is not None and _has_magic(head):
                yield from self.file(path, name)
            elif head is not None:
                self.skipped.append(name)

    def zip(self, source: str | Path | BinaryIO, zip_name: str) -> Iterator[ParsedTask]:
        for name, data in iter_members(source, zip_name, self.issues.append):
            if _has_magic(data):
                yield from self.parse(io.BytesIO(data), name, f"Member {name} of {zip_name}")
            else:
                self.skipped.append(name)

    def report_skipped(self, where: str) -> None:
        if self.skipped:
            more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            self.issues.append(Issue.of(IssueCode.DICOM_SKIPPED_FILES, n=len(self.skipped), where=where,
                                        names=f"{', '.join(self.skipped[:5])}{more}"))


def iter_dicom(path: str | os.PathLike[str], report_issues: list[Issue]) -> Iterator[ParsedTask]:
    """Yield one :class:`ParsedTask` per readable DICOM SR under ``path`` (file, folder or zip).

    Problems are appended to ``report_issues`` (policy in the module docstring); only a missing path raises.
    """
    p = Path(path)
    reader = _Reader(report_issues)
    if p.is_dir():
        yield from reader.folder(p)
        reader.report_skipped(f"folder {p.name}")
    elif not p.is_file():
        raise ReportLensError(f"DICOM path {str(p)!r} does not exist or is not a file or folder; check the path.")
    elif (head := reader.head(p, p.name)) is None:
        return
    elif not _has_magic(head) and zipfile.is_zipfile(p):
        yield from reader.zip(p, p.name)
        reader.report_skipped(p.name)
    else:
        yield from reader.file(p, p.name)
        reader.report_skipped(p.name)


def iter_dicom_bytes(data: bytes, name: str, report_issues: list[Issue]) -> Iterator[ParsedTask]:
    """Same as :func:`iter_dicom` for an upload held in memory (one DICOM file or a zip of them)."""
    reader = _Reader(report_issues)
    if not _has_magic(data) and data.startswith(b"PK"):
        yield from reader.zip(io.BytesIO(data), name)
        reader.report_skipped(name)
    else:
        yield from reader.parse(io.BytesIO(data), name, f"File {name}")
        reader.report_skipped(name)


def sniff(path: Path) -> bool:
    """A ``.dcm``/``.dicom`` file, a file with the ``DICM`` preamble, a folder, or a zip (brat, asked first, takes
    the folders and zips that hold ``.ann`` files)."""
    if path.is_dir():
        return True
    if not path.is_file():
        return False
    if path.suffix.lower() in SUFFIXES:
        return True
    with path.open("rb") as fh:
        if _has_magic(fh.read(MAGIC_OFFSET + 4)):
            return True
    return zipfile.is_zipfile(path)


def read(path: Path, config: LabelConfig | None, report: ParseReport) -> Iterator[ParsedTask]:
    """One task per readable SR; the labeling config does not apply (SR files carry no labels)."""
    return iter_dicom(path, report.issues)
