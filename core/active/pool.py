"""The pool a query strategy ranks: everything known about the unlabeled reports, in one validated object.

A :class:`Pool` holds, per unlabeled document (pool index ``i``):

* ``probs[i]``: token probabilities ``(n_tokens, n_tags)`` (content tokens, windows merged, see
  :func:`core.alignment.merge_window_probs`); ``None`` before any model (cold start);
* ``passes[i]``: MC-dropout stacks ``(n_passes, n_tokens, n_tags)`` (BALD), where computed;
* ``embeddings[i]``: a document embedding (diversity), where computed;
* ``keys[i]``: the text's duplicate key (:func:`core.active.duplicates.text_key`), where duplicates are handled;

and about the labelled reports: ``labelled`` (their embeddings, the diversity strategies' first centres) and
``known`` (their text keys: a copy of a labelled text is ranked behind every new text).

The scoring run builds one from its forward passes, the benchmark from the same function, tests by hand; every
strategy reads what it needs from it (:func:`core.active.ranking.rank`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.types import ReportLensError

__all__ = ["EPS", "SCORE_DECIMALS", "Pool", "order_by_score"]

EPS = 1e-12
SCORE_DECIMALS = 9  # scores equal to this many decimals are ties (float noise never decides an order)


def _probs(probs: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The probabilities as float64 2-D arrays with one tag set; a clear error for anything else."""
    out = []
    n_tags = None
    for i, p in enumerate(probs):
        a = np.asarray(p, dtype=np.float64)
        if a.ndim != 2:
            raise ReportLensError(f"Document #{i} of the pool: probabilities must be (n_tokens, n_tags), got shape "
                                  f"{a.shape}.")
        if a.shape[0] and n_tags is not None and a.shape[1] != n_tags:
            raise ReportLensError(f"Document #{i} of the pool has {a.shape[1]} tags, the others {n_tags}; score one "
                                  "model's predictions at a time.")
        if a.shape[0]:
            n_tags = a.shape[1]
        out.append(a)
    return tuple(out)


@dataclass(frozen=True, eq=False)
class Pool:
    """The unlabeled documents to rank (see the module docstring). ``size`` is needed only when nothing else says
    how many documents there are (a random ranking of ``size`` reports); otherwise it is inferred and checked."""

    probs: Sequence[np.ndarray] | None = None
    passes: Sequence[np.ndarray] | None = None
    embeddings: np.ndarray | None = None
    keys: Sequence[str] | None = None
    known: Iterable[str] = frozenset()
    labelled: np.ndarray | None = None
    size: int = field(default=-1)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.probs is not None:
            set_(self, "probs", _probs(self.probs))
        if self.passes is not None:
            set_(self, "passes", tuple(self.passes))
        if self.embeddings is not None:
            set_(self, "embeddings", np.asarray(self.embeddings, dtype=np.float64))
        if self.keys is not None:
            set_(self, "keys", tuple(self.keys))
        if self.labelled is not None:
            set_(self, "labelled", np.asarray(self.labelled, dtype=np.float64))
        set_(self, "known", frozenset(self.known))
        sizes = [(what, len(v)) for what, v in (("probability arrays", self.probs), ("embeddings", self.embeddings),
                                                ("MC-pass stacks", self.passes), ("duplicate keys", self.keys))
                 if v is not None]
        if self.size >= 0:
            sizes.insert(0, ("documents", self.size))
        if not sizes:
            raise ReportLensError("An empty Pool: give probabilities, embeddings, duplicate keys or a size.")
        n = sizes[0][1]
        for what, k in sizes[1:]:
            if k != n:
                raise ReportLensError(f"Pool: {k} {what} for a pool of {n} documents; every field describes the "
                                      "same documents, in the same order.")
        set_(self, "size", n)


def order_by_score(scores: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Pool indices, best first: by score (to ``SCORE_DECIMALS``), then ``tiebreak`` (higher first), then index."""
    scores = np.asarray(scores, dtype=np.float64)
    keys = [np.arange(len(scores))]
    if tiebreak is not None:
        keys.append(-np.round(np.asarray(tiebreak, dtype=np.float64), SCORE_DECIMALS))
    keys.append(-np.round(scores, SCORE_DECIMALS))
    return np.lexsort(keys)
