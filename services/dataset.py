"""Dataset views shared by the Dataset page and the CLI: the project's alignment settings, token/BIO rows,
project-wide alignment, [UNK] share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.alignment import AlignConfig, make_windows, resolve_overlaps, spans_to_bio
from core.auth import Permission
from core.policy import TRAINING_SOURCES, select_training_annotation
from core.trainconfig import TrainConfig
from core.types import Issue, LabelSchema, ReportLensError, Span
from db.model_versions import active_model_version
from db.repository import project_texts, training_documents
from services.auth import open_to_all, requires
from training.encoding import EncodeSummary, encode_documents, measure_unk, tokenize_documents

UNK_WARN_SHARE = 0.05
MAX_ISSUES = 500


@dataclass(frozen=True)
class TrainingSettings:
    """How a project's training aligns spans to tokens: the active model version's recorded config, or the
    ``TrainConfig`` defaults before any model. ``base_model`` ``None`` = the default base model."""

    align: AlignConfig
    base_model: str | None
    source: str  # in words: "model v2 (active)", "the training defaults (no model trained yet)"
    note: str | None = None  # why a recorded config could not be used, when it could not


@requires(Permission.DATASET)
def training_settings(engine: Any, project_id: int) -> TrainingSettings:
    """The alignment (and base model) of the project's active model version, or the defaults when it has none."""
    version = active_model_version(engine, project_id)
    if version is None:
        return TrainingSettings(TrainConfig().align(), None, "the training defaults (no model trained yet)")
    try:
        config = TrainConfig.from_stored(version.config)
    except ReportLensError as exc:
        return TrainingSettings(TrainConfig().align(), None, "the training defaults",
                                f"The config recorded with model {version.name} is not valid any more ({exc}).")
    return TrainingSettings(config.align(), config.base_model, f"model {version.name} (active)")


@open_to_all
def describe_alignment(config: AlignConfig) -> str:
    """An alignment config in words, for the Dataset page."""
    edge = ("a span edge inside a token expands to the whole token" if config.partial_token == "expand"
            else "a span edge inside a token shrinks to the tokens wholly inside the span")
    pieces = "every sub-token tagged" if config.label_all_subtokens else "only a word's first sub-token tagged"
    overlap = {"longest": "of overlapping spans the longest is tagged"}.get(config.overlap_policy,
                                                                            f"overlaps: {config.overlap_policy}")
    return (f"{edge}; {pieces}; {overlap}; windows of {config.max_length} tokens sharing {config.stride} "
            f"(partial_token={config.partial_token!r}, label_all_subtokens={config.label_all_subtokens})")


@open_to_all
def displayed_spans(doc: Any) -> tuple[list[Span], list[Issue]]:
    """The spans of a stored document's training view that BIO can hold (highlighted on the page), and an
    ``overlap`` issue for each one left out."""
    spans = doc.training.spans if doc.training is not None else ()
    return resolve_overlaps(doc.text, spans, doc.id)


@open_to_all
def annotation_status(annotation: Any) -> str:
    """What an annotation row is for training, in words for the Dataset page. A review in progress is stored as a
    cancelled ``review`` annotation (db/review.py), so it is shown as a draft, not as cancelled work; a finished review
    with no entity is one the reviewer confirmed ("no entity here"): a negative example."""
    if annotation.source not in TRAINING_SOURCES:
        return "prediction (never trains)"
    if annotation.cancelled:
        return "review draft (trains once finished)" if annotation.source == "review" else "cancelled (never trains)"
    if annotation.source == "review" and not annotation.spans:
        return "reviewed: no entity (trains as a negative example)"
    return "usable"


@open_to_all
def training_status(doc: Any) -> str:
    """What a stored document's training view is, in words: not labeled, its entity count, or labeled with no
    entity (a confirmed review: "reviewed: no entity")."""
    if doc.training is None:
        return "Not labeled yet (no finished human or review annotation)."
    if doc.training.spans:
        n = len(doc.training.spans)
        return f"Labeled: {n} entit{'y' if n == 1 else 'ies'}."
    chosen = select_training_annotation(doc.annotations)
    if chosen is not None and chosen.source == "review":
        return (f"Reviewed: no entity (confirmed by {chosen.author or 'the reviewer'}); trains as a negative "
                "example.")
    return "Labeled: no entity (the annotation has no span); trains as a negative example."


@open_to_all
def bio_rows(tokenizer: Any, doc: Any, config: AlignConfig) -> tuple[list[dict[str, Any]], list[Issue]]:
    """One row per token of a stored document: the token, its character offsets and text, its tag and window(s)."""
    (tdoc,) = tokenize_documents(tokenizer, [(doc.id, doc.text)])
    spans = doc.training.spans if doc.training is not None else ()
    tags, issues = spans_to_bio(doc.text, tdoc.offsets, spans, tdoc.word_ids, config, doc.id)
    windows = make_windows(len(tdoc), config.max_length, config.stride, tdoc.word_ids)
    rows = []
    for i, (token, (s, e), tag) in enumerate(zip(tdoc.tokens, tdoc.offsets, tags, strict=True)):
        in_windows = [str(w) for w, (a, b) in enumerate(windows) if a <= i < b]
        rows.append({"#": i, "token": token, "start": s, "end": e, "text": doc.text[s:e],
                     "tag": tag if tag is not None else "(ignored)", "window": ",".join(in_windows)})
    return rows, issues


@requires(Permission.DATASET)
def project_alignment(engine: Any, project_id: int, tokenizer: Any, config: AlignConfig) -> dict[str, Any]:
    """Encode every labeled document of a project and collect the alignment issues (capped at ``MAX_ISSUES``)."""
    docs = list(training_documents(engine, project_id))
    schema = LabelSchema.from_labels({s.label for d in docs for s in d.spans})
    summary = EncodeSummary()
    for _ in encode_documents(tokenizer, docs, schema, config, summary):
        pass
    return {
        "project_id": project_id,
        "summary": summary.to_dict(),
        "issues": [i.to_dict() for i in summary.issues[:MAX_ISSUES]],
        "issues_not_shown": max(0, len(summary.issues) - MAX_ISSUES),
    }


@requires(Permission.DATASET)
def project_unk_share(engine: Any, project_id: int, tokenizer: Any, limit: int = 2000) -> float:
    """Share of the project's tokens (first ``limit`` documents) that the tokenizer maps to [UNK]."""
    unk, total = measure_unk(tokenizer, project_texts(engine, project_id, limit=limit), limit=limit)
    return unk / total if total else 0.0
