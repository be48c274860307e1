"""Projects and their documents as the pages and the CLI read them: frozen records (``db.records``) and ``core``
types, never ORM objects. Each function is one batched read (no query per row)."""

from __future__ import annotations

from typing import Any

from core.auth import Permission
from core.types import ReportLensError
from db import repository
from db.records import DocumentRow, ImportRunInfo, ProjectInfo, StoredDocument
from services.auth import requires

__all__ = [
    "DocumentRow", "ImportRunInfo", "ProjectInfo", "StoredDocument", "document_in_project", "get_document",
    "delete_project", "get_project", "import_history", "label_counts", "list_documents", "list_projects",
    "require_project",
]

# The repository's reads, each behind its rule (services/auth.py).
list_projects = requires(Permission.VIEW)(repository.list_projects)
get_project = requires(Permission.VIEW)(repository.get_project)
require_project = requires(Permission.VIEW)(repository.require_project)
get_document = requires(Permission.DATASET)(repository.get_document)
list_documents = requires(Permission.DATASET)(repository.list_documents)
label_counts = requires(Permission.DATASET)(repository.label_counts)
import_history = requires(Permission.IMPORT)(repository.import_history)


@requires(Permission.DATASET)
def document_in_project(engine: Any, project_id: int, doc_id: Any) -> StoredDocument | None:
    """The stored document ``doc_id`` (an int or a string of digits, as a ``?doc=`` link gives it) when it exists and
    belongs to the project, else ``None``."""
    if isinstance(doc_id, str) and doc_id.isdigit():
        doc_id = int(doc_id)
    if not isinstance(doc_id, int) or isinstance(doc_id, bool):
        return None
    doc = get_document(engine, doc_id)
    return doc if doc is not None and doc.project_id == project_id else None


@requires(Permission.DELETE_PROJECT, action="project_deleted", detail=lambda r: r)
def delete_project(engine: Any, project: str, *, confirm: str) -> dict[str, Any]:
    """Delete a project, everything stored for it and its model files (``<data dir>/models/<project id>``); the audit
    trail keeps its rows. ``confirm`` must repeat the project's name (the page asks for it, the CLI takes --yes NAME).
    Refused while one of its jobs is queued or running."""
    import shutil

    from db.engine import data_dir
    from db.project_delete import delete_project as delete_rows

    info = repository.require_project(engine, project)
    if confirm != info.name:
        raise ReportLensError(f"To delete project {info.name!r}, type its name exactly to confirm (got {confirm!r}).")
    deleted = delete_rows(engine, info.id).to_dict()
    folder = data_dir() / "models" / str(info.id)
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        deleted["model_files_left"] = folder.exists()
    return deleted
