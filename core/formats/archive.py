"""The members of an uploaded ``.zip``, read in memory (never extracted) within size limits, for the formats that
come as many files (DICOM SR, brat)."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from core.errors import IssueCode
from core.types import Issue

MAX_MEMBER_BYTES = 200 * 1024 * 1024  # one zip member read into memory
MAX_ZIP_TOTAL_BYTES = 2 * 1024 * 1024 * 1024  # all members of one zip together
# What a damaged zip raises; named so real bugs still surface.
ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError,
)
# Receives a FILE_UNREADABLE or FILE_TOO_LARGE issue naming the archive or the member ("File <name>").
OnError = Callable[[Issue], None]
REZIP = "Zip the files again (without a password) and import the archive again."


def zip_member_names(path: Path) -> list[str]:
    """The file members of a zip (folders and macOS resource forks left out); ``[]`` for a damaged zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [i.filename for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    except ZIP_ERRORS:
        return []


def _unreadable(name: str, where: str, problem: str) -> Issue:
    return Issue.of(IssueCode.FILE_UNREADABLE, task=f"File {name}", where=where, problem=problem, fix=REZIP)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n % 2**20 else f"{n // 2**20} MB"


def iter_members(source: str | Path | BinaryIO, zip_name: str, on_error: OnError) -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` of every readable file member; what cannot be read goes to ``on_error``.

    A member over :data:`MAX_MEMBER_BYTES` is skipped; the whole archive stops once the members read add up to over
    :data:`MAX_ZIP_TOTAL_BYTES` (a zip bomb never fills the memory).
    """
    try:
        zf = zipfile.ZipFile(source)
    except ZIP_ERRORS as exc:
        on_error(_unreadable(zip_name, zip_name, f"is not a readable zip archive ({exc})"))
        return
    total = 0
    with zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or name.startswith("__MACOSX/"):
                continue
            where = f"Member {name} of {zip_name}"
            if info.flag_bits & 0x1:
                on_error(_unreadable(name, where, "is encrypted"))
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                on_error(_too_large(name, where, info.file_size))
                continue
            try:
                with zf.open(info) as member:
                    data = member.read(MAX_MEMBER_BYTES + 1)  # bounded even when the header lies
            except ZIP_ERRORS as exc:
                on_error(_unreadable(name, where, f"could not be unpacked ({exc})"))
                continue
            if len(data) > MAX_MEMBER_BYTES:
                on_error(_too_large(name, where, len(data)))
                continue
            total += len(data)
            if total > MAX_ZIP_TOTAL_BYTES:
                on_error(Issue.of(IssueCode.FILE_TOO_LARGE, task=f"File {name}", where=zip_name,
                                  size=f"over {_mb(MAX_ZIP_TOTAL_BYTES)} unpacked", limit=_mb(MAX_ZIP_TOTAL_BYTES),
                                  scope="one archive", skipped=f"{name} and the members after it were"))
                return
            yield name, data


def _too_large(name: str, where: str, size: int) -> Issue:
    return Issue.of(IssueCode.FILE_TOO_LARGE, task=f"File {name}", where=where, size=_mb(size),
                    limit=_mb(MAX_MEMBER_BYTES), scope="one member", skipped="it was")
