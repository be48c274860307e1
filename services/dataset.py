"""Dataset views shared by the Dataset page and the CLI: token/BIO rows, project-wide alignment, [UNK] share."""

from __future__ import annotations

from typing import Any

from core.alignment import AlignConfig, make_windows, spans_to_bio
from core.policy import TRAINING_SOURCES
from core.types import Issue, LabelSchema
from db.repository import project_texts, training_documents
from training.encoding import EncodeSummary, encode_documents, measure_unk, tokenize_documents

UNK_WARN_SHARE = 0.05
MAX_ISSUES = 500


def annotation_status(annotation: Any) -> str:
    """What an annotation row is for training, in words for the Dataset page. A review in progress is stored as a
    cancelled ``review`` annotation (db/review.py), so it is shown as a draft, not as cancelled work."""
    if annotation.source not in TRAINING_SOURCES:
        return "prediction (never trains)"
    if annotation.cancelled:
        return "review draft (trains once finished)" if annotation.source == "review" else "cancelled (never trains)"
    return "usable"


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


def project_unk_share(engine: Any, project_id: int, tokenizer: Any, limit: int = 2000) -> float:
    """Share of the project's tokens (first ``limit`` documents) that the tokenizer maps to [UNK]."""
    unk, total = measure_unk(tokenizer, project_texts(engine, project_id, limit=limit), limit=limit)
    return unk / total if total else 0.0
