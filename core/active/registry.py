"""The strategy registry: one record per strategy a user can choose (Queue page, ``cli.py score --strategy``, the
benchmark's arms), and which strategies a scoring run stores.

A record says how to build the strategy (``factory`` with its ``options``: ``per_token``, ``passes``, ``seed``), one
line of help, what it needs from the pool (probabilities from a model, MC-dropout passes, embeddings), what breaks
its ties, and whether a scoring run stores it every time (cheap) or only when chosen (BALD: the model runs again
per pass). The scoring run iterates the records (:func:`run_strategies`) and runs MC passes or embeddings only
when a strategy it stores needs them; nothing anywhere checks a strategy by its name.

Stored names are the strategies' ``str()`` ("diversity(margin)" for the registry name "diversity"): the database
keeps them, so they never change for the same strategy and options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.active.diversity import Diversity
from core.active.strategies import BALD, MNLP, LeastConfidence, Margin, QueryStrategy, Random, TokenEntropy
from core.types import ReportLensError

__all__ = [
    "COLD_START_STRATEGY", "DEFAULT_STRATEGY", "OPTIONS", "REGISTRY", "STRATEGY_HELP", "TREND_STRATEGY",
    "StrategyRecord", "default_ranking", "get_strategy", "run_strategies", "strategy_names",
]

OPTIONS = ("per_token", "passes", "seed")


@dataclass(frozen=True)
class StrategyRecord:
    """One registered strategy. ``needs_*`` and ``tiebreak`` describe what the built strategy does (a test checks
    they agree with it for every option)."""

    name: str  # registry name: what the form, the CLI and ScoreConfig.strategy use
    factory: Callable[..., QueryStrategy]  # called with the options below as keywords
    help: str  # one line, for the Queue page and `cli.py score --help`
    options: frozenset[str] = frozenset()  # which of OPTIONS the factory takes; the others are ignored
    needs_probs: bool = True  # a trained model's token probabilities
    needs_passes: bool = False  # MC-dropout passes (the model runs again per pass)
    needs_embeddings: bool = False  # document embeddings (and the labelled reports' as first centres)
    tiebreak: str | None = None  # what orders equal scores before pool order; None: pool order alone
    every_run: bool = True  # stored by every scoring run with a model; False: only when chosen
    both_costs: bool = False  # stored both per report and per token (per_token False and True) in every run

    @property
    def needs_model(self) -> bool:
        """Needs a trained model (probabilities or MC passes); otherwise it ranks at the cold start too."""
        return self.needs_probs or self.needs_passes

    def make(self, *, per_token: bool = False, passes: int = 10, seed: int = 0) -> QueryStrategy:
        given = {"per_token": bool(per_token), "passes": passes, "seed": seed}
        return self.factory(**{k: v for k, v in given.items() if k in self.options})

    def stored(self, *, per_token: bool = False, passes: int = 10, seed: int = 0) -> list[QueryStrategy]:
        """The variants of this strategy a scoring run stores."""
        costs = (False, True) if self.both_costs else (per_token,)
        return [self.make(per_token=c, passes=passes, seed=seed) for c in costs]


_RECORDS = (
    StrategyRecord("least_confidence", LeastConfidence, "expected number of wrongly tagged tokens (1 - max p, "
                   "summed): favours long, unclear reports", frozenset({"per_token"}), both_costs=True),
    StrategyRecord("margin", Margin, "the report's most ambiguous token (smallest gap between its two best tags)",
                   frozenset({"per_token"}), tiebreak="mean token uncertainty", both_costs=True),
    StrategyRecord("entropy_max", lambda: TokenEntropy("max"),
                   "the report's most uncertain token (normalised entropy)"),
    StrategyRecord("entropy_mean", lambda: TokenEntropy("mean"), "mean token entropy: uncertainty per token"),
    StrategyRecord("mnlp", MNLP, "length-normalised log-probability of the best tagging (Shen et al. 2017): "
                   "uncertainty per token"),
    StrategyRecord("bald", lambda passes, per_token: BALD(passes, per_token=per_token),
                   "disagreement between MC-dropout passes (model uncertainty); slower, runs the model several "
                   "times", frozenset({"per_token", "passes"}), needs_probs=False, needs_passes=True,
                   every_run=False),
    StrategyRecord("diversity", lambda per_token: Diversity(base=Margin(per_token=per_token)),
                   "k-center over report embeddings weighted by margin: uncertain reports that differ from each "
                   "other and from those already labelled", frozenset({"per_token"}), needs_embeddings=True),
    StrategyRecord("diversity_mnlp", lambda: Diversity(base=MNLP()), "k-center over report embeddings weighted by "
                   "MNLP (uncertainty per token), away from the labelled reports", needs_embeddings=True),
    StrategyRecord("diversity_cold", Diversity, "k-center over report embeddings, no model needed (the cold start)",
                   needs_probs=False, needs_embeddings=True, every_run=False),
    StrategyRecord("random", Random, "the baseline: a seeded random order", frozenset({"seed"}), needs_probs=False),
)
REGISTRY: dict[str, StrategyRecord] = {r.name: r for r in _RECORDS}
STRATEGY_HELP = {name: r.help for name, r in REGISTRY.items()}
# Margin-weighted k-center from the labelled reports. bench/README.md, PTB-XL (real reports with repeats): 95% of the
# full-data F1 with 152 documents, random sampling 344 (0.44x); mnlp was next.
DEFAULT_STRATEGY = "diversity"
COLD_START_STRATEGY = "diversity_cold"  # what ranks a pool before any model: the queue of a cold-start run


def strategy_names() -> list[str]:
    return list(REGISTRY)


def get_strategy(name: str, *, per_token: bool = False, passes: int = 10, seed: int = 0) -> QueryStrategy:
    """A strategy by registry name; options that do not apply to it are ignored."""
    if name not in REGISTRY:
        raise ReportLensError(f"Unknown query strategy {name!r}; choose one of {', '.join(REGISTRY)}.")
    return REGISTRY[name].make(per_token=per_token, passes=passes, seed=seed)


TREND_STRATEGY = str(get_strategy("least_confidence", per_token=True))  # the uncertainty trend is read from it


def run_strategies(chosen: str, *, per_token: bool = False, passes: int = 10, seed: int = 0,
                   cold_start: bool = False) -> list[QueryStrategy]:
    """The strategies a scoring run stores, the one its queue is ranked by first: with a model, ``chosen`` and
    every ``every_run`` record (``both_costs`` ones in both variants); at the cold start (no model) the records
    that need none, ranked by :data:`COLD_START_STRATEGY` whatever was chosen."""
    primary = get_strategy(COLD_START_STRATEGY if cold_start else chosen, per_token=per_token, passes=passes,
                           seed=seed)
    out: dict[str, QueryStrategy] = {str(primary): primary}
    for record in REGISTRY.values():
        wanted = not record.needs_model if cold_start else (record.every_run or record.name == chosen)
        if wanted:
            for s in record.stored(per_token=per_token, passes=passes, seed=seed):
                out.setdefault(str(s), s)
    return list(out.values())


def default_ranking(stored: Sequence[str], preferred: str | None = None) -> str:
    """Which of a scoring run's stored strategy names (``str()`` of each strategy) a queue is ranked by when the user
    has not picked one: ``preferred`` (a stored name), else the default strategy as stored (``"diversity(margin)"``
    for the registry name ``"diversity"``), else the cold-start ``"diversity"``, else the first."""
    if not stored:
        raise ReportLensError("The scoring run stored no strategy.")
    for key in (preferred, str(get_strategy(DEFAULT_STRATEGY)), str(get_strategy(COLD_START_STRATEGY))):
        if key is not None and key in stored:
            return key
    return stored[0]
