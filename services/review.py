"""Clinician review, shared by the Review page and tests: open a report with its suggested entities, decide on them,
and read the project's progress.

Suggestions come from ``services.extract.document_entities`` (model merged with rules) when that service exists;
until then from the model version's stored ``Prediction`` row, or a live prediction of the active model (stored as a
``Prediction`` row, so the next visit is instant).

**How a review ranks against an annotator's work** (the policy of :mod:`core.policy`, unchanged): a finished review
is a training annotation like an annotator's. If the document has a ground-truth annotation, that one trains;
otherwise the most recent human or review annotation does, which is usually the review. Nothing is overwritten: the
annotator's annotation stays in the database (and in Label Studio), the review is a separate annotation
(``source = "review"``, ``author = reviewer``), and the page says so whenever the two differ and which one trains.
An unfinished review (suggestions still waiting for a decision) never trains; see :mod:`db.review`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.review import ReviewItem, pending_entities, review_items, snap_to_tokens
from core.types import Entity, ReportLensError, Span
from db import review as db_review
from db.model_versions import active_model_version, get_model_version
from db.records import ModelVersionInfo, StoredDocument
from db.repository import get_document, get_project
from db.review import ReviewProgress, ReviewState, review_progress
from services.models import _doc_confidence

log = logging.getLogger("reportlens.review")

__all__ = [
    "ReportReview", "ReviewProgress", "Suggestions", "accept", "accept_all", "add", "adjust", "decide",
    "extract_available", "model_suggestions", "open_report", "project_csv", "project_labels", "project_tokenizer",
    "progress", "reject", "relabel", "snap_range", "structured", "suggested_entities",
]


def extract_available() -> bool:
    """Whether the rule + model extraction service (``services/extract.py``) is installed in this tree."""
    return importlib.util.find_spec("services.extract") is not None


def _extract() -> Any:
    return importlib.import_module("services.extract")


# ---------------------------------------------------------------- suggestions


@dataclass(frozen=True)
class Suggestions:
    entities: tuple[Entity, ...]
    version: ModelVersionInfo | None
    origin: str  # "extract" (model + rules) | "stored" (Prediction row) | "live" (predicted now) | "none"


def _version(engine: Any, project_id: int, version_id: int | None) -> ModelVersionInfo | None:
    if version_id is not None:
        found = get_model_version(engine, version_id)
        if found is None or found.project_id != project_id:
            raise ReportLensError(f"Model version {version_id} does not belong to this project; pick another one.")
        return found
    return active_model_version(engine, project_id)


def suggested_entities(engine: Any, document_id: int, version_id: int | None = None) -> Suggestions:
    """The entities to review for a document (see the module docstring for where they come from)."""
    doc = get_document(engine, document_id)
    if doc is None:
        raise ReportLensError(f"Document {document_id} does not exist; pick one from the worklist.")
    version = _version(engine, doc.project_id, version_id)
    if extract_available():
        ents = _extract().document_entities(engine, document_id, version.id if version else None)
        return Suggestions(tuple(ents), version, "extract")
    return model_suggestions(engine, doc, version)


def model_suggestions(engine: Any, doc: StoredDocument, version: ModelVersionInfo | None) -> Suggestions:
    """The model's entities alone: the stored ``Prediction`` row of ``version``, else predicted now and stored."""
    if version is None:
        return Suggestions((), None, "none")
    stored = db_review.stored_prediction(engine, doc.id, version.id)
    if stored is not None:
        return Suggestions(tuple(stored), version, "stored")
    if version.model_dir is None or not Path(version.model_dir).is_dir():
        raise ReportLensError(f"Model {version.name}'s files are missing ({version.model_dir}); retrain it or "
                              "restore the data folder.")
    from training.inference import load_model

    (pred,) = load_model(version.model_dir).predict_detailed([(doc.id, doc.text)])
    ents = [Entity(sp.start, sp.end, sp.label, float(score), "model") for sp, score in pred.spans]
    db_review.store_prediction(engine, doc.id, version.id, ents, _doc_confidence(pred))
    return Suggestions(tuple(ents), version, "live")


# ---------------------------------------------------------------- tokens


