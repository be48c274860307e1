"""Duplicate reports in an annotation queue: label a text once, not once per copy.

Real report pools repeat themselves: of the 500 PTB-XL reports, 243 texts are distinct and 131 read
"sinusrhythmus normales ekg". Every uncertainty strategy gives identical texts identical scores, so without care a
batch of ten can be the same uncertain sentence ten times, and a text an annotator already labelled can come back.

:func:`spread_duplicates` reorders a ranking (best first) so that the first copy of each text keeps its place among
the texts not seen before, and every other copy (a repeat of a text ranked higher, or a text already labelled) moves
behind all of them, in its original order. Any batch taken from the top then holds each text at most once, and the
strategies' own order among distinct texts is untouched.

Texts are compared by :func:`text_key`: case-folded with whitespace collapsed (``"Sinus rhythm.\\n"`` and
``"sinus  rhythm."`` are one report). Near-duplicates that differ in a word are left to the diversity strategy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["duplicate_stats", "spread_duplicates", "text_key"]


def text_key(text: str) -> str:
    """The duplicate key of a report text: case-folded, runs of whitespace as one space, no edge whitespace."""
    return " ".join(str(text).casefold().split())


def spread_duplicates(order: Sequence[int] | np.ndarray, keys: Sequence[str], known: Iterable[str] = ()) -> np.ndarray:
    """``order`` (pool indices, best first) with repeats moved last: first copies of texts not in ``known`` keep their
    relative order at the front; repeats and texts in ``known`` (already labelled) follow, in their original order.

    ``keys[i]`` is pool document i's :func:`text_key`. Returns a permutation of ``order``."""
    order = np.asarray(order, dtype=np.int64)
    if len(order) != len(set(order.tolist())):
        raise ValueError("spread_duplicates: the order lists a pool index twice.")
    if len(order) and (order.min() < 0 or order.max() >= len(keys)):
        raise ValueError(f"spread_duplicates: an index of the order is outside the {len(keys)} pool keys.")
    seen = set(known)
    first: list[int] = []
    later: list[int] = []
    for i in order.tolist():
        k = keys[i]
        if k in seen:
            later.append(i)
        else:
            seen.add(k)
            first.append(i)
    return np.asarray(first + later, dtype=np.int64)


def duplicate_stats(keys: Sequence[str], known: Iterable[str] = ()) -> dict[str, int]:
    """What :func:`spread_duplicates` does to a pool: ``documents``; ``distinct`` texts; ``new_texts`` (distinct and
    not labelled: the front of the queue); ``ranked_last`` (every other document: ``documents - new_texts``) and,
    of those, ``already_labelled`` (the text of a labelled report)."""
    known_set = set(known)
    distinct = set(keys)
    new = distinct - known_set
    return {"documents": len(keys), "distinct": len(distinct), "new_texts": len(new),
            "ranked_last": len(keys) - len(new), "already_labelled": sum(1 for k in keys if k in known_set)}
