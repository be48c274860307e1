"""Active-learning query strategies and the stopping indicator: pure numpy over per-document probability arrays.

A pool is a list of per-document token probability arrays ``(n_tokens, n_tags)`` (content tokens, windows already
merged, see :func:`core.alignment.merge_window_probs`). Every strategy returns one score per document, **higher =
label sooner**, and has a readable ``str()`` that is stored with each score and each queue ("margin",
"bald(passes=10)", "entropy(max)", "margin(per_token)").

Token-level strategies turn each token into an uncertainty ``u`` in 0..1 and reduce over the report:

* least confidence ``u = 1 - max p`` summed over tokens (the report's expected number of wrong tags);
* margin ("breaking ties") ``u = 1 - (p1 - p2)``, the report's most ambiguous token (max); equal scores are broken
  by the mean token uncertainty, then by pool order, so a ranking never depends on sort stability;
* token entropy, normalised by ``log(n_tags)``: ``entropy(max)`` (most uncertain token) or ``entropy(mean)``;
* MNLP, ``-(1/n) sum log max p``: the length-normalised sequence log-probability of the best tagging (Shen et al.
  2017); already per token;
* BALD over MC-dropout passes: the per-token mutual information ``H(mean p) - mean H(p)`` summed over tokens;
* diversity: greedy k-center over L2-normalised document embeddings, starting from the labelled reports as centres,
  each distance weighted by the report's uncertainty under a base strategy (margin, or MNLP for ``diversity_mnlp``;
  none at cold start), so a batch is not ten near-duplicates nor more of what is labelled (core-set selection,
  Sener & Savarese 2018, with an uncertainty weight);
* random (seeded), the baseline.

**Per-token cost** (``per_token=True``): reports cost annotators time in proportion to their length, so the summed /
max reductions (which favour long reports: more tokens, more chances of an uncertain one) become the mean, i.e.
uncertainty per token. A document without tokens scores 0 (nothing to label) under every uncertainty strategy.

**Duplicates**: with text keys (:mod:`core.duplicates`), :func:`select_batch` takes each text at most once and texts
already labelled only when nothing new is left, whatever the strategy; the scoring run stores its queue that way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from core.duplicates import spread_duplicates
from core.types import ReportLensError

Probs = Sequence[np.ndarray]
EPS = 1e-12
SCORE_DECIMALS = 9  # scores equal to this many decimals are ties (float noise never decides an order)

__all__ = [
    "BALD", "DEFAULT_STRATEGY", "Diversity", "LeastConfidence", "MNLP", "Margin", "QueryStrategy", "Random",
    "STRATEGIES", "STRATEGY_HELP", "TREND_STRATEGY", "TokenEntropy", "check_pool", "default_ranking",
    "get_strategy", "rank", "select_batch", "strategy_names",
]


def check_pool(probs: Probs) -> list[np.ndarray]:
    """The pool as float64 2-D arrays with one tag set; a clear error for anything else."""
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
    return out


def _top2(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if p.shape[1] == 1:
        return p[:, 0], np.zeros(p.shape[0])
    part = np.partition(p, -2, axis=1)
    return part[:, -1], part[:, -2]


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy per row, normalised to 0..1 by log(n_tags)."""
    if p.shape[1] < 2:
        return np.zeros(p.shape[0])
    return -(p * np.log(np.clip(p, EPS, 1.0))).sum(axis=1) / math.log(p.shape[1])


