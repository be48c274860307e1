"""Document classification metrics (Label Studio ``Choices``): accuracy, macro / micro F1, ROC AUC, confusion matrix,
and the misclassified documents with a snippet, for single-label and multi-label tasks.

- Single-label: ``gold`` is one class per document, ``probs`` ``(n_docs, n_classes)`` rows summing to 1, the prediction
  is the argmax. ROC AUC is one-vs-rest per class, macro-averaged over the classes that have both positive and
  negative documents (a class seen in every or no document has no AUC; it is listed in ``auc_undefined``).
- Multi-label: ``gold`` is a set of classes per document, ``probs`` independent sigmoid probabilities, a class is
  predicted when its probability >= ``threshold``. Accuracy is exact-set (subset) accuracy; the confusion matrix is one
  2x2 matrix per class ``[[tn, fp], [fn, tp]]``.

``f1`` (what early stopping and the Models page compare) is the macro F1 over the classes that occur in ``gold``
(a class nobody labeled cannot be scored), and ``precision``/``recall`` are the macro values beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from core.types import ReportLensError


def _check(gold: Sequence[Any], probs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape != (len(gold), len(classes)):
        raise ReportLensError(f"probabilities must have shape ({len(gold)}, {len(classes)}) (documents x classes); "
                              f"got {p.shape}.")
    return p


def classification_scores(
    gold: Sequence[str | Iterable[str]], probs: np.ndarray, classes: Sequence[str], *, multi_label: bool,
    threshold: float = 0.5, doc_ids: Sequence[Any] | None = None, texts: Mapping[Any, str] | None = None,
    max_examples: int = 200,
) -> dict[str, Any]:
    from sklearn.metrics import multilabel_confusion_matrix, precision_recall_fscore_support, roc_auc_score

    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    p = _check(gold, probs, classes)
    n = len(gold)
    y_true = np.zeros((n, len(classes)), dtype=int)
    for i, g in enumerate(gold):
        labels = [g] if isinstance(g, str) else list(g)
        unknown = [c for c in labels if c not in index]
        if unknown:
            raise ReportLensError(f"Gold class(es) {unknown} of document {i} are not among the model's classes "
                                  f"{classes}.")
        if not multi_label and len(labels) != 1:
            raise ReportLensError(f"Document {i} has {len(labels)} gold classes in a single-label task.")
        y_true[i, [index[c] for c in labels]] = 1
    if multi_label:
        y_pred = (p >= threshold).astype(int)
    else:
        y_pred = np.zeros_like(y_true)
        if n:
            y_pred[np.arange(n), p.argmax(axis=1)] = 1
    present = [k for k in range(len(classes)) if y_true[:, k].any()]
    out: dict[str, Any] = {"task": "classification", "multi_label": multi_label, "classes": classes, "n_docs": n,
                           "threshold": threshold if multi_label else None}
    if n == 0:
        return out | {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "micro_f1": 0.0,
                      "roc_auc": None, "auc_undefined": classes, "per_label": {}, "confusion_matrix": [],
                      "errors": [], "error_counts": {}}
    pr, rc, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=list(range(len(classes))),
                                                          average=None, zero_division=0)
    micro = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    per_label = {c: {"precision": float(pr[k]), "recall": float(rc[k]), "f1": float(f1[k]),
                     "support": int(support[k]), "predicted": int(y_pred[:, k].sum())}
                 for k, c in enumerate(classes)}
    aucs: dict[str, float] = {}
    undefined = []
    for k, c in enumerate(classes):
        if 0 < y_true[:, k].sum() < n:
            aucs[c] = float(roc_auc_score(y_true[:, k], p[:, k]))
            per_label[c]["roc_auc"] = aucs[c]
        else:
            undefined.append(c)
    if multi_label:
        accuracy = float((y_true == y_pred).all(axis=1).mean())
        matrix = multilabel_confusion_matrix(y_true, y_pred, labels=list(range(len(classes)))).tolist()
    else:
        t, q = y_true.argmax(axis=1), y_pred.argmax(axis=1)
        accuracy = float((t == q).mean())
        matrix = np.zeros((len(classes), len(classes)), dtype=int)
        np.add.at(matrix, (t, q), 1)
        matrix = matrix.tolist()
    macro = {name: float(np.mean([v[k] for k in present])) if present else 0.0
             for name, v in (("precision", pr), ("recall", rc), ("f1", f1))}
    errors = []
    ids = list(doc_ids) if doc_ids is not None else list(range(n))
    for i in range(n):
        if (y_true[i] == y_pred[i]).all():
            continue
        text = (texts or {}).get(ids[i], "")
        errors.append({
            "type": "misclassified", "doc_id": ids[i],
            "gold": [classes[k] for k in np.flatnonzero(y_true[i])],
            "pred": [classes[k] for k in np.flatnonzero(y_pred[i])],
            "confidence": round(float(p[i].max()), 4), "snippet": text[:120],
        })
    errors.sort(key=lambda e: -e["confidence"])  # confident mistakes first: the ones worth a look
    return out | {
        "accuracy": accuracy, **macro, "micro_f1": float(micro[2]),
        "roc_auc": float(np.mean(list(aucs.values()))) if aucs else None, "auc_undefined": undefined,
        "per_label": per_label, "confusion_matrix": matrix, "error_counts": {"misclassified": len(errors)},
        "errors": errors[:max_examples],
    }
