"""Files the CLI and the pages write for people: written atomically (a half-written file never replaces an old
one, and a failure leaves no temporary file behind), and CSV cells made safe to open in a spreadsheet."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from services.auth import open_to_all

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@open_to_all
@contextmanager
def atomic_writer(out: Path, suffix: str = "") -> Iterator[IO[str]]:
    """A text file handle whose content replaces ``out`` only when the ``with`` block ends without an error."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=suffix or out.suffix, dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@open_to_all
def write_json(out: Path, obj: Any) -> None:
    with atomic_writer(out) as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=1)


@open_to_all
def write_jsonl(rows: Any, out: Path) -> None:
    """One JSON object per line."""
    with atomic_writer(out) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


@open_to_all
def csv_cell(value: Any) -> Any:
    """Spreadsheet-safe: text starting with = + - @ (a formula in Excel/LibreOffice) gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value
