"""Uncertainty query strategies over a :class:`~core.active.pool.Pool`: small classes, one score per document,
**higher = label sooner**, and a readable ``str()`` that is stored with each score and each queue ("margin",
"bald(passes=10)", "entropy(max)", "margin(per_token)").

Token-level strategies turn each token into an uncertainty ``u`` in 0..1 and reduce over the report:

* least confidence ``u = 1 - max p`` summed over tokens (the report's expected number of wrong tags);
* margin ("breaking ties") ``u = 1 - (p1 - p2)``, the report's most ambiguous token (max); equal scores are broken
  by the mean token uncertainty, then by pool order, so a ranking never depends on sort stability;
* token entropy, normalised by ``log(n_tags)``: ``entropy(max)`` (most uncertain token) or ``entropy(mean)``;
* MNLP, ``-(1/n) sum log max p``: the length-normalised sequence log-probability of the best tagging (Shen et al.
  2017); already per token;
* BALD over MC-dropout passes: the per-token mutual information ``H(mean p) - mean H(p)`` summed over tokens;
* random (seeded), the baseline.

**Per-token cost** (``per_token=True``): reports cost annotators time in proportion to their length, so the summed /
max reductions (which favour long reports: more tokens, more chances of an uncertain one) become the mean, i.e.
uncertainty per token. A document without tokens scores 0 (nothing to label) under every uncertainty strategy.

Diversity (k-center over embeddings) is in :mod:`core.active.diversity`.
"""

from __future__ import annotations

import math

import numpy as np

from core.active.pool import EPS, Pool
from core.types import ReportLensError

__all__ = ["BALD", "MNLP", "LeastConfidence", "Margin", "QueryStrategy", "Random", "TokenEntropy"]


