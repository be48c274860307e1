"""The one ranking path: :func:`rank` is what the scoring run stores as the queue, :func:`select_batch` its top
``n`` (the benchmark and the tests), so the ranking the app runs is the ranking that is tested.

A ranking is the strategy's scores sorted best first (to ``SCORE_DECIMALS``), equal scores by the strategy's own
tie-break (:meth:`QueryStrategy.tiebreak`, e.g. margin's mean token uncertainty), then by pool order. With duplicate
``keys`` in the pool, the first copy of each text keeps its place among the new texts and every other copy, and
every text in ``known`` (already labelled), moves behind them (:func:`core.active.duplicates.spread_duplicates`), so
any batch from the top holds each text at most once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from core.active.duplicates import spread_duplicates
from core.active.pool import Pool, order_by_score
from core.active.strategies import QueryStrategy
from core.types import ReportLensError

__all__ = ["Ranking", "rank", "rank_all", "select_batch"]


@dataclass(frozen=True, eq=False)
class Ranking:
    """One strategy's ranking of a pool: ``scores[i]`` per pool index, ``order`` the pool indices best first."""

    strategy: str  # str() of the strategy: the name stored with the scores
    scores: np.ndarray
    order: np.ndarray


def rank(strategy: QueryStrategy, pool: Pool) -> Ranking:
    """``strategy``'s ranking of the whole ``pool``: scores, tie-break, pool order, duplicates last."""
    if not isinstance(pool, Pool):
        raise ReportLensError(f"rank/select_batch take a core.active.Pool, got {type(pool).__name__}; build one with "
                              "Pool(probs, passes=..., embeddings=..., keys=...).")
    scores = np.asarray(strategy.score(pool), dtype=np.float64)
    if scores.shape != (pool.size,):
        raise ReportLensError(f"{strategy} returned {scores.shape} scores for a pool of {pool.size} documents.")
    order = order_by_score(scores, strategy.tiebreak(pool))
    if pool.keys is not None:
        order = spread_duplicates(order, pool.keys, pool.known)
    return Ranking(str(strategy), scores, order)


def rank_all(strategies: Iterable[QueryStrategy], pool: Pool) -> dict[str, Ranking]:
    """``str(strategy) -> ranking`` for each strategy (a scoring run stores them all)."""
    return {str(s): rank(s, pool) for s in strategies}


def select_batch(strategy: QueryStrategy, pool: Pool, n: int) -> list[int]:
    """The ``n`` pool indices to label next, best first (fewer when the pool is smaller): the top of
    :func:`rank`, exactly what the Queue stores for this strategy and pool."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ReportLensError(f"Batch size must be a whole number >= 0, got {n!r}.")
    if n == 0 or pool.size == 0:
        return []
    return [int(i) for i in rank(strategy, pool).order[:n]]
