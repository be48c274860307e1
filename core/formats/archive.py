"""The members of an uploaded ``.zip``, read in memory (never extracted) within size limits, for the formats that
come as many files (DICOM SR, brat)."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from core import limits
from core.errors import IssueCode
from core.types import Issue

# The limits are core.limits.MAX_ZIP_MEMBER_BYTES / MAX_ZIP_TOTAL_BYTES / MAX_ZIP_ENTRIES (REPORTLENS_... variables);
# a test may set these two to smaller numbers.
MAX_MEMBER_BYTES: int | None = None
MAX_ZIP_TOTAL_BYTES: int | None = None
# What a damaged zip raises; named so real bugs still surface.
ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError,
)
# Receives a FILE_UNREADABLE or FILE_TOO_LARGE issue naming the archive or the member ("File <name>").
OnError = Callable[[Issue], None]
REZIP = "Zip the files again (without a password) and import the archive again."


def _member_limit() -> int:
    return MAX_MEMBER_BYTES or limits.MAX_ZIP_MEMBER_BYTES.value


def _total_limit() -> int:
    return MAX_ZIP_TOTAL_BYTES or limits.MAX_ZIP_TOTAL_BYTES.value


def _files(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]


def zip_member_names(path: Path) -> list[str]:
    """The file members of a zip (folders and macOS resource forks left out); ``[]`` for a damaged zip, and only
    the first :data:`core.limits.MAX_ZIP_ENTRIES` (reading reports the rest)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [i.filename for i in _files(zf)[: limits.MAX_ZIP_ENTRIES.value]]
    except ZIP_ERRORS:
        return []


def too_many_members(zip_name: str, n: int) -> Issue:
    lim = limits.MAX_ZIP_ENTRIES
    return Issue.of(IssueCode.LIMIT_EXCEEDED, task=f"File {zip_name}", where=zip_name, what="the archive",
                    size=f"{n:,} members", limit=f"{lim.value:,} members", env=lim.env,
                    outcome="the whole archive was skipped", fix="Split the archive into smaller ones.")


def _unreadable(name: str, where: str, problem: str) -> Issue:
    return Issue.of(IssueCode.FILE_UNREADABLE, task=f"File {name}", where=where, problem=problem, fix=REZIP)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n % 2**20 else f"{n // 2**20} MB"


def iter_members(source: str | Path | BinaryIO, zip_name: str, on_error: OnError) -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` of every readable file member; what cannot be read goes to ``on_error``.

    A member over :data:`core.limits.MAX_ZIP_MEMBER_BYTES` is skipped; the whole archive stops once the members read
    add up to over :data:`core.limits.MAX_ZIP_TOTAL_BYTES` (a zip bomb never fills the memory), and an archive of
    over :data:`core.limits.MAX_ZIP_ENTRIES` members is skipped whole.
    """
    try:
        zf = zipfile.ZipFile(source)
    except ZIP_ERRORS as exc:
        on_error(_unreadable(zip_name, zip_name, f"is not a readable zip archive ({exc})"))
        return
    total, max_member, max_total = 0, _member_limit(), _total_limit()
    with zf:
        files = _files(zf)
        if len(files) > limits.MAX_ZIP_ENTRIES.value:
            on_error(too_many_members(zip_name, len(files)))
            return
        for info in files:
            name = info.filename
            where = f"Member {name} of {zip_name}"
            if info.flag_bits & 0x1:
                on_error(_unreadable(name, where, "is encrypted"))
                continue
            if info.file_size > max_member:
                on_error(_too_large(name, where, info.file_size, max_member))
                continue
            try:
                with zf.open(info) as member:
                    data = member.read(max_member + 1)  # bounded even when the header lies
            except ZIP_ERRORS as exc:
                on_error(_unreadable(name, where, f"could not be unpacked ({exc})"))
                continue
            if len(data) > max_member:
                on_error(_too_large(name, where, len(data), max_member))
                continue
            total += len(data)
            if total > max_total:
                on_error(Issue.of(IssueCode.FILE_TOO_LARGE, task=f"File {name}", where=zip_name,
                                  size=f"over {_mb(max_total)} unpacked", limit=_mb(max_total),
                                  scope=f"one archive ({limits.MAX_ZIP_TOTAL_BYTES.env})",
                                  skipped=f"{name} and the members after it were"))
                return
            yield name, data


def _too_large(name: str, where: str, size: int, limit: int) -> Issue:
    return Issue.of(IssueCode.FILE_TOO_LARGE, task=f"File {name}", where=where, size=_mb(size),
                    limit=_mb(limit), scope=f"one member ({limits.MAX_ZIP_MEMBER_BYTES.env})", skipped="it was")
