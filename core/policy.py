"""Which of a task's annotations the training view uses.

Default policy: a non-cancelled human annotation marked ``ground_truth`` wins; otherwise the most recent
non-cancelled human annotation (by ``updated_at``, then ``created_at``, then position). Model predictions and
rule output are never training labels, and neither is a stale annotation (made on an earlier text of its document,
see :mod:`core.identity`): its offsets point into another text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from core.types import Annotation, Document, ParsedTask

TRAINING_SOURCES = ("human", "review")
POLICIES = ("latest", "ground_truth_then_latest")
DEFAULT_POLICY = "ground_truth_then_latest"


def _when(a: Annotation) -> str:
    return a.updated_at or a.created_at or ""


def select_training_annotation(
    annotations: Sequence[Annotation], policy: str = DEFAULT_POLICY
) -> Annotation | None:
    """The annotation whose spans and choices train the model, or ``None`` when the task is unlabeled."""
    if policy not in POLICIES:
        raise ValueError(f"Unknown annotation policy {policy!r}; choose one of {', '.join(POLICIES)}.")
    usable = [(i, a) for i, a in enumerate(annotations) if a.source in TRAINING_SOURCES and not a.cancelled
              and not a.stale]
    if not usable:
        return None
    if policy == "ground_truth_then_latest":
        gt = [(i, a) for i, a in usable if a.ground_truth]
        if gt:
            usable = gt
    # ISO 8601 strings from one Label Studio instance sort chronologically; ties go to the later one in the file.
    return max(usable, key=lambda ia: (_when(ia[1]), ia[0]))[1]


def training_documents_from_tasks(tasks: Iterable[ParsedTask], policy: str = DEFAULT_POLICY) -> Iterator[Document]:
    """Parsed tasks -> core Documents holding the spans of each task's training annotation (unlabeled: no spans).

    Document ids are the Label Studio task ids where present, otherwise ``item-<n>`` (1-based position).
    """
    for task in tasks:
        chosen = select_training_annotation(task.annotations, policy)
        doc_id = task.task_id if task.task_id is not None else f"item-{task.position + 1}"
        spans = chosen.spans if chosen is not None else ()
        meta = {"labeled": chosen is not None, "choices": list(chosen.choices) if chosen is not None else [],
                **({"source_name": task.source_name} if task.source_name else {})}
        yield Document(doc_id, task.text, spans, meta)
