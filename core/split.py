"""Train/dev/test split by hashing: fixed per project, so metrics stay comparable across training runs.

A document's split depends only on its stable key (the Label Studio task id, else a hash of its text) and the
project's split seed: ``sha256(f"{seed}:{key}")`` read as a number in ``[0, 1)`` falls in the test band
``[0, test_ratio)``, the dev band ``[test_ratio, test_ratio + dev_ratio)`` or train. Adding documents never moves an
existing one; raising a ratio only moves documents *into* the larger split.

Hashing gives each split the project's label mix on average but cannot stratify exactly. :func:`split_documents`
therefore reports, rather than hides, what a small project gets:

* fewer than ``MIN_DOCS_FOR_SPLIT`` documents: everything trains and dev = train (the dev numbers then measure fit,
  not generalisation), no test split; reported as a ``tiny_project`` note;
* an empty dev or test split on a larger project: the train documents whose hash lies nearest the empty band are
  moved into it (at least one document); reported as ``split_repaired``;
* a label that has train examples but none in dev or test: reported as ``label_missing``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from core.types import ReportLensError

SplitName = Literal["train", "dev", "test"]
MIN_DOCS_FOR_SPLIT = 10


def document_key(ls_task_id: int | None, text: str) -> str:
    """The stable key a document keeps across re-imports: its Label Studio task id, else the sha256 of its text."""
    if ls_task_id is not None:
        return f"task:{ls_task_id}"
    return "text:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_ratios(dev_ratio: float, test_ratio: float) -> None:
    for name, value in (("dev_ratio", dev_ratio), ("test_ratio", test_ratio)):
        if not isinstance(value, int | float) or not 0.0 <= value < 1.0:
            raise ReportLensError(f"{name} must be a fraction in [0, 1), e.g. 0.15; got {value!r}.")
    if dev_ratio + test_ratio > 0.5:
        raise ReportLensError(
            f"dev_ratio + test_ratio = {dev_ratio + test_ratio:.2f} leaves less than half of the documents to train "
            "on; keep their sum at 0.5 or below (0.15 + 0.15 is usual)."
        )


def hash_unit(key: str, seed: int) -> float:
    """``key`` and ``seed`` -> a number in ``[0, 1)``, the same on every machine and Python version."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(key: str, seed: int, dev_ratio: float = 0.15, test_ratio: float = 0.15) -> SplitName:
    """The split of one document, from its stable key alone (see the module docstring)."""
    check_ratios(dev_ratio, test_ratio)
    u = hash_unit(key, seed)
    if u < test_ratio:
        return "test"
    if u < test_ratio + dev_ratio:
        return "dev"
    return "train"


@dataclass(frozen=True)
class SplitNote:
    code: str  # "tiny_project", "split_repaired", "label_missing"
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class DocumentSplit:
    """Document ids per split, in input order. ``dev_is_train``: tiny project, dev numbers measure fit only."""

    train: tuple[Any, ...]
    dev: tuple[Any, ...]
    test: tuple[Any, ...]
    dev_is_train: bool = False
    notes: tuple[SplitNote, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"train": list(self.train), "dev": list(self.dev), "test": list(self.test),
                "dev_is_train": self.dev_is_train, "notes": [n.to_dict() for n in self.notes]}


