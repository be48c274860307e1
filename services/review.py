"""Clinician review, the door of the Review page (and tests) to the data: the model versions, scoring strategies,
worklist and progress of a project; a report opened with its suggested entities; the decisions on them.

Suggestions come from :func:`services.extract.document_entities`: the model version's entities (its stored
``Prediction`` row, else predicted now and stored, so the next visit is instant) merged with the rules.

**How a review ranks against an annotator's work** (the policy of :mod:`core.policy`, unchanged): a finished review
is a training annotation like an annotator's. If the document has a ground-truth annotation, that one trains;
otherwise the most recent human or review annotation does, which is usually the review. Nothing is overwritten: the
annotator's annotation stays in the database (and in Label Studio), the review is a separate annotation
(``source = "review"``, ``author = reviewer``), and the page says so whenever the two differ and which one trains.
An unfinished review (suggestions still waiting for a decision) never trains; see :mod:`db.review`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.auth import Permission
from core.review import ReviewItem, overlap_groups, overlapped_by, pending_entities, review_items, snap_to_tokens
from core.types import Annotation, Entity, ReportLensError
from db import review as db_review
from db.model_versions import active_model_version, get_model_version, list_model_versions
from db.records import ModelVersionInfo, StoredDocument
from db.repository import get_document, get_project
from db.review import ReviewProgress, ReviewState, WorklistRow
from db.scores import ScoringRun, latest_run
from services import extract
from services.auth import current_actor, open_to_all, requires
from services.people import acting_name

log = logging.getLogger("reportlens.review")

__all__ = [
    "ReportReview", "ReviewProgress", "ReviewState", "WorklistRow", "decide", "latest_scoring", "model_versions",
    "open_report", "progress", "project_csv", "project_labels", "project_tokenizer", "snap_range", "structured",
    "suggested_entities", "worklist",
]


# ---------------------------------------------------------------- project level


@requires(Permission.REVIEW)
def model_versions(engine: Any, project_id: int) -> list[ModelVersionInfo]:
    """The project's model versions, newest first."""
    return list_model_versions(engine, project_id)


@requires(Permission.REVIEW)
def latest_scoring(engine: Any, project_id: int) -> ScoringRun | None:
    """The project's latest scoring run (its query strategies order the worklist), or ``None``."""
    return latest_run(engine, project_id)


@requires(Permission.REVIEW)
def worklist(engine: Any, project_id: int, **options: Any) -> tuple[list[WorklistRow], int]:
    """One page of the review worklist and the number of matching reports (options: :func:`db.review.worklist`)."""
    return db_review.worklist(engine, project_id, **options)


@requires(Permission.REVIEW)
def progress(engine: Any, project_id: int) -> ReviewProgress:
    return db_review.review_progress(engine, project_id)


@requires(Permission.REVIEW)
def project_labels(engine: Any, project_id: int, version: ModelVersionInfo | None = None,
                   extra: Sequence[Entity] = ()) -> list[str]:
    """Labels a reviewer may choose: the project's, the model's and those of the suggestions."""
    project = get_project(engine, project_id)
    labels = set(project.labels if project else ())
    if version is not None:
        labels |= set(version.label_schema.get("labels") or ())
    labels |= {e.label for e in extra}
    return sorted(labels)


@open_to_all
def structured(report: ReportReview) -> dict[str, Any]:
    """The structured result of the report as it stands (reviewed entities and pending suggestions)."""
    return extract.structured_result(report.document.text, report.current_entities)


@requires(Permission.REVIEW, action="reviews_exported")
def project_csv(engine: Any, project_name: str) -> bytes:
    """The whole project's structured results as CSV."""
    return extract.project_csv(engine, project_name).encode("utf-8")


# ---------------------------------------------------------------- suggestions and tokens


def _version(engine: Any, project_id: int, version_id: int | None) -> ModelVersionInfo | None:
    if version_id is not None:
        found = get_model_version(engine, version_id)
        if found is None or found.project_id != project_id:
            raise ReportLensError(f"Model version {version_id} does not belong to this project; pick another one.")
        return found
    return active_model_version(engine, project_id)


def _document(engine: Any, document_id: int) -> StoredDocument:
    doc = get_document(engine, document_id)
    if doc is None:
        raise ReportLensError(f"Document {document_id} does not exist; pick one from the worklist.")
    return doc


@requires(Permission.REVIEW)
def suggested_entities(engine: Any, document_id: int, version_id: int | None = None) -> tuple[Entity, ...]:
    """The entities to review for a document: model version ``version_id`` (default: the active one) + rules."""
    return tuple(extract.document_entities(engine, document_id, version_id))


@requires(Permission.REVIEW)
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


