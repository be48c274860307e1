"""The hook that maps rule labels (:data:`core.rules.ecg.RULE_LABELS` and the cue labels) to a project's labels.

A mapping is either a dict ``{rule label: project label or None}`` (``None`` drops the entity; labels not in the dict
stay as they are) or a callable ``entity -> project label or None`` for conventions that depend on the entity (the
demo project does not label normal statements or axis degrees). :func:`label_map_for` builds the mapping for a
project from its label set and its optional ``settings["rule_label_map"]`` (a dict, applied first):

1. a rule label the project also has maps to itself;
2. else the first of :data:`FALLBACKS` the project has (``PR_INTERVAL`` -> ``INTERVAL``, ``CONDUCTION`` -> ``FINDING``,
   ``AXIS`` -> ``FINDING`` for deviations only, ...); normal statements ("normal ECG", "normal axis") are dropped
   when they would land in a ``FINDING``-like label of a project whose labels differ from the rule labels;
   an axis in degrees goes to ``VALUE`` / ``MEASUREMENT`` where the project has one (the Chinese demo);
3. else the entity keeps its rule label (``keep_unmapped=True``, what the review page shows) or is dropped
   (``keep_unmapped=False``, what pre-annotation stores, so Label Studio never sees an unknown label).

A project without labels keeps every rule label. The demo project (labels RHYTHM, HEART_RATE, INTERVAL, FINDING,
ANATOMY, NEGATION) gets :data:`DEMO_LABEL_MAP` through these rules, the Chinese demo (HR, VALUE, TIME, EVENT, DIAG)
:data:`ZH_DEMO_LABEL_MAP` (a diagnosis, ``DIAG``, keeps normal statements: "正常心电图" is a conclusion).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from core.types import Entity, ReportLensError

LabelMap = Mapping[str, str | None] | Callable[[Entity], str | None]

FALLBACKS: dict[str, tuple[str, ...]] = {
    "HEART_RATE": ("HR", "RATE", "MEASUREMENT", "VALUE"),
    "PR_INTERVAL": ("INTERVAL", "MEASUREMENT", "VALUE"),
    "QRS_DURATION": ("INTERVAL", "MEASUREMENT", "VALUE"),
    "QT_INTERVAL": ("INTERVAL", "MEASUREMENT", "VALUE"),
    "QTC_INTERVAL": ("INTERVAL", "MEASUREMENT", "VALUE"),
    "RR_INTERVAL": ("INTERVAL", "MEASUREMENT", "VALUE"),
    "AXIS": ("FINDING", "DIAG", "DIAGNOSIS"),
    "RHYTHM": ("FINDING", "DIAGNOSIS", "DIAG"),
    "CONDUCTION": ("FINDING", "DIAGNOSIS", "DIAG"),
    "FINDING": ("DIAGNOSIS", "ABNORMALITY", "DIAG"),
    "EVENT": ("FINDING", "DIAGNOSIS", "DIAG"),
    "COUNT": ("VALUE", "MEASUREMENT"),
    "AMPLITUDE": ("VALUE", "MEASUREMENT"),
    "TIME": ("DATETIME", "DURATION"),
    "NEGATION": ("NEGATION_CUE", "NEG", "NEGATED"),
    "UNCERTAINTY": ("UNCERTAINTY_CUE", "HEDGE", "UNCERTAIN"),
}
# the demo project's labels (core.demo.DEMO_LABELS), written out: core.demo is data generation, not a dependency
DEMO_LABEL_MAP: dict[str, str | None] = {
    "HEART_RATE": "HEART_RATE", "PR_INTERVAL": "INTERVAL", "QRS_DURATION": "INTERVAL", "QT_INTERVAL": "INTERVAL",
    "QTC_INTERVAL": "INTERVAL", "AXIS": "FINDING", "RHYTHM": "RHYTHM", "CONDUCTION": "FINDING", "FINDING": "FINDING",
    "NEGATION": "NEGATION", "UNCERTAINTY": None, "RR_INTERVAL": "INTERVAL", "EVENT": "FINDING",
}
# the Chinese demo project's labels (core.demo_zh.ZH_DEMO_LABELS: HR, VALUE, TIME, EVENT, DIAG), written out
ZH_DEMO_LABEL_MAP: dict[str, str | None] = {
    "HEART_RATE": "HR", "PR_INTERVAL": "VALUE", "QRS_DURATION": "VALUE", "QT_INTERVAL": "VALUE",
    "QTC_INTERVAL": "VALUE", "RR_INTERVAL": "VALUE", "COUNT": "VALUE", "AMPLITUDE": "VALUE", "TIME": "TIME",
    "EVENT": "EVENT",
    "AXIS": "DIAG", "RHYTHM": "DIAG", "CONDUCTION": "DIAG", "FINDING": "DIAG", "NEGATION": None, "UNCERTAINTY": None,
}
_RULE_LABELS = tuple(FALLBACKS)
_CUES = ("NEGATION", "UNCERTAINTY")
_FINDING_LIKE = ("FINDING", "DIAGNOSIS", "ABNORMALITY")
_VALUE_LIKE_ORDER = ("VALUE", "MEASUREMENT")
_VALUE_LIKE = set(_VALUE_LIKE_ORDER)


def _target(mapping: LabelMap, entity: Entity) -> str | None:
    if callable(mapping):
        return mapping(entity)
    return mapping.get(entity.label, entity.label)


def map_labels(entities: Iterable[Entity], mapping: LabelMap | None) -> list[Entity]:
    """Entities relabelled by ``mapping`` (``None``: unchanged); dropped where it says ``None``. A relabelled entity
    keeps its rule label in ``attrs["rule_label"]``."""
    out = []
    for e in entities:
        if mapping is None:
            out.append(e)
            continue
        target = _target(mapping, e)
        if target is None:
            continue
        if not isinstance(target, str) or not target:
            raise ReportLensError(f"The rule label map sends {e.label!r} to {target!r}; map each label to a label "
                                  "name (a non-empty string) or to null to drop it.")
        out.append(e if target == e.label else replace(e, label=target, attrs={**e.attrs, "rule_label": e.label}))
    return out


def _check_overrides(overrides: Any) -> dict[str, str | None]:
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in overrides.items()):
        raise ReportLensError("The project setting 'rule_label_map' must be a JSON object of rule label -> project "
                              f"label (or null to drop); got {overrides!r}. Rule labels: {', '.join(_RULE_LABELS)}.")
    return dict(overrides)


def label_map_for(project_labels: Sequence[str] | Iterable[str], overrides: Mapping[str, str | None] | None = None,
                  keep_unmapped: bool = True) -> Callable[[Entity], str | None]:
    """The mapping for a project with these labels (see the module docstring for the rules)."""
    labels = set(project_labels)
    explicit = _check_overrides(overrides)
    rule_space = bool(labels & {"AXIS", "CONDUCTION"})  # a project labelled like the rules keeps normal statements

    def mapping(e: Entity) -> str | None:
        if e.label in explicit:
            return explicit[e.label]
        if not labels:
            return e.label
        target = e.label if e.label in labels else next((t for t in FALLBACKS.get(e.label, ()) if t in labels), None)
        if target is None:
            return e.label if keep_unmapped and e.label not in _CUES else None
        if not rule_space and e.label == "AXIS" and "value" in e.attrs and _VALUE_LIKE & labels:
            return next(t for t in _VALUE_LIKE_ORDER if t in labels)  # "电轴 +60°" is a measured value
        if not rule_space and target in _FINDING_LIKE and (
                e.attrs.get("normal") or (e.label == "AXIS" and "value" in e.attrs)):
            return None  # "normal ECG", "normal axis", "axis +60°" are not findings
        return target

    return mapping
