"""core.metrics: strict entity P/R/F1 (checked against seqeval strict IOB2) and error analysis."""

from __future__ import annotations

import random

import pytest
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from core.metrics import entity_scores, error_analysis, evaluate_spans
from core.types import Span


def S(a: int, b: int, label: str) -> Span:  # noqa: N802 - short constructor for readable cases
    return Span(a, b, label)


def test_exact_matches_only():
    gold = {1: [S(0, 5, "A"), S(10, 12, "B")], 2: [S(3, 4, "A")]}
    pred = {1: [S(0, 5, "A"), S(10, 13, "B")], 2: [S(3, 4, "B")], 3: [S(0, 1, "A")]}
    m = entity_scores(gold, pred)
    assert (m["tp"], m["support"], m["predicted"]) == (1, 3, 4)
    assert m["precision"] == pytest.approx(1 / 4) and m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    assert m["per_label"]["A"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2, "tp": 1}
    assert m["per_label"]["B"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx(0.25)


def test_empty_sides_give_zero_not_errors():
    assert entity_scores({}, {})["f1"] == 0.0
    assert entity_scores({1: [S(0, 1, "A")]}, {})["precision"] == 0.0
    assert entity_scores({}, {1: [S(0, 1, "A")]})["recall"] == 0.0


def test_error_analysis_categories():
    gold = {7: [S(0, 5, "A"), S(10, 15, "B"), S(20, 25, "A"), S(30, 35, "A")]}
    pred = {7: [S(0, 5, "A"), S(10, 15, "C"), S(19, 25, "A"), S(31, 34, "B"), S(40, 42, "A")]}
    text = {7: "x" * 50}
    errors = error_analysis(gold, pred, text)
    kinds = [(e.type, e.gold, e.pred) for e in errors]
    assert ("label_confusion", S(10, 15, "B"), S(10, 15, "C")) in kinds
    assert ("boundary", S(20, 25, "A"), S(19, 25, "A")) in kinds
    # overlapping with another label AND other offsets: one miss, one spurious
    assert ("false_negative", S(30, 35, "A"), None) in kinds
    assert ("false_positive", None, S(31, 34, "B")) in kinds
    assert ("false_positive", None, S(40, 42, "A")) in kinds
    assert len(errors) == 5 and all(e.doc_id == 7 and "[[" in e.snippet for e in errors)
    out = evaluate_spans(gold, pred, text, max_examples=2)
    assert out["errors"]["counts"] == {"false_positive": 2, "false_negative": 1, "boundary": 1, "label_confusion": 1}
    assert len(out["errors"]["examples"]) == 2 and out["errors"]["examples"][0]["doc_id"] == 7


def test_boundary_pairs_one_to_one_largest_overlap_first():
    gold = {1: [S(0, 10, "A")]}
    pred = {1: [S(0, 2, "A"), S(1, 9, "A")]}
    errors = error_analysis(gold, pred)
    assert sorted((e.type, e.pred) for e in errors) == [("boundary", S(1, 9, "A")), ("false_positive", S(0, 2, "A"))]


def _random_spans(rng: random.Random, n_tokens: int, labels: list[str]) -> list[Span]:
    spans, i = [], 0
    while i < n_tokens:
        if rng.random() < 0.3:
            length = rng.randint(1, 3)
            end = min(i + length, n_tokens)
            spans.append(S(i, end, rng.choice(labels)))
            i = end + rng.choice([0, 0, 1])  # adjacent entities too
        else:
            i += 1
    return spans


def _tags(spans: list[Span], n_tokens: int) -> list[str]:
    tags = ["O"] * n_tokens
    for s in spans:
        tags[s.start] = f"B-{s.label}"
        for t in range(s.start + 1, s.end):
            tags[t] = f"I-{s.label}"
    return tags


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # seqeval averaging over a document set without entities
@pytest.mark.parametrize("seed", range(40))
def test_matches_seqeval_strict_iob2(seed: int):
    """Spans over token positions -> IOB2 tags: our scores equal seqeval's strict classification report."""
    rng = random.Random(seed)
    labels = ["A", "B", "C"][: rng.randint(1, 3)]
    gold, pred, y_true, y_pred = {}, {}, [], []
    for doc in range(rng.randint(1, 6)):
        n = rng.randint(1, 25)
        g = _random_spans(rng, n, labels)
        # predictions: mostly the gold spans, some moved, relabelled, dropped or invented
        p = [s for s in g if rng.random() < 0.6] + _random_spans(rng, n, labels)
        p = sorted({(s.start, s.end): s for s in p}.values())
        taken: list[Span] = []
        for s in p:  # keep a non-overlapping set, as a BIO sequence must
            if not any(s.overlaps(t) for t in taken):
                taken.append(s)
        gold[doc], pred[doc] = g, taken
        y_true.append(_tags(g, n))
        y_pred.append(_tags(taken, n))
    ours = entity_scores(gold, pred)
    theirs = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    for label, row in ours["per_label"].items():
        if row["support"] == 0:
            continue  # seqeval lists only labels present in y_true (or y_pred); compare where both define it
        assert row["precision"] == pytest.approx(theirs[label]["precision"])
        assert row["recall"] == pytest.approx(theirs[label]["recall"])
        assert row["f1"] == pytest.approx(theirs[label]["f1-score"])
        assert row["support"] == theirs[label]["support"]
    if ours["support"]:
        assert ours["precision"] == pytest.approx(theirs["micro avg"]["precision"])
        assert ours["recall"] == pytest.approx(theirs["micro avg"]["recall"])
        assert ours["f1"] == pytest.approx(theirs["micro avg"]["f1-score"])