@open_to_all
def snap_range(tokenizer: Any, text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` snapped to the tokenizer's token boundaries (:func:`core.review.snap_to_tokens`)."""
    from training.encoding import tokenize_documents

    (tdoc,) = tokenize_documents(tokenizer, [(0, text)])
    return snap_to_tokens(text, tdoc.offsets, int(start), int(end))


# ---------------------------------------------------------------- a report under review


@dataclass(frozen=True)
class ReportReview:
    document: StoredDocument
    version: ModelVersionInfo | None  # the model version that suggested (None: rules only)
    candidates: tuple[Entity, ...]  # the suggestions
    state: ReviewState
    items: tuple[ReviewItem, ...]
    pending: tuple[Entity, ...]
    annotators: tuple[Annotation, ...] = ()  # the annotators' usable (non-cancelled human) annotations
    differing: tuple[Annotation, ...] = ()  # those whose spans differ from this review (none before a decision)
    trains: str = ""  # which annotation the next training run uses, in words

    @property
    def conflicts(self) -> list[list[Entity]]:
        """Pending suggestions that overlap one another (not a reviewed span): the reviewer chooses before the
        report can be accepted."""
        free = [e for e in self.pending if e not in overlapped_by(self.pending, self.state.spans)]
        return overlap_groups(free)

    @property
    def no_entity(self) -> bool:
        """A finished review with no entity: the reviewer confirmed "no entity here" (a negative training example)."""
        return self.state.complete and not self.state.spans

    @property
    def status(self) -> str:
        """The reviewer's review in words: not reviewed, in progress, reviewed, reviewed: no entity."""
        if self.state.annotation_id is None:
            return db_review.STATUSES[0]
        if not self.state.complete:
            return db_review.STATUSES[1]
        return db_review.STATUSES[3] if self.no_entity else db_review.STATUSES[2]

    @property
    def shown(self) -> tuple[ReviewItem, ...]:
        """Reviewed entities plus suggestions still pending (rejected or corrected suggestions left out)."""
        return tuple(it for it in self.items if it.status != "decided")

    @property
    def current_entities(self) -> list[Entity]:
        """What the report says now: the entities of :attr:`shown`."""
        return [it.entity for it in self.shown]


def _trains(doc: StoredDocument, state: ReviewState) -> str:
    if doc.training is None:
        return "nothing yet: the report has no finished human or review annotation"
    meta = doc.training.meta
    if state.annotation_id is not None and meta.get("annotation_id") == state.annotation_id:
        return "your review"
    who = meta.get("author") or "unknown"
    return f"the annotation by {who} (annotation #{meta.get('annotation_id')})"


def _reviewer(reviewer: str | None) -> str:
    """Who reviews: ``None``, the person acting (a signed-in person's subject, ``local:<user>``...); a signed-in
    person is always themselves, whatever name is passed; otherwise the name typed (empty: nobody named yet)."""
    if reviewer is None or reviewer.strip():
        return acting_name(reviewer)
    actor = current_actor()
    return actor.subject if actor is not None and actor.user_id is not None else ""


@requires(Permission.REVIEW)
def open_report(engine: Any, document_id: int, reviewer: str | None = None,
                version_id: int | None = None) -> ReportReview:
    """Everything the Review page shows for one report and reviewer (``None``: the person acting; an empty name
    in single-user mode: the suggestions only)."""
    reviewer = _reviewer(reviewer)
    doc = _document(engine, document_id)
    version = _version(engine, doc.project_id, version_id)
    candidates = suggested_entities(engine, document_id, version.id if version else None)
    if (reviewer or "").strip():
        state = db_review.review_state(engine, document_id, reviewer)
    else:  # nobody named yet: the suggestions, read-only
        state = ReviewState(document_id, "", None, (), False)
    items = review_items(candidates, state.spans, state.decided)
    pending = pending_entities(candidates, state.spans, state.decided)
    annotators = tuple(a for a in doc.annotations if a.source == "human" and not a.cancelled)
    mine = set(state.spans) if state.annotation_id is not None else None
    differing = tuple(a for a in annotators if mine is not None and set(a.spans) != mine)
    return ReportReview(doc, version, candidates, state, tuple(items), tuple(pending), annotators, differing,
                        _trains(doc, state))


# ---------------------------------------------------------------- decisions


@requires(Permission.REVIEW, action="review_decision")
def decide(engine: Any, document_id: int, reviewer: str | None, action: str, *, entity: Entity | None = None,
           label: str | None = None, start: int | None = None, end: int | None = None,
           version_id: int | None = None, candidates: Sequence[Entity] | None = None, tokenizer: Any = None,
           comment: str | None = None) -> ReviewState:
    """One review decision, stored with the review annotation in one transaction (:func:`db.review.record_decision`).

    ``accept`` / ``reject``: ``entity``. ``relabel``: ``entity`` and ``label``. ``adjust``: ``entity``, ``start``,
    ``end`` (snapped to tokens). ``add``: ``start``, ``end``, ``label`` (snapped). ``accept_all``: nothing (refused
    while suggestions overlap one another). ``no_entity``: nothing (refused while the review holds entities): the
    reviewer confirms the report has no entity, which finishes the review with zero entities.
    ``candidates``: the suggestions the reviewer saw (computed again when not given). ``reviewer``: ``None`` for
    the person acting; a signed-in person always decides as themselves (their subject), whatever name is passed.
    """
    reviewer = db_review.check_reviewer(_reviewer(reviewer))
    doc = _document(engine, document_id)
    version = _version(engine, doc.project_id, version_id)
    if candidates is None:
        candidates = suggested_entities(engine, document_id, version.id if version else None)
    before = after = None
    if action in ("accept", "reject", "relabel", "adjust"):
        if entity is None:
            raise ReportLensError(f"Pick the entity to {action} first.")
        before = entity
    if action in ("relabel", "add") and not (label or "").strip():
        raise ReportLensError("Choose a label for the entity.")
    if action == "relabel" and entity is not None:
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
