"""Entity-level evaluation: strict precision / recall / F1 and error analysis over span sets.

An entity counts as found only when start, end and label all match exactly (seqeval ``mode="strict"`` on IOB2 tags
gives the same numbers for the same entities; a test checks this). Precision, recall or F1 whose denominator is 0 is
0, as in seqeval.

Error analysis pairs what is left after exact matches, one to one, in this order:

1. ``label_confusion``: a prediction with exactly a gold span's offsets but another label;
2. ``boundary``: a prediction with a gold span's label that overlaps it with other offsets (largest overlap first);
3. ``false_negative``: a gold span left unpaired; ``false_positive``: a prediction left unpaired (a prediction that
   overlaps a gold span with both other offsets and another label ends up here, with that gold span as a false
   negative).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.types import Span, snippet

ErrorType = Literal["false_positive", "false_negative", "boundary", "label_confusion"]
ERROR_TYPES: tuple[ErrorType, ...] = ("false_positive", "false_negative", "boundary", "label_confusion")
SpanSets = Mapping[Any, Iterable[Span]]


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float | int]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": n_gold, "predicted": n_pred, "tp": tp}


def _as_sets(gold: SpanSets, pred: SpanSets) -> list[tuple[Any, set[Span], set[Span]]]:
    doc_ids = list(dict.fromkeys([*gold.keys(), *pred.keys()]))
    return [(d, set(gold.get(d, ())), set(pred.get(d, ()))) for d in doc_ids]


def entity_scores(gold: SpanSets, pred: SpanSets) -> dict[str, Any]:
    """Micro precision/recall/F1 over all documents, plus ``per_label`` and ``macro_f1`` (mean over gold labels).

    ``gold`` and ``pred`` map document id -> spans; a document missing from one side has no spans there.
    """
    tp: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    for _, g, p in _as_sets(gold, pred):
        n_gold.update(s.label for s in g)
        n_pred.update(s.label for s in p)
        tp.update(s.label for s in g & p)
    labels = sorted(set(n_gold) | set(n_pred))
    per_label = {lab: prf(tp[lab], n_pred[lab], n_gold[lab]) for lab in labels}
    micro = prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    gold_labels = [lab for lab in labels if n_gold[lab]]
    macro = sum(per_label[lab]["f1"] for lab in gold_labels) / len(gold_labels) if gold_labels else 0.0
    return {**micro, "macro_f1": macro, "per_label": per_label}


@dataclass(frozen=True)
class ErrorCase:
    type: ErrorType
    doc_id: Any
    gold: Span | None
    pred: Span | None
    snippet: str | None = None  # text around the span, the span in [[ ]], when texts were given

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "doc_id": self.doc_id,
                "gold": list(self.gold.as_tuple()) if self.gold else None,
                "pred": list(self.pred.as_tuple()) if self.pred else None, "snippet": self.snippet}


def _overlap(a: Span, b: Span) -> int:
    return max(0, min(a.end, b.end) - max(a.start, b.start))


def _doc_errors(doc_id: Any, g: set[Span], p: set[Span]) -> list[ErrorCase]:
    gold_left = sorted(g - p)
    pred_left = sorted(p - g)
    out: list[ErrorCase] = []
    for gs in list(gold_left):
        match = next((ps for ps in pred_left if (ps.start, ps.end) == (gs.start, gs.end)), None)
        if match is not None:
            out.append(ErrorCase("label_confusion", doc_id, gs, match))
            gold_left.remove(gs)
            pred_left.remove(match)
    pairs = sorted(((_overlap(gs, ps), gs, ps) for gs in gold_left for ps in pred_left
                    if gs.label == ps.label and gs.overlaps(ps)), key=lambda t: (-t[0], t[1], t[2]))
    for _, gs, ps in pairs:
        if gs in gold_left and ps in pred_left:
            out.append(ErrorCase("boundary", doc_id, gs, ps))
            gold_left.remove(gs)
            pred_left.remove(ps)
    out += [ErrorCase("false_negative", doc_id, gs, None) for gs in gold_left]
    out += [ErrorCase("false_positive", doc_id, None, ps) for ps in pred_left]
    return sorted(out, key=lambda e: ((e.gold or e.pred).start, ERROR_TYPES.index(e.type)))  # type: ignore[union-attr]


def error_analysis(gold: SpanSets, pred: SpanSets, texts: Mapping[Any, str] | None = None) -> list[ErrorCase]:
    """Every error, grouped per document in document order (see the module docstring for the categories)."""
    out: list[ErrorCase] = []
    for doc_id, g, p in _as_sets(gold, pred):
        for case in _doc_errors(doc_id, g, p):
            if texts is not None and doc_id in texts:
                start = min(s.start for s in (case.gold, case.pred) if s is not None)
                end = max(s.end for s in (case.gold, case.pred) if s is not None)
                case = ErrorCase(case.type, case.doc_id, case.gold, case.pred, snippet(texts[doc_id], start, end))
            out.append(case)
    return out


def evaluate_spans(
    gold: SpanSets, pred: SpanSets, texts: Mapping[Any, str] | None = None, max_examples: int = 200
) -> dict[str, Any]:
    """Scores plus error counts and up to ``max_examples`` error cases (JSON-ready, for metrics.json and the UI)."""
    scores = entity_scores(gold, pred)
    errors = error_analysis(gold, pred, texts)
    counts = Counter(e.type for e in errors)
    return {**scores, "documents": len(_as_sets(gold, pred)),
            "errors": {"counts": {t: counts.get(t, 0) for t in ERROR_TYPES},
                       "examples": [e.to_dict() for e in errors[:max_examples]]}}