def _top2(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if p.shape[1] == 1:
        return p[:, 0], np.zeros(p.shape[0])
    part = np.partition(p, -2, axis=1)
    return part[:, -1], part[:, -2]


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy per row, normalised to 0..1 by log(n_tags)."""
    if p.shape[1] < 2:
        return np.zeros(p.shape[0])
    return -(p * np.log(np.clip(p, EPS, 1.0))).sum(axis=1) / math.log(p.shape[1])


class QueryStrategy:
    """Base class: ``score(pool) -> (n_docs,)`` scores, higher = label sooner; ``tiebreak(pool)``: a secondary key
    for equal scores (``None``: pool order decides)."""

    name = "strategy"
    needs_probs = True  # reads pool.probs, a trained model's token probabilities
    needs_passes = False  # reads pool.passes, MC-dropout passes (BALD)
    needs_embeddings = False  # reads pool.embeddings and pool.labelled (diversity)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QueryStrategy) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def score(self, pool: Pool) -> np.ndarray:
        raise NotImplementedError

    def tiebreak(self, pool: Pool) -> np.ndarray | None:
        return None

    def _probs(self, pool: Pool) -> tuple[np.ndarray, ...]:
        if pool.probs is None:
            raise ReportLensError(f"{self} ranks by the model's probabilities; this pool has none (no model yet: "
                                  "use the cold-start diversity).")
        return tuple(pool.probs)


class _TokenStrategy(QueryStrategy):
    """Token uncertainty ``u`` reduced per report with ``reduce`` ("sum" | "max" | "mean"); ``per_token`` -> mean."""

    reduce = "sum"

    def __init__(self, per_token: bool = False) -> None:
        self.per_token = bool(per_token)

    def __str__(self) -> str:
        return f"{self.name}(per_token)" if self.per_token else self.name

    def token_uncertainty(self, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, pool: Pool) -> np.ndarray:
        how = "mean" if self.per_token else self.reduce
        probs = self._probs(pool)
        out = np.zeros(len(probs))
        for i, p in enumerate(probs):
            if p.shape[0]:
                u = self.token_uncertainty(p)
                out[i] = u.sum() if how == "sum" else u.max() if how == "max" else u.mean()
        return out


class LeastConfidence(_TokenStrategy):
    """``1 - max p`` per token, summed over the report (per token: averaged)."""

    name = "least_confidence"

    def token_uncertainty(self, p: np.ndarray) -> np.ndarray:
        return 1.0 - p.max(axis=1)


class Margin(_TokenStrategy):
    """Breaking ties: ``1 - (p1 - p2)`` of the report's most ambiguous token (per token: averaged). Ties are broken
    by the mean token uncertainty, then pool order."""

    name = "margin"
    reduce = "max"

    def token_uncertainty(self, p: np.ndarray) -> np.ndarray:
        first, second = _top2(p)
        return 1.0 - (first - second)

    def tiebreak(self, pool: Pool) -> np.ndarray:
        return np.array([self.token_uncertainty(p).mean() if p.shape[0] else 0.0 for p in self._probs(pool)])


class TokenEntropy(_TokenStrategy):
    """Normalised token entropy, the report's maximum (``entropy(max)``) or mean (``entropy(mean)``)."""

    name = "entropy"

    def __init__(self, reduce: str = "max") -> None:
        if reduce not in ("max", "mean"):
            raise ReportLensError(f"entropy reduce must be 'max' or 'mean', got {reduce!r}.")
        super().__init__(per_token=False)
        self.reduce = reduce

    def __str__(self) -> str:
        return f"entropy({self.reduce})"

    def token_uncertainty(self, p: np.ndarray) -> np.ndarray:
        return entropy(p)


class MNLP(QueryStrategy):
    """Maximum normalised log-probability: ``-(1/n) sum_t log max p_t`` (already per token)."""

    name = "mnlp"

    def score(self, pool: Pool) -> np.ndarray:
        return np.array([-np.log(np.clip(p.max(axis=1), EPS, 1.0)).mean() if p.shape[0] else 0.0
                         for p in self._probs(pool)])


class BALD(_TokenStrategy):
    """Mutual information between tags and weights over MC-dropout passes, ``H(mean p) - mean H(p)`` per token
    (entropies in nats, normalised by ``log n_tags``), summed over the report (per token: averaged).

    ``pool.passes[i]`` is document i's stack ``(n_passes, n_tokens, n_tags)``."""

    name = "bald"
    needs_probs = False  # the passes are its probabilities
    needs_passes = True

    def __init__(self, passes: int = 10, per_token: bool = False) -> None:
        if not isinstance(passes, int) or passes < 2:
            raise ReportLensError(f"BALD needs at least 2 MC-dropout passes, got {passes!r}.")
        super().__init__(per_token)
        self.passes = passes

    def __str__(self) -> str:
        return f"bald(passes={self.passes}{', per_token' if self.per_token else ''})"

    def score(self, pool: Pool) -> np.ndarray:
        if pool.passes is None:
            raise ReportLensError(f"{self} needs MC-dropout passes; run the scoring with mc_passes >= 2.")
        how = "mean" if self.per_token else "sum"
        out = np.zeros(len(pool.passes))
        for i, stack in enumerate(pool.passes):
            s = np.asarray(stack, dtype=np.float64)
            if s.ndim != 3:
                raise ReportLensError(f"Document #{i}: MC passes must be (n_passes, n_tokens, n_tags), got {s.shape}.")
            if s.shape[1] == 0:
                continue
            mi = entropy(s.mean(axis=0)) - np.mean([entropy(p) for p in s], axis=0)
            mi = np.clip(mi, 0.0, None)  # float noise only; MI is never negative
            out[i] = mi.sum() if how == "sum" else mi.mean()
        return out


class Random(QueryStrategy):
    """The baseline: seeded uniform scores (same seed, same pool size -> same ranking)."""

    name = "random"
    needs_probs = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def __str__(self) -> str:
        return f"random(seed={self.seed})"

    def score(self, pool: Pool) -> np.ndarray:
        return np.random.default_rng(self.seed).random(pool.size)
