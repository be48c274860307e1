"""Streaming JSON for the Label Studio formats (full JSON, JSON-MIN): items one at a time with ijson, and the
shape and syntax errors (what, where, how to fix) shared by both readers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import ijson

from core.errors import IssueCode
from core.formats.jsonguard import JsonGuard
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


def json_reader(raw: IO[bytes], path: Path) -> JsonGuard:
    """What the parser reads: UTF-8 checked, nesting bounded, lone surrogate escapes replaced (:mod:`jsonguard`)."""
    return JsonGuard(Utf8Reader(raw, path), path)


def first_item(path: Path) -> Any:
    """The first item of a top-level JSON list, or ``None`` (empty list, or a syntax error reported later)."""
    with path.open("rb") as raw:
        try:
            return next(iter(JSON_BACKEND.items(json_reader(raw, path), "item", use_float=True)), None)
        except ijson.JSONError:
            return None  # the parser reports the syntax error with its position


def is_one_json_value(path: Path) -> bool:
    """True when the whole file is exactly one JSON value (a string, number, ``null``... included)."""
    with path.open("rb") as raw:
        try:
            for _ in JSON_BACKEND.parse(json_reader(raw, path)):
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


INT64 = 2**63
# a string (skipped), NaN / Infinity, or a number that may be past 64 bits or past the float range
_NOT_JSON_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![\w.])(-?(?:NaN|Infinity)|-?\d{19,}(?:\.\d+)?(?:[eE][+-]?\d+)?'
                              r"|-?\d+(?:\.\d+)?[eE][+-]?\d{3,})(?![\w.])", re.S)


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _bad_number(text: str) -> tuple[str, int, int] | None:
    """The first NaN/Infinity or out-of-range number of a JSON text (outside strings), with its line and column."""
    for m in _NOT_JSON_NUMBER.finditer(text):
        token = m.group(1)
        if token is None:
            continue
        if "N" in token or "I" in token:
            return (token, *_line_col(text, m.start(1)))
        value = float(token)
        if value in (float("inf"), float("-inf")) or (
                re.fullmatch(r"-?\d+", token) and not -INT64 <= int(token) < INT64):
            return (token, *_line_col(text, m.start(1)))
    return None


def _error_position(path: Path) -> tuple[int, int, str | None] | None:
    """Line and column of a JSON syntax error, and the offending number where it is one (a NaN, or past what the
    parser holds), using the stdlib parser (only on the error path, small files)."""
    if path.stat().st_size > MAX_BYTES_FOR_ERROR_POSITION:
        return None
    try:
        text = path.read_bytes().decode("utf-8-sig")
        json.loads(text, parse_constant=lambda c: None)
    except json.JSONDecodeError as exc:
        return exc.lineno, exc.colno, None
    except (UnicodeDecodeError, RecursionError, ValueError):
        return None
    bad = _bad_number(text)  # the stdlib reads what yajl refused: a NaN, or a number too large
    return (bad[1], bad[2], bad[0]) if bad else None


def syntax_error(path: Path, exc: Exception, items_done: int) -> ReportLensError:
    arg = exc.args[0] if exc.args else str(exc)
    reason = arg.decode("utf-8", errors="replace") if isinstance(arg, bytes) else str(arg)
    reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
    pos = _error_position(path)
    where = f" at line {pos[0]}, column {pos[1]}" if pos else ""
    if pos and pos[2] is not None:
        return _number_error(path, where, pos[2], items_done)
    hint = ""
    if "trailing garbage" in reason:
        hint = " It holds more than one JSON value (JSON Lines?); Label Studio exports one list."
    elif "premature EOF" in reason:
        hint = " The file ends too early: was the download or copy interrupted?"
    return ReportLensError(
        f"{path.name}{where} ({reason}, after {items_done} complete tasks): the file is not valid JSON; "
        f"re-export from Label Studio.{hint}"
    )


def _number_error(path: Path, where: str, token: str, items_done: int) -> ReportLensError:
    if "N" in token or "I" in token:
        what = (f"{token} is not a JSON value (the tool that wrote the file put a JavaScript {token} there); "
                "replace it with null or a number")
    else:
        what = (f"the number {token[:30]}{'...' if len(token) > 30 else ''} is out of range (ReportLens reads "
                "whole numbers up to 64 bits and decimals up to about 1.8e308; a task id must be a whole number "
                "from 0 to 2**63-1); fix the value or remove it")
    return ReportLensError(f"{path.name}{where} (after {items_done} complete tasks): {what}, and import again.")


# ---------------------------------------------------------------- streaming


def _json_items(path: Path, top: str, report: ParseReport) -> Iterator[Any]:
    """Raw items of a JSON export (one for a single-task object), turning syntax errors into ReportLensError."""
    with path.open("rb") as raw:
        reader = json_reader(raw, path)
        items = JSON_BACKEND.items(reader, "item" if top == "[" else "", use_float=True)
        try:
            for item in items:
                report.bytes_read = reader.offset
                yield item
        except ijson.JSONError as exc:
            raise syntax_error(path, exc, report.tasks_seen) from exc
        if reader.first_surrogate is not None:
            example, line = reader.first_surrogate
            report.note(IssueCode.LONE_SURROGATE, file=path.name, n=reader.lone_surrogates, example=example,
                        line=line)


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
