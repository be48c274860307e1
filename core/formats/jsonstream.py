"""Streaming JSON for the Label Studio formats (full JSON, JSON-MIN): items one at a time with ijson, and the
shape and syntax errors (what, where, how to fix) shared by both readers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ijson

from core.errors import IssueCode
from core.formats.labelconfig import short_list
from core.formats.lsresults import ParseContext
from core.formats.report import ParseReport, Utf8Reader
from core.types import ParsedTask, ReportLensError

MAX_BYTES_FOR_ERROR_POSITION = 256 << 20
JSON_SCALAR_STARTS = '"-0123456789tfn'

try:
    JSON_BACKEND: Any = ijson.get_backend("yajl2_c")
except ImportError:  # the pure-Python backend is slower but reads the same files
    JSON_BACKEND = ijson


def first_item(path: Path) -> Any:
    """The first item of a top-level JSON list, or ``None`` (empty list, or a syntax error reported later)."""
    with path.open("rb") as raw:
        try:
            return next(iter(JSON_BACKEND.items(Utf8Reader(raw, path), "item", use_float=True)), None)
        except ijson.JSONError:
            return None  # the parser reports the syntax error with its position


def is_one_json_value(path: Path) -> bool:
    """True when the whole file is exactly one JSON value (a string, number, ``null``... included)."""
    with path.open("rb") as raw:
        try:
            for _ in JSON_BACKEND.parse(Utf8Reader(raw, path)):
                pass
        except ijson.JSONError:
            return False
    return True


# ---------------------------------------------------------------- shape and syntax errors

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


# ---------------------------------------------------------------- streaming


def _json_items(path: Path, top: str, report: ParseReport) -> Iterator[Any]:
    """Raw items of a JSON export (one for a single-task object), turning syntax errors into ReportLensError."""
    with path.open("rb") as raw:
        reader = Utf8Reader(raw, path)
        items = JSON_BACKEND.items(reader, "item" if top == "[" else "", use_float=True)
        try:
            for item in items:
                report.bytes_read = reader.offset
                yield item
        except ijson.JSONError as exc:
            raise syntax_error(path, exc, report.tasks_seen) from exc


def _check_top(path: Path, top: str, item: Any, position: int, ctx: ParseContext) -> bool:
    """Raise for a file that is not a task list; record and skip a stray non-task item inside a list."""
    if top == "{":
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            keys = short_list(sorted(item)) if isinstance(item, dict) else ""
            raise shape_error(path, f"one object with keys ({keys}) but no 'data'")
        ctx.report.note(IssueCode.SINGLE_TASK, file=path.name)
        return True
    if isinstance(item, dict):
        return True
    if position == 0:
        raise shape_error(path, f"a list whose first item is {value_kind(item)} ({str(item)[:40]!r})")
    ctx.report.note(IssueCode.NOT_A_TASK, task=f"Item #{position + 1}", kind=value_kind(item),
                    value=repr(str(item)[:40]))
    return False


TaskReader = Callable[[dict[str, Any], int, ParseContext], "ParsedTask | None"]


def iter_json(path: Path, top: str, read: TaskReader, ctx: ParseContext) -> Iterator[ParsedTask]:
    """The usable tasks of a JSON export, each item read by ``read`` (full JSON task or JSON-MIN row)."""
    if top not in "[{":
        raise shape_error(path, char_kind(top))
    return _iter_json(path, top, read, ctx)


def _iter_json(path: Path, top: str, read: TaskReader, ctx: ParseContext) -> Iterator[ParsedTask]:
    for position, item in enumerate(_json_items(path, top, ctx.report)):
        ctx.report.tasks_seen += 1
        task = read(item, position, ctx) if _check_top(path, top, item, position, ctx) else None
        if task is None:
            ctx.report.tasks_skipped += 1
        else:
            yield task
    ctx.close()
