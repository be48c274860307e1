"""Diversity: greedy k-center over L2-normalised document embeddings, starting from the labelled reports as centres,
each distance weighted by the report's uncertainty under a base strategy (margin, or MNLP for ``diversity_mnlp``;
none at cold start), so a batch is not ten near-duplicates nor more of what is labelled (core-set selection,
Sener & Savarese 2018, with an uncertainty weight)."""

from __future__ import annotations

import numpy as np

from core.active.pool import EPS, SCORE_DECIMALS, Pool
from core.active.strategies import QueryStrategy, Random
from core.types import ReportLensError

__all__ = ["Diversity"]

GREEDY = 200  # greedy k-center picks; beyond them the rest is ordered by its final weighted distance


def _unit_rows(a: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms > 0, norms, 1.0)


class Diversity(QueryStrategy):
    """Greedy k-center over cosine distances of ``pool.embeddings``, each distance weighted by the report's
    uncertainty under ``base`` (scaled to 0.1..1; ``None`` = no weight, the cold start on base-model embeddings).

    With ``pool.labelled`` embeddings (the reports already labelled, under the same model), those are the initial
    centres (core-set selection proper): every pick maximises ``weight * distance to the nearest labelled report or
    pick``, so the queue does not return to what is already covered. Without them the first pick is the most
    uncertain report. Scores are that product at pick time (non-increasing), so sorting by score replays the greedy
    order. Only the first ``greedy`` picks are greedy (O(n * greedy * dim)); the rest are ordered by their final
    weighted distance (a batch larger than ``greedy`` takes them in that order, in the Queue and in
    :func:`core.active.ranking.select_batch` alike)."""

    name = "diversity"
    needs_embeddings = True

    def __init__(self, base: QueryStrategy | None = None, greedy: int = GREEDY) -> None:
        if isinstance(base, Diversity | Random):
            raise ReportLensError(f"diversity cannot be weighted by {base}; use an uncertainty strategy or none.")
        self.base, self.greedy = base, max(1, int(greedy))
        self.needs_passes = bool(base and base.needs_passes)
        self.needs_probs = bool(base and base.needs_probs)

    def __str__(self) -> str:
        return f"diversity({self.base})" if self.base is not None else "diversity"

    def weights(self, pool: Pool) -> np.ndarray:
        n = pool.size
        if self.base is None or n == 0:
            return np.ones(n)
        u = self.base.score(pool)
        lo, hi = float(u.min()), float(u.max())
        return np.full(n, 1.0) if hi - lo < EPS else 0.1 + 0.9 * (u - lo) / (hi - lo)

    def score(self, pool: Pool) -> np.ndarray:
        if pool.embeddings is None:
            raise ReportLensError("diversity needs document embeddings; the scoring run computes them.")
        emb = pool.embeddings
        n = len(emb)
        if n == 0:
            return np.zeros(0)
        if emb.ndim != 2:
            raise ReportLensError(f"diversity: embeddings must be (n_docs, dim), got {emb.shape}.")
        emb = _unit_rows(emb)
        w = self.weights(pool)
        scores = np.zeros(n)
        picked = np.zeros(n, dtype=bool)
        centres = pool.labelled
        if centres is not None and centres.size:
            if centres.ndim != 2 or centres.shape[1] != emb.shape[1]:
                raise ReportLensError(f"diversity: labelled embeddings must be (n, {emb.shape[1]}), got "
                                      f"{centres.shape}.")
            dist = np.full(n, 2.0)
            for b in range(0, len(centres), 1024):  # (n x 1024) at a time: a large labelled set stays small in RAM
                dist = np.minimum(dist, np.clip(1.0 - emb @ _unit_rows(centres[b : b + 1024]).T, 0.0, 2.0).min(1))
            first = int(np.argmax(np.round(w * dist, SCORE_DECIMALS)))
            scores[first] = w[first] * dist[first] + EPS
        else:
            first = int(np.lexsort((np.arange(n), -np.round(w, SCORE_DECIMALS)))[0])
            dist = np.full(n, 2.0)
            scores[first] = w[first] * max(float(np.clip(1.0 - emb @ emb[first], 0.0, 2.0).max()), EPS) + EPS
        dist = np.minimum(dist, np.clip(1.0 - emb @ emb[first], 0.0, 2.0))
        picked[first] = True
        for _ in range(min(self.greedy, n) - 1):
            gain = np.where(picked, -1.0, w * dist)
            nxt = int(np.argmax(np.round(gain, SCORE_DECIMALS)))  # argmax: the earliest of equal gains
            scores[nxt] = gain[nxt]
            picked[nxt] = True
            dist = np.minimum(dist, np.clip(1.0 - emb @ emb[nxt], 0.0, 2.0))
        rest = ~picked
        scores[rest] = np.minimum(w[rest] * dist[rest], scores[picked].min())
        return scores
