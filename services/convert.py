"""Export file -> token-aligned BIO windows as JSON lines (``cli.py convert``), without touching the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.alignment import AlignConfig
from core.auth import Permission
from core.formats.registry import iter_tasks
from core.formats.report import ParseReport
from core.policy import training_documents_from_tasks
from core.types import LabelSchema, ReportLensError
from services.auth import requires
from services.files import atomic_writer
from training.encoding import EncodeSummary, encode_documents, load_tokenizer, resolve_model

MAX_ISSUES_SHOWN = 50


@requires(Permission.DATASET)
def convert_export(
    export: Path,
    out: Path,
    *,
    model: str | None = None,
    align: AlignConfig | None = None,
    config: Any = None,
    include_unlabeled: bool = False,
) -> dict[str, Any]:
    """Write one JSON object per window to ``out`` and return a JSON-ready summary with the alignment issues.

    Tasks without a human annotation are not training data: they are skipped unless ``include_unlabeled``, and
    then written with every tag ``null`` (unknown), never as all-``O`` negatives.
    The output is written to a temporary file and moved into place at the end, so a failure never leaves a
    half-written file behind.
    """
    align = align or AlignConfig()
    report = ParseReport()
    all_docs = list(training_documents_from_tasks(iter_tasks(export, config=config, report=report)))
    if not all_docs:
        raise ReportLensError(f"{export} holds no usable task; check the export format and the issues it reports.")
    docs = [d for d in all_docs if include_unlabeled or d.meta.get("labeled")]
    if not docs:
        raise ReportLensError(
            f"{export} has {len(all_docs)} tasks but none with a (non-cancelled) annotation; label some in Label "
            "Studio first, or pass --include-unlabeled to write their tokens with null tags."
        )
    labeled = {d.id for d in docs if d.meta.get("labeled")}
    final_config = report.config
    labels = set(final_config.span_labels) if final_config is not None else set()
    labels.update(s.label for d in docs for s in d.spans)
    schema = LabelSchema.from_labels(labels)
    tokenizer = load_tokenizer(model)
    summary = EncodeSummary()
    with atomic_writer(out) as fh:
        for enc in encode_documents(tokenizer, docs, schema, align, summary):
            for window in enc.windows:
                row = window.to_json()
                if enc.doc_id not in labeled:
                    row["tags"] = [None] * len(row["tags"])
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    issues = [i.to_dict() for i in report.issues] + [i.to_dict() for i in summary.issues]
    return {
        "export": str(export),
        "out": str(out),
        "format": report.format,
        "model": resolve_model(model),
        "labels": list(schema.labels),
        "tags": list(schema.tags),
        "align": align.to_dict(),
        "labeled_documents": len(labeled),
        "unlabeled_documents": len(all_docs) - len(labeled),
        "unlabeled_written": include_unlabeled,
        **summary.to_dict(),
        "parse_issue_counts": _count(report.issues),
        "issues": issues[:MAX_ISSUES_SHOWN],
        "issues_not_shown": max(0, len(issues) - MAX_ISSUES_SHOWN),
    }


def _count(issues: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for issue in issues:
        code = str(issue.code)  # the stored string value of an IssueCode
        counts[code] = counts.get(code, 0) + 1
    return counts
