"""The one list of import formats: what each is called, which files it reads, how it is recognised and read.

The Import page's upload types and caption, ``cli.py import``'s help and the format dispatch of every import path
(``services/imports.py``, ``cli.py convert / predict / evaluate``) come from :data:`FORMATS`. Sniffing asks the
formats in order; the first whose ``sniff`` says yes reads the file:

1. brat (a folder or zip holding ``.ann`` files, an ``.ann``, a ``.txt`` with its ``.ann``);
2. DICOM SR (``.dcm``, the ``DICM`` preamble, any other folder or zip);
3. JSON-MIN, then Label Studio full JSON: every file that parses as JSON is one of these, so a JSON string, number
   or ``null`` is refused as "not Label Studio tasks" and never read as CoNLL;
4. CoNLL-2003 (lines of ``token ... TAG``).
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from core import limits
from core.errors import IssueCode
from core.formats.labelconfig import LabelConfig
from core.formats.report import ParseReport, check_source, first_char
from core.types import ParsedTask, ReportLensError

# files a folder or zip may hold that are exports of another format, not DICOM or brat files
EXPORT_SUFFIXES = (".json", ".jsonl", ".conll", ".conll2003", ".csv", ".tsv")


@dataclass(frozen=True)
class FormatSpec:
    """One import format: ``module`` (imported when first used, so listing formats stays cheap) has ``sniff`` and
    ``read``, and ``write`` where ReportLens writes the format. ``source`` is the stored documents' source."""

    name: str  # as ``ParseReport.format`` and the import history show it
    title: str
    extensions: tuple[str, ...]  # upload types (no dot)
    description: str
    source: str
    module: str

    def _module(self) -> ModuleType:
        return importlib.import_module(self.module)

    def sniff(self, path: Path) -> bool:
        return bool(self._module().sniff(path))

    def read(self, path: Path, config: LabelConfig | None, report: ParseReport) -> Iterator[ParsedTask]:
        return self._module().read(path, config, report)

    @property
    def write(self) -> Callable[..., list[dict[str, Any]]] | None:
        return getattr(self._module(), "write", None)


FORMATS: tuple[FormatSpec, ...] = (
    FormatSpec("brat", "brat", ("txt", "ann", "zip"), ".txt/.ann pairs: several files, a folder or a .zip", "brat",
               "core.formats.brat"),
    FormatSpec("dicom", "DICOM SR", ("dcm", "dicom", "zip"), "Structured Reports: .dcm files, a folder or a .zip",
               "dicom", "core.formats.dicom"),
    FormatSpec("json-min", "JSON-MIN", ("json",), "Label Studio's flat export, one row per task", "labelstudio",
               "core.formats.jsonmin"),
    FormatSpec("json", "Label Studio full JSON", ("json",), "the export with annotations and predictions",
               "labelstudio", "core.formats.labelstudio"),
    FormatSpec("conll", "CONLL2003", ("conll", "txt"), "Label Studio's CONLL2003 export or classic CoNLL",
               "labelstudio", "core.formats.conll"),
)
NAMES: tuple[str, ...] = tuple(f.name for f in FORMATS)


def upload_types() -> list[str]:
    """Every file type some format reads, for the Import page's uploader."""
    return list(dict.fromkeys(ext for f in FORMATS for ext in f.extensions))


def by_name(name: str) -> FormatSpec:
    for spec in FORMATS:
        if spec.name == name:
            return spec
    raise ReportLensError(f"Unknown export format {name!r}; choose one of {', '.join(NAMES)}.")


def _path(path: Any) -> Path:
    return check_source(path)


