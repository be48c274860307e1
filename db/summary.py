"""What an import did, as a frozen, JSON-ready record (shown on the Import page and stored on the ImportRun)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.types import Issue, ReportLensError

MAX_STORED_ISSUES = 500  # per level, in ImportRun.summary; the counts are always complete


@dataclass(frozen=True)
class ImportSummary:
    """Counts of one import. ``annotations``/``predictions``/``spans`` count what the file holds after de-duplication
    (stored now or already stored unchanged); ``skipped`` are the error issues (items or spans left out).
    ``sources`` are the source keys of its tasks with ids (``core.identity``); ``text_changed`` lists the documents
    whose text this import changed: ``{"document_id", "task", "source_key", "stale_annotations"}``."""

    project: str
    file_name: str | None
    format: str | None
    documents_added: int = 0
    documents_updated: int = 0
    documents_unchanged: int = 0
    annotations: int = 0
    predictions: int = 0
    spans: int = 0
    skipped: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    infos: list[Issue] = field(default_factory=list)
    duration_s: float = 0.0
    tasks_read: int = 0
    status: str = "ok"  # "ok" | "failed"
    error: str | None = None
    import_id: int | None = None
    sources: list[str] = field(default_factory=list)
    text_changed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def documents(self) -> int:
        return self.documents_added + self.documents_updated + self.documents_unchanged

    @property
    def issues(self) -> list[Issue]:
        return [*self.skipped, *self.warnings, *self.infos]

    def describe(self) -> str:
        """One line for the UI and the CLI."""
        text = (
            f"{self.documents} documents ({self.documents_added} new, {self.documents_updated} updated, "
            f"{self.documents_unchanged} unchanged), {self.annotations} annotations, {self.predictions} predictions, "
            f"{self.spans} spans; {len(self.skipped)} errors, {len(self.warnings)} warnings in {self.duration_s:.1f} s"
        )
        if self.text_changed:
            text += f"; {self.changes_note()}"
        return text if self.status == "ok" else f"FAILED after {text}: {self.error}"

    def changes_note(self) -> str:
        """Which documents' text changed and how to undo it ('' when none)."""
        if not self.text_changed:
            return ""
        shown = ", ".join(f"#{c['document_id']} ({c['task']})" for c in self.text_changed[:10])
        more = f" and {len(self.text_changed) - 10} more" if len(self.text_changed) > 10 else ""
        return (f"the text of {len(self.text_changed)} document(s) changed: {shown}{more}; their earlier "
                "annotations are kept, flagged stale. To undo, import the earlier export again with the same "
                "source; if these are other reports, import the file with its own source name (--source NAME)")

    def to_dict(self, max_issues: int | None = None) -> dict[str, Any]:
        """JSON-ready. ``max_issues`` caps each issue list (the ``n_*`` counts stay exact)."""

        def cap(items: list[Issue]) -> list[dict[str, Any]]:
            kept = items if max_issues is None else items[:max_issues]
            return [i.to_dict() for i in kept]

        return {
            "project": self.project,
            "file_name": self.file_name,
            "format": self.format,
            "documents_added": self.documents_added,
            "documents_updated": self.documents_updated,
            "documents_unchanged": self.documents_unchanged,
            "annotations": self.annotations,
            "predictions": self.predictions,
            "spans": self.spans,
            "n_errors": len(self.skipped),
            "n_warnings": len(self.warnings),
            "n_infos": len(self.infos),
            "skipped": cap(self.skipped),
            "warnings": cap(self.warnings),
            "infos": cap(self.infos),
            "duration_s": round(self.duration_s, 3),
            "tasks_read": self.tasks_read,
            "status": self.status,
            "error": self.error,
            "import_id": self.import_id,
            "sources": list(self.sources),
            "text_changed": [dict(c) for c in self.text_changed],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImportSummary:
        def issues(key: str) -> list[Issue]:
            return [Issue.from_dict(i) for i in d.get(key) or []]

        counts = ("documents_added", "documents_updated", "documents_unchanged", "annotations", "predictions")
        return cls(
            project=d.get("project", ""),
            file_name=d.get("file_name"),
            format=d.get("format"),
            **{k: int(d.get(k) or 0) for k in (*counts, "spans", "tasks_read")},
            skipped=issues("skipped"),
            warnings=issues("warnings"),
            infos=issues("infos"),
            duration_s=float(d.get("duration_s") or 0.0),
            status=d.get("status", "ok"),
            error=d.get("error"),
            import_id=d.get("import_id"),
            sources=list(d.get("sources") or []),
            text_changed=[dict(c) for c in d.get("text_changed") or []],
        )


class StrictImportError(ReportLensError):
    """A strict import met an error issue: everything was rolled back. ``summary`` says what was found."""

    def __init__(self, summary: ImportSummary) -> None:
        self.summary = summary
        if not summary.skipped and summary.text_changed:
            super().__init__(
                f"Strict import of {summary.file_name or 'the file'} stopped: it would change the text of "
                f"{len(summary.text_changed)} stored document(s) (first: #{summary.text_changed[0]['document_id']}, "
                f"{summary.text_changed[0]['task']}); nothing was stored. If the file holds other reports (another "
                "Label Studio project or server), import it with its own source name (--source NAME); to accept "
                "the new texts, import without strict mode (the earlier annotations are kept, flagged stale).")
            return
        first = summary.skipped[0] if summary.skipped else None
        where = f" First: {first.task + ': ' if first and first.task else ''}{first.message}" if first else ""
        super().__init__(
            f"Strict import of {summary.file_name or 'the file'} stopped: {len(summary.skipped)} error(s) found, "
            f"nothing was stored.{where} Fix the errors in Label Studio and export again, or import without strict "
            "mode to store the valid part."
        )


def merge_label_configs(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """Combine a project's stored label config with one from a new file (both ``LabelConfig.to_dict()`` dicts).

    Label lists become the sorted union. Scalar fields (text field, ``to_name``, ``inferred``) come from the config
    read from Label Studio XML when one of them is (the newer one when both are), else from the newer config.
    """
    if not old:
        return dict(new) if new else None
    if not new:
        return dict(old)
    old_xml, new_xml = not old.get("inferred", False), not new.get("inferred", False)
    base, other = (old, new) if old_xml and not new_xml else (new, old)
    out = dict(base)
    for key in set(old) | set(new):
        a, b = base.get(key), other.get(key)
        if isinstance(a, list | tuple) or isinstance(b, list | tuple):
            out[key] = sorted(set(a or ()) | set(b or ()))
        elif key not in out:
            out[key] = b
    return out
