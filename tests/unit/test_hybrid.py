"""core/hybrid.merge_entities: agreement (noisy-OR), boundary and label conflicts (flagged or merged by policy),
model-only and rule-only entities, hand-made cases."""

from __future__ import annotations

import pytest

from core.hybrid import MergePolicy, merge_entities, noisy_or
from core.types import Entity, ReportLensError


def M(s, e, label, p=0.8, **attrs):  # noqa: N802
    return Entity(s, e, label, p, "model", attrs)


def R(s, e, label, p=0.9, **attrs):  # noqa: N802
    return Entity(s, e, label, p, "rule", attrs)


def test_agreement_is_one_entity_with_raised_confidence():
    out = merge_entities([M(0, 12, "RHYTHM", 0.8)], [R(0, 12, "RHYTHM", 0.9, scp_code="SR", negated=False)])
    assert len(out) == 1
    e = out[0]
    assert (e.start, e.end, e.label, e.source) == (0, 12, "RHYTHM", "both")
    assert e.score == pytest.approx(1 - 0.2 * 0.1) and e.score > 0.9
    assert e.attrs["scp_code"] == "SR" and e.attrs["agreement"] == "exact"
    assert (e.attrs["model_score"], e.attrs["rule_score"]) == (0.8, 0.9)


def test_noisy_or_bounds():
    assert noisy_or(0.0, 0.0) == 0.0 and noisy_or(1.0, 0.3) == 1.0 and noisy_or(0.5, 0.5) == 0.75
    assert noisy_or(1.7, -1) == 1.0  # clipped


def test_only_one_side_keeps_its_source():
    out = merge_entities([M(0, 5, "FINDING")], [R(10, 16, "HEART_RATE")])
    assert [(e.source, e.label, "conflict" in e.attrs) for e in out] == [("model", "FINDING", False),
                                                                        ("rule", "HEART_RATE", False)]
    assert merge_entities([], []) == []
    assert [e.source for e in merge_entities([], [R(0, 3, "X")])] == ["rule"]
    assert [e.source for e in merge_entities([M(0, 3, "X")], [])] == ["model"]


def test_label_conflict_is_kept_and_flagged_on_both():
    out = merge_entities([M(0, 24, "FINDING", 0.6)], [R(0, 24, "CONDUCTION")])
    assert len(out) == 2
    for e in out:
        assert e.attrs["conflict_kind"] == "label"
        assert "model says FINDING [0, 24)" in e.attrs["conflict"]
        assert "rule says CONDUCTION [0, 24)" in e.attrs["conflict"]
        assert len(e.attrs["conflict_with"]) == 1
    assert {e.score for e in out} == {0.6, 0.9}  # a conflict changes no score


def test_boundary_conflict_flagged_by_default():
    out = merge_entities([M(0, 7, "HEART_RATE")], [R(0, 6, "HEART_RATE")])
    assert len(out) == 2 and all(e.attrs["conflict_kind"] == "boundary" for e in out)
    assert out[0].attrs["conflict_with"][0]["source"] in ("model", "rule")


@pytest.mark.parametrize(("boundary", "span"), [("model", (0, 7)), ("rule", (0, 6))])
def test_boundary_policy_can_merge(boundary, span):
    out = merge_entities([M(0, 7, "HEART_RATE", 0.5)], [R(0, 6, "HEART_RATE", 0.5, value=78)], MergePolicy(boundary))
    assert len(out) == 1
    e = out[0]
    assert (e.start, e.end) == span and e.source == "both" and e.score == 0.75 and e.attrs["value"] == 78
    assert e.attrs["other_span"] in ([0, 6], [0, 7]) and "conflict" not in e.attrs


def test_mixed_report():
    model = [M(0, 12, "RHYTHM", 0.7), M(16, 22, "HEART_RATE", 0.9), M(30, 45, "FINDING", 0.6), M(50, 60, "FINDING")]
    rules = [R(0, 12, "RHYTHM"), R(16, 22, "HEART_RATE"), R(30, 42, "FINDING"), R(70, 80, "AXIS"),
             R(50, 60, "CONDUCTION")]
    out = merge_entities(model, rules)
    got = [(e.start, e.end, e.label, e.source, e.attrs.get("conflict_kind")) for e in out]
    assert got == [
        (0, 12, "RHYTHM", "both", None), (16, 22, "HEART_RATE", "both", None),
        (30, 42, "FINDING", "rule", "boundary"), (30, 45, "FINDING", "model", "boundary"),
        (50, 60, "CONDUCTION", "rule", "label"), (50, 60, "FINDING", "model", "label"),
        (70, 80, "AXIS", "rule", None),
    ]


def test_one_model_entity_against_two_rules():
    out = merge_entities([M(0, 30, "FINDING")], [R(0, 10, "FINDING"), R(15, 30, "RHYTHM")])
    model = next(e for e in out if e.source == "model")
    assert model.attrs["conflict_kind"] == "boundary+label" and len(model.attrs["conflict_with"]) == 2


def test_inputs_are_not_changed_and_policy_is_checked():
    m, r = M(0, 5, "A"), R(0, 4, "A")
    merge_entities([m], [r])
    assert "conflict" not in m.attrs and "conflict" not in r.attrs
    with pytest.raises(ReportLensError, match="boundary"):
        MergePolicy("union")  # type: ignore[arg-type]
    assert "noisy-or" in str(MergePolicy())
