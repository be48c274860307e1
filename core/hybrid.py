"""Merging model entities with rule entities: one list for the review page and the structured result.

Policy (:class:`MergePolicy`, the default is what the review page shows):

- **Agreement**: a model entity and a rule entity with the same label and the same offsets become one entity with
  ``source="both"`` and a raised confidence, the noisy-OR of the two: ``1 - (1 - p_model) * (1 - p_rule)`` (two
  independent witnesses; 0.8 and 0.9 give 0.98). Its attrs are the rule's (values, negation, SCP code) updated with
  the model's, plus ``agreement: "exact"`` and both scores (``model_score``, ``rule_score``).
- **Boundary disagreement**: same label, overlapping, different offsets. ``boundary="flag"`` (default) keeps both,
  each with ``attrs["conflict"]`` (a readable sentence), ``conflict_kind="boundary"`` and ``conflict_with`` (the other
  entities as dicts), for a reviewer to settle. ``boundary="model"`` / ``"rule"`` instead merges them into one
  ``"both"`` entity with the model's / the rule's offsets (the other offsets kept in ``attrs["other_span"]``).
- **Label conflict**: overlapping with a different label: both kept, flagged the same way with
  ``conflict_kind="label"``. Scores are not changed by a conflict.
- Model-only and rule-only entities are kept unchanged (source ``"model"`` / ``"rule"``).

Pure: entities in, new entities out, sorted by ``(start, end, label, source)``. Map the rule labels into the model's
label space first (:func:`core.rules.labels.map_labels`), or every rule entity reads as a label conflict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from core.types import Entity, ReportLensError

BoundaryPolicy = Literal["flag", "model", "rule"]


@dataclass(frozen=True)
class MergePolicy:
    boundary: BoundaryPolicy = "flag"

    def __post_init__(self) -> None:
        if self.boundary not in ("flag", "model", "rule"):
            raise ReportLensError(f"Merge policy boundary={self.boundary!r}: use 'flag', 'model' or 'rule'.")

    def __str__(self) -> str:
        return f"agree->noisy-or, boundary->{self.boundary}, label conflict->flag"


DEFAULT_POLICY = MergePolicy()


def noisy_or(p: float, q: float) -> float:
    """``1 - (1 - p)(1 - q)``, with both clipped to [0, 1]."""
    p, q = min(max(p, 0.0), 1.0), min(max(q, 0.0), 1.0)
    return 1.0 - (1.0 - p) * (1.0 - q)


def _brief(e: Entity) -> dict[str, Any]:
    return {"start": e.start, "end": e.end, "label": e.label, "source": e.source, "score": round(e.score, 4)}


def _agree(m: Entity, r: Entity, start: int, end: int, kind: str) -> Entity:
    attrs = {**r.attrs, **m.attrs, "agreement": kind, "model_score": m.score, "rule_score": r.score}
    if (start, end) != (m.start, m.end):
        attrs["other_span"] = [m.start, m.end]
    elif (start, end) != (r.start, r.end):
        attrs["other_span"] = [r.start, r.end]
    return Entity(start, end, m.label, noisy_or(m.score, r.score), "both", attrs)


def _flag(e: Entity, others: list[Entity], kinds: set[str]) -> Entity:
    kind = "+".join(sorted(kinds))
    said = "; ".join(f"{o.source} says {o.label} [{o.start}, {o.end})" for o in others)
    attrs = {**e.attrs, "conflict": f"{e.source} says {e.label} [{e.start}, {e.end}); {said}",
             "conflict_kind": kind, "conflict_with": [_brief(o) for o in others]}
    return replace(e, attrs=attrs)


def merge_entities(model: Sequence[Entity], rules: Sequence[Entity],
                   policy: MergePolicy = DEFAULT_POLICY) -> list[Entity]:
    """One list of entities from a model's and the rules' (see the module docstring for the policy)."""
    merged: list[Entity] = []
    used_model: set[int] = set()
    used_rule: set[int] = set()
    # 1. exact agreement
    for i, m in enumerate(model):
        for j, r in enumerate(rules):
            if j not in used_rule and (m.start, m.end, m.label) == (r.start, r.end, r.label):
                merged.append(_agree(m, r, m.start, m.end, "exact"))
                used_model.add(i)
                used_rule.add(j)
                break
    # 2. boundary disagreements merged by policy (one partner each, the largest overlap first)
    if policy.boundary != "flag":
        pairs = sorted(((min(m.end, r.end) - max(m.start, r.start), i, j) for i, m in enumerate(model)
                        for j, r in enumerate(rules) if i not in used_model and j not in used_rule
                        and m.label == r.label and m.start < r.end and r.start < m.end), reverse=True)
        for _, i, j in pairs:
            if i in used_model or j in used_rule:
                continue
            m, r = model[i], rules[j]
            keep = m if policy.boundary == "model" else r
            merged.append(_agree(m, r, keep.start, keep.end, f"boundary ({policy.boundary}'s offsets)"))
            used_model.add(i)
            used_rule.add(j)
    # 3. what is left: conflicts flagged, the rest kept as it is
    rest_m = [(i, m) for i, m in enumerate(model) if i not in used_model]
    rest_r = [(j, r) for j, r in enumerate(rules) if j not in used_rule]
    partners: dict[tuple[str, int], list[Entity]] = {}
    kinds: dict[tuple[str, int], set[str]] = {}
    for i, m in rest_m:
        for j, r in rest_r:
            if m.start < r.end and r.start < m.end:
                kind = "label" if m.label != r.label else "boundary"
                for key, other in ((("m", i), r), (("r", j), m)):
                    partners.setdefault(key, []).append(other)
                    kinds.setdefault(key, set()).add(kind)
    for side, items in (("m", rest_m), ("r", rest_r)):
        for k, e in items:
            key = (side, k)
            merged.append(_flag(e, partners[key], kinds[key]) if key in partners else e)
    return sorted(merged, key=lambda e: (e.start, e.end, e.label, e.source))