def split_documents(
    items: Iterable[tuple[Any, str]],
    seed: int = 0,
    dev_ratio: float = 0.15,
    test_ratio: float = 0.15,
    labels: Mapping[Any, Iterable[str]] | None = None,
    min_docs: int = MIN_DOCS_FOR_SPLIT,
) -> DocumentSplit:
    """Split ``(doc id, stable key)`` pairs; ``labels`` (doc id -> its span labels) only feeds the coverage notes."""
    check_ratios(dev_ratio, test_ratio)
    pairs = list(items)
    ids = [doc_id for doc_id, _ in pairs]
    if len(set(ids)) != len(ids):
        raise ReportLensError("split_documents got the same document id twice; pass each document once.")
    if len(pairs) < min_docs:
        note = SplitNote("tiny_project", (
            f"Only {len(pairs)} labeled documents (fewer than {min_docs}): all of them train and the dev metrics are "
            "computed on the training documents, so they measure fit, not accuracy on new reports. Label more "
            "documents for an honest dev/test evaluation."))
        return DocumentSplit(tuple(ids), tuple(ids), (), dev_is_train=True, notes=(note,))
    units = {doc_id: hash_unit(key, seed) for doc_id, key in pairs}
    where: dict[Any, SplitName] = {}
    for doc_id, u in units.items():
        where[doc_id] = "test" if u < test_ratio else "dev" if u < test_ratio + dev_ratio else "train"
    notes: list[SplitNote] = []
    for name, ratio, centre in (("test", test_ratio, test_ratio / 2),
                                ("dev", dev_ratio, test_ratio + dev_ratio / 2)):
        if ratio == 0 or any(s == name for s in where.values()):
            continue
        want = max(1, round(ratio * len(pairs)))
        nearest = sorted((d for d in ids if where[d] == "train"), key=lambda d: (abs(units[d] - centre), units[d]))
        for doc_id in nearest[:want]:
            where[doc_id] = name
        notes.append(SplitNote("split_repaired", (
            f"The hash split left the {name} split empty ({len(pairs)} documents); moved {want} training "
            f"document(s) into it. This assignment can change as documents are added.")))
    split = DocumentSplit(
        train=tuple(d for d in ids if where[d] == "train"),
        dev=tuple(d for d in ids if where[d] == "dev"),
        test=tuple(d for d in ids if where[d] == "test"),
    )
    if labels is not None:
        notes.extend(_coverage_notes(split, labels))
    return DocumentSplit(split.train, split.dev, split.test, notes=tuple(notes))


def _coverage_notes(split: DocumentSplit, labels: Mapping[Any, Iterable[str]]) -> list[SplitNote]:
    counts = {name: Counter(lab for d in getattr(split, name) for lab in set(labels.get(d, ())))
              for name in ("train", "dev", "test")}
    notes = []
    for label in sorted(counts["train"]):
        missing = [name for name in ("dev", "test") if getattr(split, name) and counts[name][label] == 0]
        if missing:
            notes.append(SplitNote("label_missing", (
                f"Label {label!r} ({counts['train'][label]} training documents) has no example in the "
                f"{' or '.join(missing)} split, so its {'/'.join(missing)} F1 is undefined; label more documents "
                f"with {label!r}.")))
    return notes


def kfold_splits(split: DocumentSplit, keys: Mapping[Any, str], k: int, seed: int = 0) -> list[DocumentSplit]:
    """``k`` cross-validation splits of the non-test documents (train + dev) of ``split``: fold ``i`` is the dev set
    of split ``i`` and the other folds train; the test split stays out of every fold (it is kept for the final model).

    Documents are ordered by the hash of their stable key (``keys``: doc id -> key) and dealt round-robin, so folds
    differ in size by at most one and a document stays in the same fold while the project grows slowly.
    """
    if k < 2:
        raise ReportLensError(f"Cross-validation needs at least 2 folds; got {k}.")
    pool = list(dict.fromkeys([*split.train, *([] if split.dev_is_train else split.dev)]))
    if len(pool) < k:
        raise ReportLensError(f"{k}-fold cross-validation needs at least {k} labeled documents outside the test split; "
                              f"there are {len(pool)}. Use fewer folds or label more documents.")
    order = sorted(pool, key=lambda d: (hash_unit(keys[d], seed + 7919), str(d)))
    fold_of = {d: i % k for i, d in enumerate(order)}
    return [DocumentSplit(train=tuple(d for d in pool if fold_of[d] != i),
                          dev=tuple(d for d in pool if fold_of[d] == i), test=()) for i in range(k)]
