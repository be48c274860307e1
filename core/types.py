"""Core domain types: frozen dataclasses that every layer passes around.

Nothing here imports streamlit, sqlalchemy, torch or transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import IssueCode, IssueLevel

SNIPPET_RADIUS = 20


def snippet(text: str, start: int, end: int, radius: int = SNIPPET_RADIUS) -> str:
    """A short, single-line excerpt of ``text`` around ``[start, end)`` for error messages.

    The span itself is wrapped in ``[[ ]]`` so a reader sees exactly where the offsets point.
    """
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    left = text[max(0, start - radius) : start]
    mid = text[start:end]
    right = text[end : end + radius]
    out = f"{'…' if start - radius > 0 else ''}{left}[[{mid}]]{right}{'…' if end + radius < len(text) else ''}"
    return out.replace("\n", "⏎").replace("\r", "")


class ReportLensError(ValueError):
    """Base class for errors about user input. Messages say what, where and how to fix."""


class SpanError(ReportLensError):
    """A span that cannot belong to its document (outside the text, empty, reversed)."""


@dataclass(frozen=True, order=True)
class Span:
    """Character span ``[start, end)`` into a document text, with its entity label."""

    start: int
    end: int
    label: str

    def __post_init__(self) -> None:
        if not isinstance(self.start, int) or not isinstance(self.end, int):
            raise SpanError(f"Span offsets must be integers, got ({self.start!r}, {self.end!r}, {self.label!r}).")
        if not self.label or not isinstance(self.label, str):
            raise SpanError(f"Span ({self.start}, {self.end}) has no label; give every span a label.")

    @property
    def length(self) -> int:
        return self.end - self.start

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def as_tuple(self) -> tuple[int, int, str]:
        return (self.start, self.end, self.label)

    def describe(self, text: str | None = None) -> str:
        base = f"span ({self.start}, {self.end}, {self.label!r})"
        if text is not None:
            base += f" {snippet(text, self.start, self.end)!r}"
        return base


def check_span(text: str, span: Span, doc_id: Any = None) -> None:
    """Raise :class:`SpanError` naming the document, the span and a snippet if ``span`` cannot be in ``text``."""
    where = f"Document {doc_id}: " if doc_id is not None else ""
    if span.start < 0 or span.end > len(text):
        raise SpanError(
            f"{where}{span.describe()} lies outside the text (length {len(text)}). "
            "Fix the offsets in Label Studio or re-export the task."
        )
    if span.start >= span.end:
        raise SpanError(
            f"{where}{span.describe()} is empty or reversed (start must be < end). Delete or redraw the region."
        )


@dataclass(frozen=True)
class Document:
    """A report text with its (training-view) spans and metadata. Validated on construction."""

    id: Any
    text: str
    spans: tuple[Span, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ReportLensError(f"Document {self.id}: text must be a string, got {type(self.text).__name__}.")
        object.__setattr__(self, "spans", tuple(sorted(self.spans)))
        for span in self.spans:
            check_span(self.text, span, self.id)

    def span_text(self, span: Span) -> str:
        return self.text[span.start : span.end]


AnnotationSource = Literal["human", "model", "rule", "review"]


@dataclass(frozen=True)
class Annotation:
    """One annotation (or prediction) of a task, as imported from Label Studio or produced by a model/rule.

    ``spans`` are entity regions (``Labels`` results); ``choices`` are document labels (``Choices`` results).
    """

    source: AnnotationSource = "human"
    spans: tuple[Span, ...] = ()
    choices: tuple[str, ...] = ()
    external_id: str | None = None  # Label Studio annotation/prediction id
    author: str | None = None
    created_at: str | None = None  # ISO 8601 as given by Label Studio
    updated_at: str | None = None
    ground_truth: bool = False
    cancelled: bool = False
    model_version: str | None = None
    score: float | None = None
    span_scores: tuple[float | None, ...] = ()  # parallel to spans for predictions; empty for human work
    stale: bool = False  # made on an earlier text of its document (core.identity); never trains


@dataclass(frozen=True)
class ParsedTask:
    """One Label Studio task (or DICOM file, or CoNLL document) ready to be stored.

    ``task_id`` is the Label Studio task id when the export carries one; otherwise ``None`` and the
    importer keys the document by a hash of its text.
    """

    text: str
    task_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    annotations: tuple[Annotation, ...] = ()
    position: int = 0  # 0-based index in the source file, for messages
    source_name: str | None = None  # e.g. the DICOM file name inside a zip
    ls_project: int | None = None  # the Label Studio project the export says the task is in (core.identity)

    @property
    def ref(self) -> str:
        """How messages name this task."""
        if self.task_id is not None:
            return f"Task {self.task_id}"
        if self.source_name:
            return f"File {self.source_name}"
        return f"Item #{self.position + 1}"


@dataclass(frozen=True)
class Issue:
    """A problem found in user input, reported rather than raised when the rest of the batch can go on.

    ``level``: error (the item or span was skipped), warning (it was repaired or a policy applied),
    info (a fact worth knowing, e.g. the label set was inferred). ``code`` is an :class:`~core.errors.IssueCode`
    (see ``docs/issue-codes.md``); a string is read as its member, and only an unknown code from an old stored
    summary stays a plain string. Build issues with :meth:`of`, which formats the code's message template.
    """

    level: IssueLevel
    code: IssueCode | str
    message: str  # what, where, and how to fix, in one or two sentences
    task: str | None = None  # how the task is named, e.g. "Task 812"
    span: tuple[int, int, str] | None = None
    snippet: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.code, IssueCode):
            object.__setattr__(self, "code", IssueCode.lookup(self.code))

    @classmethod
    def of(
        cls,
        code: IssueCode,
        *,
        task: str | None = None,
        span: tuple[int, int, str] | None = None,
        snippet: str | None = None,
        level: IssueLevel | None = None,
        **fields: Any,
    ) -> Issue:
        """An issue of ``code`` at its default level (or ``level``), its message formatted from ``task`` and
        ``fields``: ``Issue.of(IssueCode.EMPTY_TEXT, task="Task 3", field="text")``."""
        message = code.msg(task=task, **fields)
        return cls(level or code.level, code, message, task=task, span=span, snippet=snippet)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "code": str(self.code),
            "message": self.message,
            "task": self.task,
            "span": list(self.span) if self.span else None,
            "snippet": self.snippet,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Issue:
        span = d.get("span")
        return cls(
            level=d["level"],
            code=IssueCode.lookup(d["code"]),
            message=d["message"],
            task=d.get("task"),
            span=tuple(span) if span else None,  # type: ignore[arg-type]
            snippet=d.get("snippet"),
        )


OUTSIDE = "O"


@dataclass(frozen=True)
class LabelSchema:
    """Entity labels and their BIO tag set. Saved with every model so ids mean the same thing later."""

    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        if len(set(labels)) != len(labels):
            raise ReportLensError(f"Label schema has duplicate labels: {sorted(labels)}.")
        for lab in labels:
            if not lab or lab == OUTSIDE or lab.startswith(("B-", "I-")):
                raise ReportLensError(
                    f"Label {lab!r} cannot be used: labels must be non-empty, not 'O' and not start with 'B-'/'I-'."
                )
        object.__setattr__(self, "labels", labels)

    @classmethod
    def from_labels(cls, labels: Any) -> LabelSchema:
        return cls(tuple(sorted(set(labels))))

    @property
    def tags(self) -> tuple[str, ...]:
        out = [OUTSIDE]
        for lab in self.labels:
            out += [f"B-{lab}", f"I-{lab}"]
        return tuple(out)

    @property
    def label2id(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tags)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.tags))

    def to_json(self) -> str:
        return json.dumps({"labels": list(self.labels)})

    @classmethod
    def from_json(cls, s: str) -> LabelSchema:
        return cls(tuple(json.loads(s)["labels"]))


ENTITY_SOURCES = ("model", "rule", "both", "human", "review")


@dataclass(frozen=True)
class Entity:
    """An extracted entity as the review page, the rules and the structured result see it.

    ``score`` is a confidence in 0..1; ``source`` one of :data:`ENTITY_SOURCES` (``"both"`` = model and rules agree).
    ``attrs`` carries what a rule or a normaliser found: ``{"negated": True}``, ``{"uncertain": True}``,
    ``{"value": 78, "unit": "bpm"}``, ``{"rule": "heart_rate"}``, ``{"conflict": "..."}`` ...
    """

    start: int
    end: int
    label: str
    score: float = 1.0
    source: str = "model"
    attrs: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not (0 <= self.start < self.end):
            raise ReportLensError(f"Entity [{self.start}, {self.end}) {self.label!r}: need 0 <= start < end.")
        if self.source not in ENTITY_SOURCES:
            raise ReportLensError(f"Entity source {self.source!r} is not one of {ENTITY_SOURCES}.")

    @property
    def span(self) -> Span:
        return Span(self.start, self.end, self.label)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "label": self.label, "score": self.score,
                "source": self.source, "attrs": dict(self.attrs)}
