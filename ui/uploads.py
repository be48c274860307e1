"""The Import page's uploads: which files go in together (DICOM SR files as one folder, brat .txt/.ann pairs as one
folder, every other file on its own, so two JSON exports are two imports, never a "DICOM folder"), importing them
through ``services.imports.import_file``, and one summary of it all for the page."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.types import ReportLensError
from services.imports import import_file

FOLDER_SUFFIXES = {"dcm": "dicom", "dicom": "dicom", "ann": "brat"}
COUNTS = ("documents_added", "documents_updated", "documents_unchanged", "annotations", "predictions", "spans",
          "tasks_read")


def _suffix(name: str) -> str:
    return Path(name).suffix.lower().lstrip(".")


def upload_groups(names: Sequence[str]) -> list[list[str]]:
    """The uploads, grouped into imports: DICOM files together, brat ``.ann`` files with their ``.txt`` together,
    every other file (JSON, JSON-MIN, CoNLL, a zip, a ``.txt`` without ``.ann``) alone; in upload order."""
    ann_stems = {Path(n).stem for n in names if _suffix(n) == "ann"}
    folders: dict[str, list[str]] = {}
    out: list[list[str]] = []
    for name in names:
        kind = FOLDER_SUFFIXES.get(_suffix(name)) or ("brat" if _suffix(name) == "txt" and Path(name).stem in
                                                      ann_stems else None)
        if kind is None:
            out.append([name])
        elif kind not in folders:
            folders[kind] = [name]
            out.append(folders[kind])
        else:
            folders[kind].append(name)
    return out


def merge_summaries(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several imports' summaries as one, for the page: counts added up, issues listed together, each file named."""
    if len(summaries) == 1:
        return dict(summaries[0])
    out = dict(summaries[0])
    out["file_name"] = ", ".join(str(s.get("file_name")) for s in summaries)
    out["format"] = ", ".join(dict.fromkeys(str(s.get("format")) for s in summaries))
    for key in COUNTS:
        out[key] = sum(int(s.get(key) or 0) for s in summaries)
    for key in ("skipped", "warnings", "infos"):
        out[key] = [dict(i, task=f"{s.get('file_name')}: {i.get('task') or ''}".rstrip(": ")) for s in summaries
                    for i in s.get(key) or []]
    out["text_changed"] = [c for s in summaries for c in s.get("text_changed") or []]
    return out


def import_uploads(engine: Any, uploads: Sequence[Any], project: str, *, config: Any = None, strict: bool = False,
                   progress: Callable[[int, float | None], None] | None = None,
                   source_name: str | None = None) -> dict[str, Any]:
    """Import Streamlit uploads (objects with ``name`` and ``getbuffer()``) as :func:`upload_groups` groups them;
    one summary (:func:`merge_summaries`). A group that fails stops there; the message names it and what was
    already imported."""
    by_name = {Path(u.name).name: u for u in uploads}
    summaries: list[dict[str, Any]] = []
    for group in upload_groups(list(by_name)):
        with tempfile.TemporaryDirectory(prefix="reportlens-upload-") as tmp:
            if len(group) == 1:
                target, label = Path(tmp) / group[0], group[0]
                target.write_bytes(by_name[group[0]].getbuffer())
            else:  # a folder: DICOM SR files, brat .txt/.ann pairs
                target, label = Path(tmp) / "upload", f"{len(group)} files"
                target.mkdir()
                for name in group:
                    (target / name).write_bytes(by_name[name].getbuffer())
            try:
                summary = import_file(engine, target, project, config=config, strict=strict, progress=progress,
                                      file_name=label, source_name=source_name)
            except ReportLensError as exc:
                done = f" ({', '.join(str(s['file_name']) for s in summaries)} imported before it)" if summaries else ""
                raise ReportLensError(f"{label}: {exc}{done}") from exc
        summaries.append(summary.to_dict())
    return merge_summaries(summaries)
