"""Reading Label Studio export files safely: the parse report, encoding checks, format sniffing, JSON errors."""

from __future__ import annotations

import codecs
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import ijson

from core.labelconfig import LabelConfig
from core.types import Issue, IssueLevel, ReportLensError

ExportFormat = Literal["json", "json-min", "conll"]
FORMATS: tuple[str, ...] = ("json", "json-min", "conll")
UTF8_BOM = codecs.BOM_UTF8
CHUNK = 1 << 16
MAX_BYTES_FOR_ERROR_POSITION = 256 << 20
_TASK_KEYS = ("data", "annotations", "predictions", "completions")

try:
    JSON_BACKEND: Any = ijson.get_backend("yajl2_c")
except ImportError:  # the pure-Python backend is slower but reads the same files
    JSON_BACKEND = ijson


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

    def note(self, level: IssueLevel, code: str, message: str, task: str | None = None) -> None:
        self.issues.append(Issue(level, code, message, task=task))

    def by_level(self, level: IssueLevel) -> list[Issue]:
        return [i for i in self.issues if i.level == level]

    @property
    def errors(self) -> list[Issue]:
        return self.by_level("error")

    @property
    def warnings(self) -> list[Issue]:
        return self.by_level("warning")

    def codes(self) -> Counter[str]:
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


def check_path(path: Any) -> Path:
    p = Path(path)
    if not p.exists():
        raise ReportLensError(f"No such file: {p}. Check the path and try again.")
    if not p.is_file():
        raise ReportLensError(f"{p} is a folder, not an export file; choose the .json or .conll file inside it.")
    return p


def first_char(path: Path) -> tuple[str, bytes]:
    """The first non-whitespace character (after a BOM) and the bytes from there on (up to one chunk)."""
    with path.open("rb") as raw:
        head = raw.read(4)
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            raise encoding_error(path, 0, " (it is UTF-16 encoded, as some Windows editors save files)")
        raw.seek(len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0)
        while chunk := raw.read(CHUNK):
            stripped = chunk.lstrip()
            if stripped:
                rest = stripped + raw.read(CHUNK)
                return rest[:4].decode("utf-8", errors="ignore")[:1], rest
    raise ReportLensError(f"{path.name} is empty; export the project from Label Studio again.")


# ---------------------------------------------------------------- format detection


def _first_item(path: Path) -> Any:
    with path.open("rb") as raw:
        try:
            return next(iter(JSON_BACKEND.items(Utf8Reader(raw, path), "item", use_float=True)), None)
        except ijson.JSONError:
            return None  # the parser reports the syntax error with its position


def _looks_like_conll(rest: bytes) -> bool:
    line = rest.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    return line.startswith("-DOCSTART-") or len(line.split()) >= 2


def detect_format(path: Any) -> ExportFormat:
    """Sniff whether ``path`` is a Label Studio JSON export, a JSON-MIN export, or a CoNLL-2003 file."""
    p = check_path(path)
    char, rest = first_char(p)
    if char == "{":
        return "json"
    if char == "[":
        item = _first_item(p)
        if isinstance(item, dict) and not any(k in item for k in _TASK_KEYS):
            return "json-min"
        return "json"
    if _looks_like_conll(rest):
        return "conll"
    if char in '"-0123456789' or rest.startswith((b"true", b"false", b"null")):
        raise shape_error(p, char_kind(char))
    start = rest[:40].decode("utf-8", errors="replace")
    raise ReportLensError(
        f"Cannot tell the format of {p.name}: it starts with {start!r}. Expected a Label Studio JSON or JSON-MIN "
        "export (a list starting with '[') or a CoNLL-2003 file (lines of 'token ... TAG', '-DOCSTART-')."
    )


def check_format(fmt: str) -> ExportFormat:
    if fmt not in FORMATS:
        raise ReportLensError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    return fmt  # type: ignore[return-value]


# ---------------------------------------------------------------- JSON shape and syntax errors

_CHAR_KINDS = {'"': "a string", "t": "a boolean", "f": "a boolean", "n": "null"}
_VALUE_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
EXPECTED = (
    'Expected a Label Studio export: a list of tasks like [{"data": {"text": ...}, "annotations": [...]}] '
    '(JSON) or of flat rows (JSON-MIN), or one task object with "data".'
)


def char_kind(char: str) -> str:
    """What a JSON document starting with ``char`` holds, in words."""
    if char and char in "-0123456789":
        return "a number"
    return _CHAR_KINDS.get(char, f"text starting with {char!r}")


def value_kind(value: Any) -> str:
    return _VALUE_KINDS.get(type(value), "a number")


def shape_error(path: Path, found: str) -> ReportLensError:
    return ReportLensError(f"{path.name} holds {found}, not Label Studio tasks. {EXPECTED}")


def _error_position(path: Path) -> tuple[int, int] | None:
    """Line and column of a JSON syntax error, using the stdlib parser (only on the error path, small files)."""
    if path.stat().st_size > MAX_BYTES_FOR_ERROR_POSITION:
        return None
    try:
        json.loads(path.read_bytes().decode("utf-8-sig"))
    except json.JSONDecodeError as exc:
        return exc.lineno, exc.colno
    except (UnicodeDecodeError, RecursionError, ValueError):
        return None
    return None


def syntax_error(path: Path, exc: Exception, items_done: int) -> ReportLensError:
    arg = exc.args[0] if exc.args else str(exc)
    reason = arg.decode("utf-8", errors="replace") if isinstance(arg, bytes) else str(arg)
    reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
    pos = _error_position(path)
    where = f" at line {pos[0]}, column {pos[1]}" if pos else ""
    hint = ""
    if "trailing garbage" in reason:
        hint = " It holds more than one JSON value (JSON Lines?); Label Studio exports one list."
    elif "premature EOF" in reason:
        hint = " The file ends too early: was the download or copy interrupted?"
    return ReportLensError(
        f"{path.name}{where} ({reason}, after {items_done} complete tasks): the file is not valid JSON; "
        f"re-export from Label Studio.{hint}"
    )