def _container_files(p: Path) -> list[str] | None:
    """The files of a folder or zip (names), ``None`` for a plain file."""
    if p.is_dir():
        return [str(f.relative_to(p)) for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")]
    if p.suffix.lower() == ".zip" or zipfile.is_zipfile(p):
        from core.formats.archive import zip_member_names

        return zip_member_names(p) if zipfile.is_zipfile(p) else None
    return None


def _check_container(p: Path) -> None:
    """Refuse an empty folder or zip, and one that holds only exports (a JSON file...) and no DICOM: those are
    imported as files, and reading them as DICOM would import nothing without saying why."""
    names = _container_files(p)
    if names is None:
        return
    kind = "folder" if p.is_dir() else "zip archive"
    if not names:
        raise ReportLensError(f"The {kind} {p.name} is empty; choose the export file, or a folder or zip of DICOM SR "
                              "or brat (.txt/.ann) files.")
    suffixes = [PurePosixPath(n).suffix.lower() for n in names]
    exports = [n for n, suf in zip(names, suffixes, strict=True) if suf in EXPORT_SUFFIXES]
    # DICOM files often have no suffix; brat's come as .ann
    other_format = any(suf in ("", ".dcm", ".dicom", ".ann") for suf in suffixes)
    if exports and not other_format:
        shown = ", ".join(sorted(exports)[:3]) + (" ..." if len(exports) > 3 else "")
        raise ReportLensError(f"The {kind} {p.name} holds {len(exports)} export file(s) ({shown}), not DICOM SR or "
                              "brat files; import each export file itself (ReportLens reads a folder or zip only "
                              "of .dcm or .txt/.ann files).")


def detect(path: Any) -> FormatSpec:
    """The format of ``path`` (a file or folder), or a :class:`ReportLensError` naming what it found."""
    p = _path(path)
    _check_container(p)
    for spec in FORMATS:
        if spec.sniff(p):
            return spec
    from core.formats.jsonstream import JSON_SCALAR_STARTS, char_kind, shape_error

    char, rest = first_char(p)
    if char in JSON_SCALAR_STARTS:
        raise shape_error(p, char_kind(char))
    start = rest[:40].decode("utf-8", errors="replace")
    known = "; ".join(f"{f.title} ({f.description})" for f in FORMATS)
    raise ReportLensError(f"Cannot tell the format of {p.name}: it starts with {start!r}. ReportLens reads: {known}.")


def iter_tasks(path: Any, config: LabelConfig | None = None, report: ParseReport | None = None,
               fmt: str | None = None) -> Iterator[ParsedTask]:
    """Stream the usable tasks of a file or folder in any format; problems go to ``report`` (pass one in to read
    them). The path and format are checked now (raising :class:`ReportLensError`); each task is read when the
    iterator reaches it, and ``report.config`` is set once it is exhausted."""
    spec = by_name(fmt) if fmt else detect(path)
    report = report if report is not None else ParseReport()
    report.format = spec.name
    return _within_limits(spec.read(_path(path), config, report), report)


def _within_limits(tasks: Iterator[ParsedTask], report: ParseReport) -> Iterator[ParsedTask]:
    """The tasks whose text and spans are within :data:`core.limits.MAX_TEXT_CHARS` and
    :data:`~core.limits.MAX_SPANS_PER_TASK`; the others are skipped with a ``limit_exceeded`` error."""
    max_text, max_spans = limits.MAX_TEXT_CHARS, limits.MAX_SPANS_PER_TASK
    text_limit, span_limit = max_text.value, max_spans.value
    for task in tasks:
        n_spans = sum(len(a.spans) for a in task.annotations)
        if len(task.text) > text_limit:
            lim, what, size = max_text, "the text", f"{len(task.text):,} characters"
        elif n_spans > span_limit:
            lim, what, size = max_spans, "its annotations", f"{n_spans:,} spans"
        else:
            yield task
            continue
        report.tasks_skipped += 1
        report.note(IssueCode.LIMIT_EXCEEDED, task=task.ref, where=task.ref, what=what, size=size,
                    limit=f"{lim.value:,} {lim.unit}", env=lim.env, outcome="task skipped",
                    fix="Split the report into smaller tasks, or raise the limit.")


def parse_export(path: Any, config: LabelConfig | None = None) -> tuple[list[ParsedTask], ParseReport]:
    """All tasks of a (small) file and the report; use :func:`iter_tasks` for large files."""
    report = ParseReport()
    tasks = list(iter_tasks(path, config, report))
    return tasks, report
