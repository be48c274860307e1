"""Turning Label Studio ``result`` lists (of an annotation or a prediction) into spans and document choices, and the
per-file :class:`ParseContext` the Label Studio family of readers (JSON, JSON-MIN, CoNLL, brat) shares."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.errors import IssueCode
from core.formats.labelconfig import DEFAULT_TEXT_FIELD, LabelConfig, LabelTally, short_list
from core.formats.report import ParseReport
from core.spancheck import as_offset, check_region
from core.types import Annotation, Issue, Span, snippet

SPAN_TYPES = ("labels",)
CHOICE_TYPES = ("choices", "taxonomy")


class ParseContext:
    """Per-file state: the config (if any), the report, the label tally, and counts summarised at the end."""

    def __init__(self, config: LabelConfig | None, report: ParseReport) -> None:
        self.config = config
        self.report = report
        self.tally = LabelTally()
        self.text_field = config.text_field if config else DEFAULT_TEXT_FIELD
        self.text_field_guessed = False
        self.ignored: Counter[str] = Counter()
        self.prediction_ids = 0
        self.string_meta: set[str] = set()  # JSON-MIN string fields kept as metadata

    def known_span(self, label: str) -> bool:
        return self.config is None or label in self.config.span_labels

    def known_choice(self, label: str) -> bool:
        return self.config is None or label in self.config.choice_labels

    def other_text(self, to_name: Any) -> bool:
        """True when a region targets a different ``<Text>`` than the one the config reads."""
        target = self.config.to_name if self.config else None
        return bool(target and isinstance(to_name, str) and to_name and to_name != target)

    def close(self) -> None:
        """Issues that summarise the whole file, and the final config (given, or inferred from the results)."""
        report = self.report
        if self.ignored:
            counts = ", ".join(f"{k} ×{v}" for k, v in sorted(self.ignored.items()))
            report.note(IssueCode.IGNORED_RESULTS, n=sum(self.ignored.values()), counts=counts, where="",
                        imported="<Labels> regions on the report text (spans) and <Choices>/<Taxonomy> (document "
                        "labels)")
        if self.prediction_ids:
            report.note(IssueCode.PREDICTION_IDS_SKIPPED, n=self.prediction_ids)
        if self.string_meta and self.config is None and report.format == "json-min":
            report.note(IssueCode.JSON_MIN_STRINGS, fields=short_list(sorted(self.string_meta)))
        report.config = self.config if self.config is not None else self.tally.config()
        if self.config is None:
            cfg = report.config
            report.note(IssueCode.INFERRED_CONFIG, n_spans=len(cfg.span_labels), spans=short_list(cfg.span_labels),
                        n_choices=len(cfg.choice_labels), choices=short_list(cfg.choice_labels))
        if report.tasks_seen == 0:
            report.note(IssueCode.NO_TASKS)


@dataclass
class Regions:
    """Spans (with per-span scores, for predictions) and choices collected from one annotation."""

    spans: list[Span] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------- single regions


def unknown_span(label: str, span: tuple[int, int, str] | None, text: str, ref: str, ctx: ParseContext) -> None:
    known = ctx.config.span_labels if ctx.config else ()
    where = f"span ({span[0]}, {span[1]}, {label!r})" if span else "a span"
    ctx.report.add(
        Issue.of(
            IssueCode.UNKNOWN_LABEL,
            task=ref,
            span=span,
            snippet=snippet(text, span[0], span[1]) if span else None,
            what=where, label=label, kind="span", known=short_list(known), control="Labels",
        )
    )


def span_value(
    value: dict[str, Any],
    names: tuple[Any, Any],
    text: str,
    ref: str,
    ctx: ParseContext,
    out: Regions,
    score: float | None = None,
) -> None:
    """Read one ``{start, end, text, labels}`` region (``names`` = its from_name, to_name) into ``out``."""
    labels = value.get("labels")
    start, end = value.get("start"), value.get("end")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        ctx.report.note(IssueCode.MISSING_LABEL, task=ref, start=start, end=end, labels=labels)
        return
    ctx.report.spans_seen += len(labels)
    checked = check_region(text, start, end, ",".join(labels), value.get("text"), ref)
    if checked.issue:
        ctx.report.add(checked.issue)
    ctx.report.repaired += int(checked.repaired)
    raw = (as_offset(start), as_offset(end))
    for label in labels:
        if not ctx.known_span(label):
            s, e = checked.offsets or raw
            unknown_span(label, (s, e, label) if s is not None and e is not None else None, text, ref, ctx)
            continue
        ctx.tally.add_span(label, *names)
        if checked.offsets:
            out.spans.append(Span(checked.offsets[0], checked.offsets[1], label))
            out.scores.append(score)


def add_choices(labels: Any, from_name: Any, ref: str, ctx: ParseContext, out: Regions) -> None:
    """Add document-level choice labels (a list of strings) from control ``from_name``."""
    for label in labels if isinstance(labels, list) else [labels]:
        if not isinstance(label, str) or not label:
            ctx.ignored["choices (empty or not text)"] += 1
            continue
        if not ctx.known_choice(label):
            known = ctx.config.choice_labels if ctx.config else ()
            ctx.report.note(IssueCode.UNKNOWN_LABEL, task=ref, what=f"a choice from {from_name!r}", label=label,
                            kind="choice", known=short_list(known), control="Choices")
            continue
        ctx.tally.add_choice(label, from_name)
        out.choices.append(label)


def taxonomy_leaves(paths: Any) -> list[Any]:
    """``[["Three", "Sub"], ["One"]]`` -> ``["Sub", "One"]`` (the chosen node of each path)."""
    if not isinstance(paths, list):
        return []
    return [p[-1] if isinstance(p, list) and p else p for p in paths]


def read_result(result: Any, text: str, ref: str, ctx: ParseContext, out: Regions) -> None:
    """Dispatch one item of a ``result`` list; unsupported types are only counted."""
    if not isinstance(result, dict):
        ctx.ignored["not an object"] += 1
        return
    kind = str(result.get("type") or "").lower()
    value = result.get("value") if isinstance(result.get("value"), dict) else {}
    if kind in SPAN_TYPES or ("labels" in value and "start" in value and "end" in value):
        if ctx.other_text(result.get("to_name")):
            ctx.ignored[f"labels on '{result.get('to_name')}'"] += 1
            return
        names = (result.get("from_name"), result.get("to_name"))
        span_value(value, names, text, ref, ctx, out, number(result.get("score")))
    elif kind in CHOICE_TYPES:
        if "start" in value or "end" in value:
            ctx.ignored[f"{kind} (per-region)"] += 1
            return
        labels = value.get("choices") if kind == "choices" else taxonomy_leaves(value.get("taxonomy"))
        add_choices(labels or [], result.get("from_name"), ref, ctx, out)
    else:
        ctx.ignored[kind or "untyped"] += 1


# ---------------------------------------------------------------- whole annotations


def finish(out: Regions, text: str, ref: str, ctx: ParseContext, where: str) -> Regions:
    """Drop duplicate spans (same offsets and label) with one note; dedupe choices, keeping their order."""
    seen: set[Span] = set()
    clean = Regions(choices=list(dict.fromkeys(out.choices)))
    dups: list[Span] = []
    for span, score in zip(out.spans, out.scores, strict=True):
        if span in seen:
            dups.append(span)
            continue
        seen.add(span)
        clean.spans.append(span)
        clean.scores.append(score)
    if dups:
        ctx.report.add(
            Issue.of(
                IssueCode.DUPLICATE_SPAN,
                task=ref,
                span=dups[0].as_tuple(),
                snippet=snippet(text, dups[0].start, dups[0].end),
                where=where, n=len(dups), example=dups[0].describe(text),
            )
        )
    return clean


def read_results(results: Any, text: str, ref: str, ctx: ParseContext, where: str) -> Regions:
    out = Regions()
    if results is not None and not isinstance(results, list):
        ctx.report.note(IssueCode.BAD_RESULT, task=ref, where=where, kind=type(results).__name__)
        return out
    for result in results or []:
        read_result(result, text, ref, ctx, out)
    return finish(out, text, ref, ctx, where)


def author_of(completed_by: Any) -> str | None:
    """``completed_by`` is a user id (int) in most exports, a user object with ``email`` in others."""
    if isinstance(completed_by, dict):
        return text_or_none(completed_by.get("email") or completed_by.get("id"))
    return text_or_none(completed_by)


def human_annotation(ann: dict[str, Any], index: int, text: str, ref: str, ctx: ParseContext) -> Annotation:
    ext = text_or_none(ann.get("id"))
    where = f"annotation {ext}" if ext else f"annotation #{index + 1}"
    regions = read_results(ann.get("result"), text, ref, ctx, where)
    return Annotation(
        source="human",
        spans=tuple(regions.spans),
        choices=tuple(regions.choices),
        external_id=ext,
        author=author_of(ann.get("completed_by")),
        created_at=text_or_none(ann.get("created_at")),
        updated_at=text_or_none(ann.get("updated_at")),
        ground_truth=bool(ann.get("ground_truth")),
        cancelled=bool(ann.get("was_cancelled")),
    )


def model_annotation(pred: dict[str, Any], index: int, text: str, ref: str, ctx: ParseContext) -> Annotation:
    version = text_or_none(pred.get("model_version"))
    where = f"prediction of model {version!r}" if version else f"prediction #{index + 1}"
    regions = read_results(pred.get("result"), text, ref, ctx, where)
    return Annotation(
        source="model",
        spans=tuple(regions.spans),
        choices=tuple(regions.choices),
        external_id=text_or_none(pred.get("id")),
        created_at=text_or_none(pred.get("created_at")),
        updated_at=text_or_none(pred.get("updated_at")),
        model_version=version,
        score=number(pred.get("score")),
        span_scores=tuple(regions.scores),
    )