def project_tokenizer(engine: Any, project_id: int, version: ModelVersionInfo | None = None) -> Any:
    """The tokenizer the project's model reads with: the model version's saved one, else the project's base model's,
    else the bundled model's."""
    from training.encoding import load_tokenizer

    version = version or active_model_version(engine, project_id)
    if version is not None and version.model_dir is not None and (Path(version.model_dir) / "tokenizer_config.json"
                                                                    ).is_file():
        return load_tokenizer(str(version.model_dir))
    project = get_project(engine, project_id)
    base = (project.settings or {}).get("base_model") if project else None
    return load_tokenizer(base or None)


def snap_range(tokenizer: Any, text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` snapped to the tokenizer's token boundaries (:func:`core.review.snap_to_tokens`)."""
    from training.encoding import tokenize_documents

    (tdoc,) = tokenize_documents(tokenizer, [(0, text)])
    return snap_to_tokens(text, tdoc.offsets, int(start), int(end))


# ---------------------------------------------------------------- a report under review


@dataclass(frozen=True)
class ReportReview:
    document: StoredDocument
    suggestions: Suggestions
    state: ReviewState
    items: tuple[ReviewItem, ...]
    pending: tuple[Entity, ...]
    # annotators' (non-cancelled human) annotations whose spans differ from this review (empty before the first
    # decision): (source, author, spans, ground_truth)
    differing: tuple[tuple[str, str | None, tuple[Span, ...], bool], ...] = field(default=())
    trains: str = ""  # which annotation the next training run uses, in words

    @property
    def candidates(self) -> tuple[Entity, ...]:
        return self.suggestions.entities

    @property
    def current_entities(self) -> list[Entity]:
        """Reviewed entities plus suggestions still pending: what the report says now."""
        return [it.entity for it in self.items if it.status != "decided"]


def _trains(doc: StoredDocument, state: ReviewState) -> str:
    if doc.training is None:
        return "nothing yet: the report has no finished human or review annotation"
    meta = doc.training.meta
    if state.annotation_id is not None and meta.get("annotation_id") == state.annotation_id:
        return "your review"
    who = meta.get("author") or "unknown"
    return f"the annotation by {who} (annotation #{meta.get('annotation_id')})"


def open_report(engine: Any, document_id: int, reviewer: str, version_id: int | None = None) -> ReportReview:
    """Everything the Review page shows for one report and reviewer (``reviewer`` empty: the suggestions only)."""
    suggestions = suggested_entities(engine, document_id, version_id)
    doc = get_document(engine, document_id)
    if doc is None:
        raise ReportLensError(f"Document {document_id} does not exist; pick one from the worklist.")
    if (reviewer or "").strip():
        state = db_review.review_state(engine, document_id, reviewer)
    else:  # nobody named yet: the suggestions, read-only
        state = ReviewState(document_id, "", None, (), False)
    items = review_items(suggestions.entities, state.spans, state.decided)
    pending = pending_entities(suggestions.entities, state.spans, state.decided)
    mine = set(state.spans) if state.annotation_id is not None else None
    differing = tuple(o for o in db_review.other_annotations(engine, document_id, state.reviewer)
                      if o[0] == "human" and mine is not None and set(o[2]) != mine)
    return ReportReview(doc, suggestions, state, tuple(items), tuple(pending), differing, _trains(doc, state))


# ---------------------------------------------------------------- decisions


def decide(engine: Any, document_id: int, reviewer: str, action: str, *, entity: Entity | None = None,
           label: str | None = None, start: int | None = None, end: int | None = None,
           version_id: int | None = None, candidates: Sequence[Entity] | None = None, tokenizer: Any = None,
           comment: str | None = None) -> ReviewState:
    """One review decision, stored with the review annotation in one transaction (:func:`db.review.record_decision`).

    ``accept`` / ``reject``: ``entity``. ``relabel``: ``entity`` and ``label``. ``adjust``: ``entity``, ``start``,
    ``end`` (snapped to tokens). ``add``: ``start``, ``end``, ``label`` (snapped). ``accept_all``: nothing.
    ``candidates``: the suggestions the reviewer saw (computed again when not given).
    """
    reviewer = db_review.check_reviewer(reviewer)
    doc = get_document(engine, document_id)
    if doc is None:
        raise ReportLensError(f"Document {document_id} does not exist; pick one from the worklist.")
    version = _version(engine, doc.project_id, version_id)
    if candidates is None:
        candidates = suggested_entities(engine, document_id, version.id if version else None).entities
    before = after = None
    if action in ("accept", "reject", "relabel", "adjust"):
        if entity is None:
            raise ReportLensError(f"Pick the entity to {action} first.")
        before = entity
    if action in ("relabel", "add") and not (label or "").strip():
        raise ReportLensError("Choose a label for the entity.")
    if action == "relabel":
        assert entity is not None
        if label == entity.label:
            raise ReportLensError(f"The entity already has label {label!r}; pick a different one or accept it.")
        after = Entity(entity.start, entity.end, str(label), 1.0, "review")
    elif action in ("adjust", "add"):
        if start is None or end is None:
            raise ReportLensError("Give the entity's start and end (character offsets into the report).")
        tok = tokenizer if tokenizer is not None else project_tokenizer(engine, doc.project_id, version)
        s, e = snap_range(tok, doc.text, start, end)
        new_label = entity.label if action == "adjust" and entity is not None else str(label)
        if action == "adjust" and entity is not None and (s, e) == (entity.start, entity.end):
            raise ReportLensError(f"[{start}, {end}) snaps to the entity's current boundaries [{s}, {e}); nothing to "
                                  "change. Widen or narrow it by at least one word piece.")
        after = Entity(s, e, new_label, 1.0, "review")
    state = db_review.record_decision(
        engine, document_id, reviewer, action, before=before, after=after, candidates=candidates,
        model_version_id=version.id if version else None, model_version=version.name if version else None,
        comment=comment)
    log.info("review decision: document %s, reviewer %r, action %s", document_id, reviewer, action)
    return state


def accept(engine: Any, document_id: int, reviewer: str, entity: Entity, **kw: Any) -> ReviewState:
    return decide(engine, document_id, reviewer, "accept", entity=entity, **kw)


def reject(engine: Any, document_id: int, reviewer: str, entity: Entity, **kw: Any) -> ReviewState:
    return decide(engine, document_id, reviewer, "reject", entity=entity, **kw)


def relabel(engine: Any, document_id: int, reviewer: str, entity: Entity, label: str, **kw: Any) -> ReviewState:
    return decide(engine, document_id, reviewer, "relabel", entity=entity, label=label, **kw)


def adjust(engine: Any, document_id: int, reviewer: str, entity: Entity, start: int, end: int,
           **kw: Any) -> ReviewState:
    return decide(engine, document_id, reviewer, "adjust", entity=entity, start=start, end=end, **kw)


def add(engine: Any, document_id: int, reviewer: str, start: int, end: int, label: str, **kw: Any) -> ReviewState:
    return decide(engine, document_id, reviewer, "add", start=start, end=end, label=label, **kw)


def accept_all(engine: Any, document_id: int, reviewer: str, **kw: Any) -> ReviewState:
    return decide(engine, document_id, reviewer, "accept_all", **kw)


# ---------------------------------------------------------------- project level


def progress(engine: Any, project_id: int) -> ReviewProgress:
    return review_progress(engine, project_id)


def project_labels(engine: Any, project_id: int, version: ModelVersionInfo | None = None,
                   extra: Sequence[Entity] = ()) -> list[str]:
    """Labels a reviewer may choose: the project's, the model's and those of the suggestions."""
    project = get_project(engine, project_id)
    labels = set(project.labels if project else ())
    if version is not None:
        labels |= set(version.label_schema.get("labels") or ())
    labels |= {e.label for e in extra}
    return sorted(labels)


def structured(report: ReportReview) -> dict[str, Any] | None:
    """The structured result of the report as it stands (reviewed entities and pending suggestions), or ``None``
    when the extraction service is not installed."""
    if not extract_available():
        return None
    return _extract().structured_result(report.document.text, report.current_entities)


def project_csv(engine: Any, project_name: str) -> bytes | None:
    """The whole project's structured results as CSV (``None`` without the extraction service)."""
    if not extract_available():
        return None
    out = _extract().project_csv(engine, project_name)
    return out.encode("utf-8") if isinstance(out, str) else out