class QueryStrategy:
    """Base class: ``score(probs, passes=None, embeddings=None) -> (n_docs,)`` scores, higher = label sooner."""

    name = "strategy"
    needs_passes = False  # BALD: MC-dropout passes
    needs_embeddings = False  # diversity: document embeddings
    needs_probs = True

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QueryStrategy) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def score(self, probs: Probs, passes: Sequence[np.ndarray] | None = None,
              embeddings: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def tiebreak(self, probs: Probs) -> np.ndarray | None:
        """A secondary key (higher first) for equal scores; ``None``: pool order decides."""
        return None


class _TokenStrategy(QueryStrategy):
    """Token uncertainty ``u`` reduced per report with ``reduce`` ("sum" | "max" | "mean"); ``per_token`` -> mean."""

    reduce = "sum"

    def __init__(self, per_token: bool = False) -> None:
        self.per_token = bool(per_token)

    def __str__(self) -> str:
        return f"{self.name}(per_token)" if self.per_token else self.name

    def token_uncertainty(self, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, probs: Probs, passes: Sequence[np.ndarray] | None = None,
              embeddings: np.ndarray | None = None) -> np.ndarray:
        how = "mean" if self.per_token else self.reduce
        out = np.zeros(len(probs))
        for i, p in enumerate(check_pool(probs)):
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

    def tiebreak(self, probs: Probs) -> np.ndarray:
        return np.array([self.token_uncertainty(p).mean() if p.shape[0] else 0.0 for p in check_pool(probs)])


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
        return _entropy(p)


class MNLP(QueryStrategy):
    """Maximum normalised log-probability: ``-(1/n) sum_t log max p_t`` (already per token)."""

    name = "mnlp"

    def score(self, probs: Probs, passes: Sequence[np.ndarray] | None = None,
              embeddings: np.ndarray | None = None) -> np.ndarray:
        return np.array([-np.log(np.clip(p.max(axis=1), EPS, 1.0)).mean() if p.shape[0] else 0.0
                         for p in check_pool(probs)])


class BALD(_TokenStrategy):
    """Mutual information between tags and weights over MC-dropout passes, ``H(mean p) - mean H(p)`` per token
    (entropies in nats, normalised by ``log n_tags``), summed over the report (per token: averaged).

    ``passes[i]`` is document i's stack ``(n_passes, n_tokens, n_tags)``."""

    name = "bald"
    needs_passes = True

    def __init__(self, passes: int = 10, per_token: bool = False) -> None:
        if not isinstance(passes, int) or passes < 2:
            raise ReportLensError(f"BALD needs at least 2 MC-dropout passes, got {passes!r}.")
        super().__init__(per_token)
        self.passes = passes

    def __str__(self) -> str:
        return f"bald(passes={self.passes}{', per_token' if self.per_token else ''})"

    def score(self, probs: Probs, passes: Sequence[np.ndarray] | None = None,
              embeddings: np.ndarray | None = None) -> np.ndarray:
        if passes is None:
            raise ReportLensError(f"{self} needs MC-dropout passes; run the scoring with mc_passes >= 2.")
        if len(passes) != len(probs):
            raise ReportLensError(f"{self}: {len(passes)} pass stacks for {len(probs)} documents.")
        how = "mean" if self.per_token else "sum"
        out = np.zeros(len(passes))
        for i, stack in enumerate(passes):
            s = np.asarray(stack, dtype=np.float64)
            if s.ndim != 3:
                raise ReportLensError(f"Document #{i}: MC passes must be (n_passes, n_tokens, n_tags), got {s.shape}.")
            if s.shape[1] == 0:
                continue
            mean = s.mean(axis=0)
            mi = _entropy(mean) - np.mean([_entropy(p) for p in s], axis=0)
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

    def score(self, probs: Probs, passes: Sequence[np.ndarray] | None = None,
              embeddings: np.ndarray | None = None) -> np.ndarray:
        return np.random.default_rng(self.seed).random(len(probs))


def _unit_rows(a: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms > 0, norms, 1.0)


class Diversity(QueryStrategy):
    """Greedy k-center over cosine distances of document embeddings, each distance weighted by the report's
    uncertainty under ``base`` (scaled to 0.1..1; ``None`` = no weight, the cold start on base-model embeddings).

    With ``labelled`` embeddings (the reports already labelled, under the same model), those are the initial centres
    (core-set selection proper): every pick maximises ``weight * distance to the nearest labelled report or pick``,
    so the queue does not return to what is already covered. Without them the first pick is the most uncertain
    report. Scores are that product at pick time (non-increasing), so sorting by score replays the greedy order.
    Only the first ``greedy`` picks are greedy (O(n * greedy * dim)); the rest are ordered by their final weighted
    distance."""

    name = "diversity"
    needs_embeddings = True

    def __init__(self, base: QueryStrategy | None = None, greedy: int = 200) -> None:
        if isinstance(base, Diversity | Random):
            raise ReportLensError(f"diversity cannot be weighted by {base}; use an uncertainty strategy or none.")
        self.base, self.greedy = base, max(1, int(greedy))
        self.needs_passes = bool(base and base.needs_passes)
        self.needs_probs = base is not None

    def __str__(self) -> str:
        return f"diversity({self.base})" if self.base is not None else "diversity"

    def weights(self, probs: Probs, passes: Sequence[np.ndarray] | None, n: int) -> np.ndarray:
        if self.base is None or n == 0:
            return np.ones(n)
        u = self.base.score(probs, passes)
        lo, hi = float(u.min()), float(u.max())
        return np.full(n, 1.0) if hi - lo < EPS else 0.1 + 0.9 * (u - lo) / (hi - lo)

    def score(self, probs: Probs, passes: Sequence[np.ndarray] | None = None,
              embeddings: np.ndarray | None = None, labelled: np.ndarray | None = None) -> np.ndarray:
        if embeddings is None:
            raise ReportLensError("diversity needs document embeddings; the scoring run computes them.")
        emb = np.asarray(embeddings, dtype=np.float64)
        n = len(emb)
        if self.base is not None and len(probs) != n:
            raise ReportLensError(f"diversity: {n} embeddings for {len(probs)} documents.")
        if n == 0:
            return np.zeros(0)
        if emb.ndim != 2:
            raise ReportLensError(f"diversity: embeddings must be (n_docs, dim), got {emb.shape}.")
        emb = _unit_rows(emb)
        w = self.weights(probs, passes, n)
        scores = np.zeros(n)
        picked = np.zeros(n, dtype=bool)
        centres = None if labelled is None else np.asarray(labelled, dtype=np.float64)
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


# ---------------------------------------------------------------- registry and batch selection

STRATEGIES: dict[str, Any] = {
    "least_confidence": LeastConfidence,
    "margin": Margin,
    "entropy_max": lambda **kw: TokenEntropy("max", **kw),
    "entropy_mean": lambda **kw: TokenEntropy("mean", **kw),
    "mnlp": MNLP,
    "bald": BALD,
    "diversity": lambda **kw: Diversity(base=Margin(per_token=bool(kw.pop("per_token", False))), **kw),
    "diversity_mnlp": lambda **kw: Diversity(base=MNLP(), **kw),
    "diversity_cold": Diversity,
    "random": Random,
}
# Margin-weighted k-center from the labelled reports. bench/README.md, PTB-XL (real reports with repeats): 95% of the
# full-data F1 with 152 documents, random sampling 344 (0.44x); mnlp was next.
DEFAULT_STRATEGY = "diversity"
STRATEGY_HELP = {  # one line each, for the Queue page and `cli.py score --help`
    "least_confidence": "expected number of wrongly tagged tokens (1 - max p, summed): favours long, unclear reports",
    "margin": "the report's most ambiguous token (smallest gap between its two best tags)",
    "entropy_max": "the report's most uncertain token (normalised entropy)",
    "entropy_mean": "mean token entropy: uncertainty per token",
    "mnlp": "length-normalised log-probability of the best tagging (Shen et al. 2017): uncertainty per token",
    "bald": "disagreement between MC-dropout passes (model uncertainty); slower, runs the model several times",
    "diversity": "k-center over report embeddings weighted by margin: uncertain reports that differ from each other "
                 "and from those already labelled",
    "diversity_mnlp": "k-center over report embeddings weighted by MNLP (uncertainty per token), away from the "
                      "labelled reports",
    "diversity_cold": "k-center over report embeddings, no model needed (the cold start)",
    "random": "the baseline: a seeded random order",
}
TREND_STRATEGY = "least_confidence(per_token)"  # mean token uncertainty: the uncertainty trend is read from it
_OPTIONS = {"per_token": {"least_confidence", "margin", "bald", "diversity"}, "passes": {"bald"}, "seed": {"random"}}


def strategy_names() -> list[str]:
    return list(STRATEGIES)


def get_strategy(name: str, *, per_token: bool = False, passes: int = 10, seed: int = 0) -> QueryStrategy:
    """A strategy by registry name; options that do not apply to it are ignored."""
    if name not in STRATEGIES:
        raise ReportLensError(f"Unknown query strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
    kwargs: dict[str, Any] = {}
    if per_token and name in _OPTIONS["per_token"]:
        kwargs["per_token"] = True
    if name in _OPTIONS["passes"]:
        kwargs["passes"] = passes
    if name in _OPTIONS["seed"]:
        kwargs["seed"] = seed
    return STRATEGIES[name](**kwargs)


def default_ranking(stored: Sequence[str], preferred: str | None = None) -> str:
    """Which of a scoring run's stored strategy names (``str()`` of each strategy) a queue is ranked by when the user
    has not picked one: ``preferred`` (a stored name), else the default strategy as stored (``"diversity(margin)"``
    for the registry name ``"diversity"``), else the cold-start ``"diversity"``, else the first."""
    if not stored:
        raise ReportLensError("The scoring run stored no strategy.")
    for key in (preferred, str(get_strategy(DEFAULT_STRATEGY)), "diversity"):
        if key is not None and key in stored:
            return key
    return stored[0]


def rank(scores: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Pool indices, best first: by score (to ``SCORE_DECIMALS``), then ``tiebreak`` (higher first), then index."""
    scores = np.asarray(scores, dtype=np.float64)
    idx = np.arange(len(scores))
    keys = [idx]
    if tiebreak is not None:
        keys.append(-np.round(np.asarray(tiebreak, dtype=np.float64), SCORE_DECIMALS))
    keys.append(-np.round(scores, SCORE_DECIMALS))
    return np.lexsort(keys)


def select_batch(strategy: QueryStrategy, probs: Probs, n: int, passes: Sequence[np.ndarray] | None = None,
                 embeddings: np.ndarray | None = None, keys: Sequence[str] | None = None,
                 known: Iterable[str] = (), labelled: np.ndarray | None = None) -> list[int]:
    """The ``n`` pool indices to label next, best first (fewer when the pool is smaller). ``labelled``: embeddings
    of the labelled reports, the initial centres of :class:`Diversity` (other strategies ignore them).

    With ``keys`` (each pool document's :func:`core.duplicates.text_key`), a text is taken at most once per batch and
    texts in ``known`` (already labelled) only when nothing new is left (:func:`core.duplicates.spread_duplicates`)."""
    if not isinstance(n, int) or n < 0:
        raise ReportLensError(f"Batch size must be a whole number >= 0, got {n!r}.")
    size = len(embeddings) if (not strategy.needs_probs and embeddings is not None) else len(probs)
    if n == 0 or size == 0:
        return []
    if isinstance(strategy, Diversity):  # a batch of n needs n greedy picks
        strategy = Diversity(strategy.base, greedy=max(n, strategy.greedy))
        scores = strategy.score(probs, passes, embeddings, labelled=labelled)
    else:
        scores = strategy.score(probs, passes, embeddings)
    order = rank(scores, strategy.tiebreak(probs) if strategy.needs_probs else None)
    if keys is not None:
        if len(keys) != size:
            raise ReportLensError(f"select_batch: {len(keys)} duplicate keys for a pool of {size} documents.")
        order = spread_duplicates(order, keys, known)
    return [int(i) for i in order[:n]]
