"""The members of an uploaded ``.zip``, read in memory (never extracted) within size limits, for the formats that
come as many files (DICOM SR, brat)."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

MAX_MEMBER_BYTES = 200 * 1024 * 1024  # one zip member read into memory
MAX_ZIP_TOTAL_BYTES = 2 * 1024 * 1024 * 1024  # all members of one zip together
# What a damaged zip raises; named so real bugs still surface.
ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError,
)
# (kind, member name, message): kind is "unreadable" or "too_large"; the caller turns it into its issue code.
OnError = Callable[[str, str, str], None]


def zip_member_names(path: Path) -> list[str]:
    """The file members of a zip (folders and macOS resource forks left out); ``[]`` for a damaged zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [i.filename for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    except ZIP_ERRORS:
        return []


def iter_members(source: str | Path | BinaryIO, zip_name: str, on_error: OnError,
                 too_large_hint: str = "") -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` of every readable file member; what cannot be read goes to ``on_error``.

    A member over :data:`MAX_MEMBER_BYTES` is skipped; the whole archive stops once the members read add up to over
    :data:`MAX_ZIP_TOTAL_BYTES` (a zip bomb never fills the memory).
    """
    try:
        zf = zipfile.ZipFile(source)
    except ZIP_ERRORS as exc:
        on_error("unreadable", zip_name, f"{zip_name} is not a readable zip archive ({exc}).")
        return
    total = 0
    with zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or name.startswith("__MACOSX/"):
                continue
            where = f"Member {name} of {zip_name}"
            if info.flag_bits & 0x1:
                on_error("unreadable", name, f"{where} is encrypted; zip it again without a password.")
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                _too_large(on_error, name, where, info.file_size, too_large_hint)
                continue
            try:
                with zf.open(info) as member:
                    data = member.read(MAX_MEMBER_BYTES + 1)  # bounded even when the header lies
            except ZIP_ERRORS as exc:
                on_error("unreadable", name, f"{where} could not be unpacked ({exc}).")
                continue
            if len(data) > MAX_MEMBER_BYTES:
                _too_large(on_error, name, where, len(data), too_large_hint)
                continue
            total += len(data)
            if total > MAX_ZIP_TOTAL_BYTES:
                limit = f"{MAX_ZIP_TOTAL_BYTES // 2**20} MB"
                on_error("too_large", name, f"{zip_name} unpacks to over {limit}; stopped at {name}.")
                return
            yield name, data


def _too_large(on_error: OnError, name: str, where: str, size: int, hint: str) -> None:
    limit = f"{MAX_MEMBER_BYTES // 2**20} MB"
    on_error("too_large", name, f"{where} is {size / 2**20:.1f} MB, over the {limit} limit for one member, and was "
             f"skipped{hint}.")
