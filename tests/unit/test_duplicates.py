"""core/active/duplicates.py: a queue holds each report text once before any repeat, labelled texts last."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.active import MNLP, Diversity, Pool, get_strategy, select_batch
from core.active.duplicates import duplicate_stats, spread_duplicates, text_key


def test_text_key_ignores_case_and_whitespace_only():
    assert text_key("Sinus rhythm.\n Normal ECG.") == text_key("sinus  rhythm. normal ecg.")
    assert text_key("  sinusrhythmus\tnormales ekg ") == "sinusrhythmus normales ekg"
    assert text_key("sinus rhythm") != text_key("sinus rhythm.")  # punctuation is content


def test_spread_by_hand():
    keys = ["a", "b", "a", "c", "b", "d"]
    # ranking 2 (a), 0 (a), 4 (b), 3 (c), 1 (b), 5 (d): the second a and the second b go last, in their order
    assert spread_duplicates([2, 0, 4, 3, 1, 5], keys).tolist() == [2, 4, 3, 5, 0, 1]
    # c is already labelled: it goes last too, where the ranking put it among the others
    assert spread_duplicates([2, 0, 4, 3, 1, 5], keys, known={"c"}).tolist() == [2, 4, 5, 0, 3, 1]
    assert spread_duplicates([], []).tolist() == []


def test_spread_refuses_a_broken_order():
    with pytest.raises(ValueError, match="twice"):
        spread_duplicates([0, 0], ["a", "b"])
    with pytest.raises(ValueError, match="outside"):
        spread_duplicates([0, 2], ["a", "b"])


@given(st.lists(st.sampled_from("abcdef"), max_size=30), st.sets(st.sampled_from("abcdef")), st.randoms())
def test_spread_properties(keys, known, rnd):
    order = list(range(len(keys)))
    rnd.shuffle(order)
    out = spread_duplicates(order, keys, known).tolist()
    assert sorted(out) == sorted(order)  # a permutation: nothing lost, nothing added
    n_new = len(set(keys) - known)
    front = out[:n_new]
    assert len({keys[i] for i in front}) == n_new and not {keys[i] for i in front} & known  # each new text once
    assert front == [i for i in order if i in set(front)]  # the strategy's order among them is kept
    rest = out[n_new:]
    assert rest == [i for i in order if i in set(rest)]
    stats = duplicate_stats(keys, known)
    assert stats["new_texts"] == n_new and stats["ranked_last"] == len(rest)
    assert stats["distinct"] == len(set(keys)) and stats["documents"] == len(keys)


def _pool():
    rng = np.random.default_rng(3)
    sharp = rng.uniform(0.2, 3.0, size=6)
    probs = []
    for s in sharp:
        logits = rng.normal(size=(5, 4)) * s
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs.append(e / e.sum(axis=1, keepdims=True))
    return probs


@pytest.mark.parametrize("name", ["least_confidence", "margin", "mnlp", "entropy_max", "random", "diversity"])
def test_select_batch_never_takes_a_text_twice(name):
    base = _pool()
    # documents 0..5 are distinct; 6..11 are copies of them (same text, same probabilities, same embedding)
    probs = base + [p.copy() for p in base]
    emb = np.random.default_rng(0).normal(size=(6, 8))
    emb = np.vstack([emb, emb])
    keys = [f"text {i % 6}" for i in range(12)]
    s = get_strategy(name, seed=1)
    picks = select_batch(s, Pool(probs, embeddings=emb, keys=keys), 6)
    assert len({keys[i] for i in picks}) == 6  # six different texts
    plain = select_batch(s, Pool(probs, embeddings=emb), 12)  # without keys, the strategy's own order
    assert picks == [i for i in plain if i in set(picks)][:6]
    labelled = select_batch(s, Pool(probs, embeddings=emb, keys=keys, known={"text 0", "text 1"}), 4)
    assert not {keys[i] for i in labelled} & {"text 0", "text 1"}  # labelled texts only when nothing new is left
    assert len(select_batch(s, Pool(probs, embeddings=emb, keys=keys, known={"text 0"}), 12)) == 12  # all of them


def test_uncertainty_without_keys_does_take_copies():
    """The failure the keys prevent: identical texts score alike, so a plain uncertainty batch repeats them."""
    base = _pool()
    worst = int(np.argmax(MNLP().score(Pool(base))))
    probs = base + [base[worst].copy() for _ in range(3)]
    picks = select_batch(MNLP(), Pool(probs), 3)
    assert all(i == worst or i >= 6 for i in picks)  # three copies of one text
    keys = [f"t{i}" for i in range(6)] + [f"t{worst}"] * 3
    assert len({keys[i] for i in select_batch(MNLP(), Pool(probs, keys=keys), 3)}) == 3


def test_keys_must_match_the_pool():
    from core.types import ReportLensError

    with pytest.raises(ReportLensError, match="2 duplicate keys for a pool of 3"):
        Pool([np.zeros((1, 2))] * 3, keys=["a", "b"])
    emb = np.eye(3)
    assert len(select_batch(Diversity(), Pool(embeddings=emb, keys=["a", "a", "b"]), 2)) == 2
