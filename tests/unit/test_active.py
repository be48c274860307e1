"""core/active.py: the contract every query strategy passes, the math against hand-computed values, batch selection
and the stopping indicator."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from core.active import (
    BALD,
    DEFAULT_STRATEGY,
    MNLP,
    STRATEGIES,
    Diversity,
    LeastConfidence,
    Margin,
    Random,
    TokenEntropy,
    get_strategy,
    rank,
    select_batch,
    strategy_names,
)
from core.stopping import entity_change_rate, fixed_sample, stopping_advice, uncertainty_trend
from core.types import ReportLensError

N_TAGS = 5


def doc(rng: np.random.Generator, n_tokens: int, sharp: float = 3.0) -> np.ndarray:
    logits = rng.normal(size=(n_tokens, N_TAGS)) * sharp
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def mc(rng: np.random.Generator, p: np.ndarray, passes: int = 4) -> np.ndarray:
    noisy = p[None] * rng.uniform(0.5, 1.5, size=(passes, *p.shape))
    return noisy / noisy.sum(axis=-1, keepdims=True)


def pool_inputs(probs: list[np.ndarray], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"probs": probs, "passes": [mc(rng, p) for p in probs],
            "embeddings": rng.normal(size=(len(probs), 8)) if probs else np.zeros((0, 8))}


ALL = [get_strategy(name, passes=4) for name in strategy_names()] + [
    get_strategy(name, per_token=True, passes=4) for name in ("least_confidence", "margin", "bald", "diversity")]


@pytest.mark.parametrize("strategy", ALL, ids=str)
class TestStrategyContract:
    def test_readable_name(self, strategy):
        name = str(strategy)
        assert re.fullmatch(r"[a-z_]+(\([a-z_=0-9, ()]+\))?", name) and len(name) <= 100, name
        assert name == str(strategy) and f"<{type(strategy).__name__} {name}>" == repr(strategy)

    def test_empty_pool(self, strategy):
        inputs = pool_inputs([])
        assert strategy.score(**inputs).shape == (0,)
        assert select_batch(strategy, n=10, **inputs) == []

    def test_pool_smaller_than_the_batch(self, strategy):
        rng = np.random.default_rng(1)
        inputs = pool_inputs([doc(rng, 7), doc(rng, 3), doc(rng, 12)])
        batch = select_batch(strategy, n=10, **inputs)
        assert sorted(batch) == [0, 1, 2]
        scores = strategy.score(**inputs)
        assert scores.shape == (3,) and np.all(np.isfinite(scores))

    def test_ties_are_broken_deterministically(self, strategy):
        rng = np.random.default_rng(2)
        same = doc(rng, 6)
        probs = [same.copy() for _ in range(5)]
        inputs = pool_inputs(probs)
        inputs["embeddings"] = np.ones((5, 8))  # identical documents in every respect
        inputs["passes"] = [inputs["passes"][0]] * 5
        first = select_batch(strategy, n=3, **inputs)
        assert first == select_batch(strategy, n=3, **inputs)
        if not isinstance(strategy, Random):
            assert first == [0, 1, 2]  # equal scores: pool order

    def test_one_token_documents(self, strategy):
        rng = np.random.default_rng(3)
        inputs = pool_inputs([doc(rng, 1) for _ in range(4)] + [np.zeros((0, N_TAGS))])
        scores = strategy.score(**inputs)
        assert scores.shape == (5,) and np.all(np.isfinite(scores)) and np.all(scores >= 0)
        assert len(select_batch(strategy, n=2, **inputs)) == 2

    def test_documents_longer_than_one_window(self, strategy):
        rng = np.random.default_rng(4)
        inputs = pool_inputs([doc(rng, 900), doc(rng, 20), doc(rng, 600)])
        scores = strategy.score(**inputs)
        assert scores.shape == (3,) and np.all(np.isfinite(scores))
        assert sorted(select_batch(strategy, n=3, **inputs)) == [0, 1, 2]

    def test_deterministic(self, strategy):
        rng = np.random.default_rng(5)
        inputs = pool_inputs([doc(rng, n) for n in (4, 9, 2, 30, 11)])
        np.testing.assert_array_equal(strategy.score(**inputs), strategy.score(**inputs))


# ---------------------------------------------------------------- math by hand

P1 = np.array([[0.7, 0.2, 0.1], [0.5, 0.4, 0.1]])
P2 = np.array([[0.9, 0.05, 0.05]])


def test_least_confidence_by_hand():
    assert LeastConfidence().score([P1, P2]) == pytest.approx([0.3 + 0.5, 0.1])
    assert LeastConfidence(per_token=True).score([P1, P2]) == pytest.approx([0.4, 0.1])


def test_margin_by_hand_and_tie_break():
    assert Margin().score([P1, P2]) == pytest.approx([1 - 0.1, 1 - 0.85])  # the most ambiguous token
    assert Margin(per_token=True).score([P1, P2]) == pytest.approx([(0.5 + 0.9) / 2, 0.15])
    # equal max-margin uncertainty: the report whose other tokens are less sure goes first
    a = np.array([[0.5, 0.4, 0.1], [0.98, 0.01, 0.01]])
    b = np.array([[0.5, 0.4, 0.1], [0.6, 0.3, 0.1]])
    assert Margin().score([a, b])[0] == pytest.approx(Margin().score([a, b])[1])
    assert select_batch(Margin(), [a, b], 2) == [1, 0]


def test_entropy_by_hand():
    h = [-(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3),
         -(0.5 * math.log(0.5) + 0.4 * math.log(0.4) + 0.1 * math.log(0.1)) / math.log(3)]
    assert TokenEntropy("max").score([P1]) == pytest.approx([max(h)])
    assert TokenEntropy("mean").score([P1]) == pytest.approx([sum(h) / 2])
    assert str(TokenEntropy("mean")) == "entropy(mean)"
    with pytest.raises(ReportLensError):
        TokenEntropy("median")


def test_mnlp_by_hand():
    assert MNLP().score([P1, P2]) == pytest.approx([-(math.log(0.7) + math.log(0.5)) / 2, -math.log(0.9)])


def test_bald_by_hand():
    # two passes that disagree completely on one token: H(mean) = log 2 / log 2 normalised by log(2 tags) = 1, E[H] = 0
    stack = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    agree = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])  # uncertain but not about the weights: MI = 0
    scores = BALD(passes=2).score([stack.mean(0), agree.mean(0)], passes=[stack, agree])
    assert scores == pytest.approx([1.0, 0.0], abs=1e-9)
    assert str(BALD(passes=10)) == "bald(passes=10)"
    with pytest.raises(ReportLensError, match="MC-dropout"):
        BALD(passes=2).score([P1])
    with pytest.raises(ReportLensError):
        BALD(passes=1)


def test_per_token_cost_stops_long_reports_winning():
    short_unsure = np.full((5, 3), 1 / 3)  # 5 tokens, each 2/3 unsure: total 3.3, per token 0.67
    long_sure = np.tile([0.8, 0.1, 0.1], (200, 1))  # 200 tokens, each 0.2 unsure: total 40, per token 0.2
    assert select_batch(LeastConfidence(), [short_unsure, long_sure], 1) == [1]  # total uncertainty: long first
    assert select_batch(LeastConfidence(per_token=True), [short_unsure, long_sure], 1) == [0]


def test_diversity_avoids_near_duplicates():
    base = np.array([1.0, 0.0, 0.0])
    emb = np.array([base, base + [0, 1e-3, 0], base + [0, 0, 1e-3], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    unsure = np.full((3, 3), 1 / 3)
    sure = np.array([[0.98, 0.01, 0.01]] * 3)
    probs = [unsure, unsure, unsure, sure, sure]  # the three near-duplicates are the most uncertain
    assert select_batch(Margin(), probs, 3) == [0, 1, 2]
    picked = select_batch(Diversity(Margin()), probs, 3, embeddings=emb)
    assert picked[0] == 0 and set(picked[1:]) == {3, 4}
    cold = select_batch(Diversity(), [], 3, embeddings=emb)
    assert len(set(cold)) == 3 and len({tuple(np.round(emb[i], 2)) for i in cold}) == 3
    scores = Diversity(Margin(), greedy=5).score(probs, embeddings=emb)
    order = rank(scores)
    assert np.all(np.diff(scores[order]) <= 1e-12)  # scores replay the greedy order


def test_diversity_starts_from_the_labelled_reports():
    """Core-set selection proper: the labelled reports are the first centres, so the queue does not return to a
    region they already cover, however uncertain it is."""
    emb = np.array([[1.0, 0.0, 0.0], [0.99, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    unsure, sure = np.full((3, 3), 1 / 3), np.array([[0.6, 0.3, 0.1]] * 3)
    probs = [unsure, unsure, sure, sure]
    assert select_batch(Diversity(Margin()), probs, 1, embeddings=emb)[0] == 0  # no labelled set: most uncertain
    labelled = np.array([[1.0, 0.05, 0.0]])  # a labelled report next to documents 0 and 1
    picks = select_batch(Diversity(Margin()), probs, 2, embeddings=emb, labelled=labelled)
    assert set(picks) == {2, 3}
    cold = select_batch(Diversity(), [], 4, embeddings=emb, labelled=labelled)
    assert set(cold[:2]) == {2, 3} and set(cold[2:]) == {0, 1}
    # by hand: weights 1 (unsure) / 0.1 (sure: margin 0.7, the pool's lowest); doc 3 is orthogonal to the labelled
    # report (distance 1), doc 2 at 1 - cos = 1 - 0.05/|l| from it and 1 from doc 3
    scores = Diversity(Margin()).score(probs, embeddings=emb, labelled=labelled)
    assert scores[3] == pytest.approx(0.1, rel=1e-6)
    assert scores[2] == pytest.approx(0.1 * (1 - 0.05 / np.linalg.norm(labelled[0])), rel=1e-6)
    assert np.all(np.diff(scores[rank(scores)]) <= 1e-12)  # still replays the greedy order
    same = Diversity(Margin()).score(probs, embeddings=emb, labelled=np.zeros((0, 3)))
    np.testing.assert_allclose(same, Diversity(Margin()).score(probs, embeddings=emb))  # empty = none
    with pytest.raises(ReportLensError, match="labelled embeddings must be"):
        Diversity().score([], embeddings=emb, labelled=np.ones((2, 5)))


def test_random_is_seeded():
    probs = [P1] * 20
    assert select_batch(Random(3), probs, 5) == select_batch(Random(3), probs, 5)
    assert select_batch(Random(3), probs, 5) != select_batch(Random(4), probs, 5)


def test_registry_and_errors():
    from core.active import STRATEGY_HELP

    assert DEFAULT_STRATEGY in STRATEGIES and set(STRATEGY_HELP) == set(strategy_names())
    assert str(get_strategy("margin", per_token=True)) == "margin(per_token)"
    assert str(get_strategy("diversity")) == "diversity(margin)" and str(get_strategy("diversity_cold")) == "diversity"
    assert str(get_strategy("random", seed=2)) == "random(seed=2)"
    with pytest.raises(ReportLensError, match="choose one of"):
        get_strategy("uncertainty")
    with pytest.raises(ReportLensError, match="n_tokens, n_tags"):
        Margin().score([np.zeros(3)])
    with pytest.raises(ReportLensError, match="tags"):
        Margin().score([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ReportLensError, match="Batch size"):
        select_batch(Margin(), [P1], -1)


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
