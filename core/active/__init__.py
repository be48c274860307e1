"""Active learning, pure numpy: which unlabeled reports to label next, and when to stop.

One ranking path (modelled on small-text's ``query_strategies/``):

* :mod:`core.active.pool`: :class:`Pool`, everything a strategy may read (probabilities, MC-dropout passes,
  embeddings, duplicate keys, the labelled set);
* :mod:`core.active.strategies`: the uncertainty strategies (least confidence, margin, entropy, MNLP, BALD,
  random), each a small class with ``score(pool)`` and a readable ``str()``;
* :mod:`core.active.diversity`: uncertainty-weighted k-center from the labelled reports (core-set selection);
* :mod:`core.active.registry`: the choosable strategies as records (factory, help, options, needs, tie-break) and
  which of them a scoring run stores;
* :mod:`core.active.ranking`: :func:`rank` (what the scoring run stores as the queue) and :func:`select_batch`
  (its top ``n``: the benchmark and the tests);
* :mod:`core.active.duplicates`: each text once in a queue, labelled texts last;
* :mod:`core.active.stopping`: the stopping indicator;
* :mod:`core.active.config`: :class:`ScoreConfig`, what a scoring run does (form, flags, job row).
"""

from core.active.config import ScoreConfig
from core.active.diversity import Diversity
from core.active.pool import Pool, order_by_score
from core.active.ranking import Ranking, rank, rank_all, select_batch
from core.active.registry import (
    COLD_START_STRATEGY,
    DEFAULT_STRATEGY,
    REGISTRY,
    STRATEGY_HELP,
    TREND_STRATEGY,
    StrategyRecord,
    default_ranking,
    get_strategy,
    run_strategies,
    strategy_names,
)
from core.active.strategies import BALD, MNLP, LeastConfidence, Margin, QueryStrategy, Random, TokenEntropy

__all__ = [
    "BALD", "COLD_START_STRATEGY", "DEFAULT_STRATEGY", "Diversity", "LeastConfidence", "MNLP", "Margin", "Pool",
    "QueryStrategy", "REGISTRY", "Random", "Ranking", "STRATEGY_HELP", "ScoreConfig", "StrategyRecord",
    "TREND_STRATEGY", "TokenEntropy", "default_ranking", "get_strategy", "order_by_score", "rank", "rank_all",
    "run_strategies", "select_batch", "strategy_names",
]
