"""core/active/: the contract every registered query strategy passes, the math against hand-computed values, the
registry, batch selection and the stopping indicator."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

from core.active import (
    BALD,
    DEFAULT_STRATEGY,
    MNLP,
    REGISTRY,
    STRATEGY_HELP,
    Diversity,
    LeastConfidence,
    Margin,
    Pool,
    Random,
    TokenEntropy,
    get_strategy,
    order_by_score,
    rank,
    run_strategies,
    select_batch,
    strategy_names,
)
from core.active.stopping import entity_change_rate, fixed_sample, stopping_advice, uncertainty_trend
from core.types import ReportLensError

N_TAGS = 5


def doc(rng: np.random.Generator, n_tokens: int, sharp: float = 3.0) -> np.ndarray:
    logits = rng.normal(size=(n_tokens, N_TAGS)) * sharp
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def mc(rng: np.random.Generator, p: np.ndarray, passes: int = 4) -> np.ndarray:
    noisy = p[None] * rng.uniform(0.5, 1.5, size=(passes, *p.shape))
    return noisy / noisy.sum(axis=-1, keepdims=True)


def make_pool(probs: list[np.ndarray], seed: int = 0, **fields) -> Pool:
    rng = np.random.default_rng(seed)
    inputs = {"probs": probs, "passes": [mc(rng, p) for p in probs],
              "embeddings": rng.normal(size=(len(probs), 8)) if probs else np.zeros((0, 8))}
    return Pool(**(inputs | fields))


# every registered strategy under every option it takes (stored names must stay readable and stable)
ALL = [r.make(per_token=pt, passes=4, seed=1) for r in REGISTRY.values()
       for pt in ((False, True) if "per_token" in r.options else (False,))]


@pytest.mark.parametrize("strategy", ALL, ids=str)
class TestStrategyContract:
    def test_readable_name(self, strategy):
        name = str(strategy)
        assert re.fullmatch(r"[a-z_]+(\([a-z_=0-9, ()]+\))?", name) and len(name) <= 100, name
        assert name == str(strategy) and f"<{type(strategy).__name__} {name}>" == repr(strategy)

    def test_empty_pool(self, strategy):
        pool = make_pool([])
        assert strategy.score(pool).shape == (0,)
        assert select_batch(strategy, pool, 10) == [] and rank(strategy, pool).order.tolist() == []

    def test_pool_smaller_than_the_batch(self, strategy):
        rng = np.random.default_rng(1)
        pool = make_pool([doc(rng, 7), doc(rng, 3), doc(rng, 12)])
        batch = select_batch(strategy, pool, 10)
        assert sorted(batch) == [0, 1, 2]
        scores = strategy.score(pool)
        assert scores.shape == (3,) and np.all(np.isfinite(scores))

    def test_ties_are_broken_deterministically(self, strategy):
        rng = np.random.default_rng(2)
        same = doc(rng, 6)
        probs = [same.copy() for _ in range(5)]
        passes = [mc(rng, same)] * 5
        pool = make_pool(probs, passes=passes, embeddings=np.ones((5, 8)))  # identical documents in every respect
        first = select_batch(strategy, pool, 3)
        assert first == select_batch(strategy, pool, 3)
        if not isinstance(strategy, Random):
            assert first == [0, 1, 2]  # equal scores: pool order

    def test_select_batch_is_the_top_of_the_stored_ranking_with_duplicates(self, strategy):
        """What the scoring run stores (rank over the whole pool) and select_batch agree for every batch size;
        with duplicate keys each text comes once before any repeat, labelled texts last."""
        rng = np.random.default_rng(6)
        distinct = [doc(rng, n, sharp=s) for n, s in ((5, 0.5), (8, 2.0), (3, 1.0), (12, 0.3))]
        probs = distinct + [distinct[1].copy(), distinct[3].copy()]  # documents 4 and 5 repeat 1 and 3
        emb = rng.normal(size=(4, 8))
        passes = [mc(rng, p) for p in distinct]
        keys = ["a", "b", "c", "d", "b", "d"]
        pool = Pool(probs, passes + [passes[1], passes[3]], np.vstack([emb, emb[1], emb[3]]), keys=keys,
                    known={"c"}, labelled=rng.normal(size=(2, 8)))
        stored = rank(strategy, pool).order.tolist()
        assert sorted(stored) == list(range(6))
        for n in range(7):
            assert select_batch(strategy, pool, n) == stored[:n]
        assert sorted(keys[i] for i in stored[:3]) == ["a", "b", "d"]  # each new text once, first
        assert sorted(keys[i] for i in stored[3:]) == ["b", "c", "d"]  # then the repeats and the labelled text

    def test_one_token_documents(self, strategy):
        rng = np.random.default_rng(3)
        pool = make_pool([doc(rng, 1) for _ in range(4)] + [np.zeros((0, N_TAGS))])
        scores = strategy.score(pool)
        assert scores.shape == (5,) and np.all(np.isfinite(scores)) and np.all(scores >= 0)
        assert len(select_batch(strategy, pool, 2)) == 2

    def test_documents_longer_than_one_window(self, strategy):
        rng = np.random.default_rng(4)
        pool = make_pool([doc(rng, 900), doc(rng, 20), doc(rng, 600)])
        scores = strategy.score(pool)
        assert scores.shape == (3,) and np.all(np.isfinite(scores))
        assert sorted(select_batch(strategy, pool, 3)) == [0, 1, 2]

    def test_deterministic(self, strategy):
        rng = np.random.default_rng(5)
        pool = make_pool([doc(rng, n) for n in (4, 9, 2, 30, 11)])
        np.testing.assert_array_equal(strategy.score(pool), strategy.score(pool))


# ---------------------------------------------------------------- math by hand

P1 = np.array([[0.7, 0.2, 0.1], [0.5, 0.4, 0.1]])
P2 = np.array([[0.9, 0.05, 0.05]])


def test_least_confidence_by_hand():
    assert LeastConfidence().score(Pool([P1, P2])) == pytest.approx([0.3 + 0.5, 0.1])
    assert LeastConfidence(per_token=True).score(Pool([P1, P2])) == pytest.approx([0.4, 0.1])


def test_margin_by_hand_and_tie_break():
    assert Margin().score(Pool([P1, P2])) == pytest.approx([1 - 0.1, 1 - 0.85])  # the most ambiguous token
    assert Margin(per_token=True).score(Pool([P1, P2])) == pytest.approx([(0.5 + 0.9) / 2, 0.15])
    # equal max-margin uncertainty: the report whose other tokens are less sure goes first
    a = np.array([[0.5, 0.4, 0.1], [0.98, 0.01, 0.01]])
    b = np.array([[0.5, 0.4, 0.1], [0.6, 0.3, 0.1]])
    assert Margin().score(Pool([a, b]))[0] == pytest.approx(Margin().score(Pool([a, b]))[1])
    assert select_batch(Margin(), Pool([a, b]), 2) == [1, 0]


def test_entropy_by_hand():
    h = [-(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3),
         -(0.5 * math.log(0.5) + 0.4 * math.log(0.4) + 0.1 * math.log(0.1)) / math.log(3)]
    assert TokenEntropy("max").score(Pool([P1])) == pytest.approx([max(h)])
    assert TokenEntropy("mean").score(Pool([P1])) == pytest.approx([sum(h) / 2])
    assert str(TokenEntropy("mean")) == "entropy(mean)"
    with pytest.raises(ReportLensError):
        TokenEntropy("median")


def test_mnlp_by_hand():
    assert MNLP().score(Pool([P1, P2])) == pytest.approx([-(math.log(0.7) + math.log(0.5)) / 2, -math.log(0.9)])


def test_bald_by_hand():
    # two passes that disagree completely on one token: H(mean) = log 2 / log 2 normalised by log(2 tags) = 1, E[H] = 0
    stack = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    agree = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])  # uncertain but not about the weights: MI = 0
    scores = BALD(passes=2).score(Pool([stack.mean(0), agree.mean(0)], passes=[stack, agree]))
    assert scores == pytest.approx([1.0, 0.0], abs=1e-9)
    assert str(BALD(passes=10)) == "bald(passes=10)"
    with pytest.raises(ReportLensError, match="MC-dropout"):
        BALD(passes=2).score(Pool([P1]))
    with pytest.raises(ReportLensError):
        BALD(passes=1)


def test_per_token_cost_stops_long_reports_winning():
    short_unsure = np.full((5, 3), 1 / 3)  # 5 tokens, each 2/3 unsure: total 3.3, per token 0.67
    long_sure = np.tile([0.8, 0.1, 0.1], (200, 1))  # 200 tokens, each 0.2 unsure: total 40, per token 0.2
    assert select_batch(LeastConfidence(), Pool([short_unsure, long_sure]), 1) == [1]  # total uncertainty: long first
    assert select_batch(LeastConfidence(per_token=True), Pool([short_unsure, long_sure]), 1) == [0]


def test_diversity_avoids_near_duplicates():
    base = np.array([1.0, 0.0, 0.0])
    emb = np.array([base, base + [0, 1e-3, 0], base + [0, 0, 1e-3], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    unsure = np.full((3, 3), 1 / 3)
    sure = np.array([[0.98, 0.01, 0.01]] * 3)
    probs = [unsure, unsure, unsure, sure, sure]  # the three near-duplicates are the most uncertain
    assert select_batch(Margin(), Pool(probs), 3) == [0, 1, 2]
    picked = select_batch(Diversity(Margin()), Pool(probs, embeddings=emb), 3)
    assert picked[0] == 0 and set(picked[1:]) == {3, 4}
    cold = select_batch(Diversity(), Pool(embeddings=emb), 3)
    assert len(set(cold)) == 3 and len({tuple(np.round(emb[i], 2)) for i in cold}) == 3
    scores = Diversity(Margin(), greedy=5).score(Pool(probs, embeddings=emb))
    order = order_by_score(scores)
    assert np.all(np.diff(scores[order]) <= 1e-12)  # scores replay the greedy order


def test_diversity_starts_from_the_labelled_reports():
    """Core-set selection proper: the labelled reports are the first centres, so the queue does not return to a
    region they already cover, however uncertain it is."""
    emb = np.array([[1.0, 0.0, 0.0], [0.99, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    unsure, sure = np.full((3, 3), 1 / 3), np.array([[0.6, 0.3, 0.1]] * 3)
    probs = [unsure, unsure, sure, sure]
    assert select_batch(Diversity(Margin()), Pool(probs, embeddings=emb), 1)[0] == 0  # no labelled set: most uncertain
    labelled = np.array([[1.0, 0.05, 0.0]])  # a labelled report next to documents 0 and 1
    picks = select_batch(Diversity(Margin()), Pool(probs, embeddings=emb, labelled=labelled), 2)
    assert set(picks) == {2, 3}
    cold = select_batch(Diversity(), Pool(embeddings=emb, labelled=labelled), 4)
    assert set(cold[:2]) == {2, 3} and set(cold[2:]) == {0, 1}
    # by hand: weights 1 (unsure) / 0.1 (sure: margin 0.7, the pool's lowest); doc 3 is orthogonal to the labelled
    # report (distance 1), doc 2 at 1 - cos = 1 - 0.05/|l| from it and 1 from doc 3
    scores = Diversity(Margin()).score(Pool(probs, embeddings=emb, labelled=labelled))
    assert scores[3] == pytest.approx(0.1, rel=1e-6)
    assert scores[2] == pytest.approx(0.1 * (1 - 0.05 / np.linalg.norm(labelled[0])), rel=1e-6)
    assert np.all(np.diff(scores[order_by_score(scores)]) <= 1e-12)  # still replays the greedy order
    same = Diversity(Margin()).score(Pool(probs, embeddings=emb, labelled=np.zeros((0, 3))))
    np.testing.assert_allclose(same, Diversity(Margin()).score(Pool(probs, embeddings=emb)))  # empty = none
    with pytest.raises(ReportLensError, match="labelled embeddings must be"):
        Diversity().score(Pool(embeddings=emb, labelled=np.ones((2, 5))))


def test_random_is_seeded():
    pool = Pool(size=20)  # random needs nothing but the pool's size
    assert select_batch(Random(3), pool, 5) == select_batch(Random(3), Pool([P1] * 20), 5)
    assert select_batch(Random(3), pool, 5) != select_batch(Random(4), pool, 5)


def test_registry_and_errors():
    assert DEFAULT_STRATEGY in REGISTRY and set(STRATEGY_HELP) == set(strategy_names()) == set(REGISTRY)
    assert str(get_strategy("margin", per_token=True)) == "margin(per_token)"
    assert str(get_strategy("diversity")) == "diversity(margin)" and str(get_strategy("diversity_cold")) == "diversity"
    assert str(get_strategy("random", seed=2)) == "random(seed=2)"
    with pytest.raises(ReportLensError, match="choose one of"):
        get_strategy("uncertainty")
    with pytest.raises(ReportLensError, match="n_tokens, n_tags"):
        Pool([np.zeros(3)])
    with pytest.raises(ReportLensError, match="tags"):
        Pool([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ReportLensError, match="2 embeddings for a pool of 3 documents"):
        Pool([P1] * 3, embeddings=np.ones((2, 4)))
    with pytest.raises(ReportLensError, match="empty Pool"):
        Pool()
    with pytest.raises(ReportLensError, match="probabilities; this pool has none"):
        Margin().score(Pool(embeddings=np.ones((2, 4))))
    with pytest.raises(ReportLensError, match="Batch size"):
        select_batch(Margin(), Pool([P1]), -1)


@pytest.mark.parametrize("record", REGISTRY.values(), ids=lambda r: r.name)
def test_registry_records_say_what_their_strategies_do(record):
    """needs_* and tiebreak of a record are what the strategy it builds does, under every option."""
    rng = np.random.default_rng(7)
    probs = [doc(rng, 4), doc(rng, 4)]  # equal margins, different mean uncertainty: a tie-break can tell them apart
    probs[1][0] = probs[0][0]
    pool = make_pool(probs)
    assert record.options <= {"per_token", "passes", "seed"} and record.help and "\n" not in record.help
    for per_token in (False, True):
        s = record.make(per_token=per_token, passes=3, seed=2)
        assert (s.needs_probs, s.needs_passes, s.needs_embeddings) == (
            record.needs_probs, record.needs_passes, record.needs_embeddings), s
        assert (s.tiebreak(pool) is not None) == (record.tiebreak is not None), s
        assert ("per_token" in str(s)) == (per_token and "per_token" in record.options), s
        for missing in ("probs", "passes", "embeddings"):  # a strategy fails without what it needs, only that
            without = Pool(**{f: getattr(pool, f) for f in ("probs", "passes", "embeddings") if f != missing})
            with pytest.raises(ReportLensError) if getattr(record, f"needs_{missing}") else nullcontext():
                assert s.score(without).shape == (2,)


def test_a_scoring_run_stores_every_cheap_strategy_and_bald_only_when_chosen():
    names = {r: [str(s) for s in run_strategies(r, passes=3)] for r in strategy_names()}
    for chosen, stored in names.items():
        assert stored[0] == str(get_strategy(chosen, passes=3)) and len(stored) == len(set(stored))  # primary first
        assert ("least_confidence(per_token)" in stored) and "margin(per_token)" in stored  # the trend, both costs
        passes = [s for s in run_strategies(chosen, passes=3) if s.needs_passes]
        assert [str(s) for s in passes] == (["bald(passes=3)"] if chosen == "bald" else [])  # only when chosen
    assert "diversity(margin(per_token))" in [str(s) for s in run_strategies("mnlp", per_token=True)]
    cold = run_strategies("margin", seed=4, cold_start=True)
    assert [str(s) for s in cold] == ["diversity", "random(seed=4)"]  # no model: the cold-start ranking
    assert not any(s.needs_probs or s.needs_passes for s in cold)
    assert not any(s.needs_passes for s in run_strategies("diversity"))  # MC passes only where chosen


def test_core_active_is_pure():
    """core/ imports no torch, transformers, sqlalchemy or streamlit (the layer rule)."""
    code = ("import sys, core.active, core.active.stopping, core.active.duplicates; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'sqlalchemy', "
            "'streamlit'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- stopping indicator


def test_entity_change_rate_by_hand():
    before = [{(0, 4, "A"), (6, 9, "B")}, set(), {(1, 2, "C")}]
    after = [{(0, 4, "A"), (6, 9, "C")}, set(), {(1, 2, "C")}]
    # doc 0: union {A, B, C@6} = 3, changed {B, C@6} = 2; doc 2: union 1, changed 0
    assert entity_change_rate(before, after) == pytest.approx(2 / 4)
    assert entity_change_rate([set()], [set()]) == 0.0
    with pytest.raises(ReportLensError):
        entity_change_rate([set()], [])


def test_fixed_sample_is_stable_as_the_pool_shrinks():
    pool = list(range(1, 2001))
    sample = fixed_sample(pool, 100)
    assert len(sample) == 100 and sample == fixed_sample(list(reversed(pool)), 100)
    smaller = [d for d in pool if d not in sample[:10]]  # ten sampled reports were labeled meanwhile
    again = fixed_sample(smaller, 100)
    assert set(sample[10:]) <= set(again)


def test_uncertainty_trend_and_hint():
    assert uncertainty_trend([0.3, 0.2, 0.1]) == pytest.approx(-0.1)
    assert uncertainty_trend([0.3]) is None
    advice = stopping_advice([0.2, 0.005, 0.004, 0.002], [0.3, 0.2, 0.15, 0.1, 0.09])
    assert advice.consider_stopping
    assert "last 3 rounds changed under 1.0% of predicted entities" in advice.hint and "falling" in advice.hint
    going = stopping_advice([0.2, 0.005, 0.03])
    assert not going.consider_stopping and "3.0%" in going.hint
    assert not stopping_advice([]).consider_stopping and "Not enough model versions" in stopping_advice([]).hint


def test_default_ranking_maps_registry_names_to_stored_names():
    from core.active import default_ranking

    stored = sorted(str(s) for s in (get_strategy("margin"), get_strategy("mnlp"), get_strategy("least_confidence"),
                                     get_strategy("diversity"), get_strategy("random")))
    assert default_ranking(stored) == str(get_strategy(DEFAULT_STRATEGY))  # e.g. "diversity(margin)", not "diversity"
    assert default_ranking(stored, preferred="mnlp") == "mnlp"
    assert default_ranking(stored, preferred="bald(passes=10)") == str(get_strategy(DEFAULT_STRATEGY))  # not stored
    assert default_ranking(["diversity", "random(seed=0)"]) == "diversity"  # cold start
    assert default_ranking(["entropy(max)"]) == "entropy(max)"
    with pytest.raises(ReportLensError, match="no strategy"):
        default_ranking([])
