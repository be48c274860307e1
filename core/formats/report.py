"""What every format reader fills in (:class:`ParseReport`), and the file and encoding checks they share."""

from __future__ import annotations

import codecs
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.errors import IssueCode
from core.formats.labelconfig import LabelConfig
from core.types import Issue, IssueLevel, ReportLensError

UTF8_BOM = codecs.BOM_UTF8
CHUNK = 1 << 16


@dataclass
class ParseReport:
    """What the parser found, filled in while it streams. ``config`` is set when parsing ends."""

    issues: list[Issue] = field(default_factory=list)
    format: str = ""
    config: LabelConfig | None = None
    tasks_seen: int = 0
    spans_seen: int = 0
    repaired: int = 0
    tasks_skipped: int = 0
    bytes_read: int = 0  # how far the reader got, for progress bars (JSON exports)

    def add(self, issue: Issue) -> None:
        self.issues.append(issue)

    def note(self, code: IssueCode, task: str | None = None, **fields: Any) -> None:
        """Add an issue of ``code`` built from its message template (``fields``, and ``level=`` to override)."""
        self.issues.append(Issue.of(code, task=task, **fields))

    def by_level(self, level: IssueLevel) -> list[Issue]:
        return [i for i in self.issues if i.level == level]

    @property
    def errors(self) -> list[Issue]:
        return self.by_level("error")

    @property
    def warnings(self) -> list[Issue]:
        return self.by_level("warning")

    def codes(self) -> Counter[IssueCode | str]:
        return Counter(i.code for i in self.issues)

    def summary(self) -> str:
        levels = Counter(i.level for i in self.issues)
        return (
            f"{self.format or 'unknown'} export: {self.tasks_seen} tasks read, {self.tasks_skipped} skipped, "
            f"{self.spans_seen} spans, {self.repaired} repaired; {levels['error']} errors, "
            f"{levels['warning']} warnings, {levels['info']} notes."
        )


# ---------------------------------------------------------------- encoding


def encoding_error(path: Path, offset: int, detail: str = "") -> ReportLensError:
    return ReportLensError(
        f"{path.name} is not valid UTF-8 at byte {offset}{detail}. Re-save the file as UTF-8 (or export it from "
        "Label Studio again) and retry."
    )


class Utf8Reader:
    """A binary reader that skips a UTF-8 BOM and raises :class:`ReportLensError` at the first non-UTF-8 byte.

    ``offset`` (bytes from the start of the file) and ``lines`` (newlines) count what was read, for messages.
    """

    def __init__(self, raw: IO[bytes], path: Path) -> None:
        self._raw, self._path = raw, path
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.bom = raw.read(len(UTF8_BOM)) == UTF8_BOM
        if not self.bom:
            raw.seek(0)
        self.offset = len(UTF8_BOM) if self.bom else 0
        self.lines = 0

    def read(self, size: int = CHUNK) -> bytes:
        if size == 0:  # ijson probes the stream type with read(0)
            return b""
        data = self._raw.read(size if size and size > 0 else CHUNK)
        pending = len(self._decoder.getstate()[0])  # bytes of a character split across chunks
        try:
            self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            line = self.lines + data[: max(0, exc.start - pending)].count(b"\n") + 1
            raise encoding_error(self._path, self.offset - pending + exc.start, f" (line {line})") from exc
        self.offset += len(data)
        self.lines += data.count(b"\n")
        return data


def check_source(path: Any) -> Path:
    """``path`` as a :class:`Path` when it is a file or a folder; else a :class:`ReportLensError` that says what it
    is: missing, a symbolic link loop or to nothing, a device, pipe or socket (``/dev/null``)."""
    p = Path(path)
    try:
        p.stat()
    except RuntimeError:  # pathlib's "Symlink loop" on some versions
        raise ReportLensError(f"{p} is a symbolic link loop (it points, through links, back to itself); give the "
                              "path of the export itself.") from None
    except OSError as exc:
        if p.is_symlink():
            loop = exc.errno == 40  # ELOOP
            what = "a symbolic link loop (it points, through links, back to itself)" if loop else (
                "a symbolic link to something that does not exist")
            raise ReportLensError(f"{p} is {what}; give the path of the export itself.") from None
        raise ReportLensError(f"No such file: {p}. Check the path and try again.") from None
    if not p.is_file() and not p.is_dir():
        raise ReportLensError(f"{p} is not a regular file or folder (a device, pipe or socket); save the export as a "
                              "file and import that.")
    return p


def check_path(path: Any) -> Path:
    p = check_source(path)
    if not p.is_file():
        raise ReportLensError(f"{p} is a folder, not an export file; choose the .json or .conll file inside it.")
    return p


# compressed or binary files people pick by mistake: their first bytes, and what they are
MAGIC = ((b"\x1f\x8b", "gzip-compressed (.gz)", "unpack it first (gunzip FILE, or double-click it)"),
         (b"BZh", "bzip2-compressed (.bz2)", "unpack it first (bunzip2 FILE)"),
         (b"\xfd7zXZ\x00", "xz-compressed (.xz)", "unpack it first (unxz FILE)"),
         (b"\x28\xb5\x2f\xfd", "zstd-compressed (.zst)", "unpack it first (unzstd FILE)"),
         (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "unpack it, or zip the files instead"),
         (b"%PDF-", "a PDF document", "export the annotations from Label Studio instead"))


def binary_kind(head: bytes) -> tuple[str, str] | None:
    """(what, how to fix) when ``head`` (a file's first bytes) is a compressed file, an archive or a PDF."""
    for magic, what, fix in MAGIC:
        if head.startswith(magic):
            return what, fix
    return None


def refuse_binary(path: Path, head: bytes) -> None:
    kind = binary_kind(head)
    if kind:
        raise ReportLensError(f"{path.name} is {kind[0]}, not an export; {kind[1]} and import the file inside.")


def first_char(path: Path) -> tuple[str, bytes]:
    """The first non-whitespace character (after a BOM) and the bytes from there on (up to one chunk)."""
    with path.open("rb") as raw:
        head = raw.read(8)
        refuse_binary(path, head)
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            raise encoding_error(path, 0, " (it is UTF-16 encoded, as some Windows editors save files)")
        raw.seek(len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0)
        while chunk := raw.read(CHUNK):
            stripped = chunk.lstrip()
            if stripped:
                rest = stripped + raw.read(CHUNK)
                return rest[:4].decode("utf-8", errors="ignore")[:1], rest
    raise ReportLensError(f"{path.name} is empty; export the project from Label Studio again.")
