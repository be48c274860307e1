"""Label Studio labeling configs: which data field holds the text, and which span / choice labels exist.

``parse_label_config`` reads the XML a project uses (Settings -> Labeling Interface -> Code); ``LabelTally``
infers the same facts from the results when no config is given.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from core.types import ReportLensError

DEFAULT_TEXT_FIELD = "text"


def _sorted_unique(values: Any, what: str) -> tuple[str, ...]:
    if isinstance(values, str) or not hasattr(values, "__iter__"):
        raise ReportLensError(f"LabelConfig.{what} must be a list of strings, got {values!r}.")
    items = tuple(values)
    bad = [v for v in items if not isinstance(v, str) or not v]
    if bad:
        raise ReportLensError(f"LabelConfig.{what} must hold non-empty strings; found {bad[:5]!r}.")
    return tuple(sorted(set(items)))


@dataclass(frozen=True)
class LabelConfig:
    """What ReportLens needs from a labeling config. Lists are stored sorted and deduplicated."""

    text_field: str = DEFAULT_TEXT_FIELD
    span_labels: tuple[str, ...] = ()
    choice_labels: tuple[str, ...] = ()
    span_from_names: tuple[str, ...] = ()
    choice_from_names: tuple[str, ...] = ()
    to_name: str | None = None
    inferred: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.text_field, str) or not self.text_field:
            raise ReportLensError(f"LabelConfig.text_field must be a non-empty string, got {self.text_field!r}.")
        for name in ("span_labels", "choice_labels", "span_from_names", "choice_from_names"):
            object.__setattr__(self, name, _sorted_unique(getattr(self, name), name))
        if self.to_name is not None and not isinstance(self.to_name, str):
            raise ReportLensError(f"LabelConfig.to_name must be a string or None, got {self.to_name!r}.")
        object.__setattr__(self, "inferred", bool(self.inferred))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelConfig:
        if not isinstance(d, dict):
            raise ReportLensError(f"A label config must be a JSON object, got {type(d).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ReportLensError(
                f"Unknown label config keys {unknown}; expected some of {sorted(known)}. Save the config again."
            )
        return cls(**d)

    def describe(self) -> str:
        """One line for logs and the UI."""
        return (
            f"text from data['{self.text_field}'], {len(self.span_labels)} span labels, "
            f"{len(self.choice_labels)} choice labels{' (inferred)' if self.inferred else ''}"
        )


# ---------------------------------------------------------------- XML parsing


def _tag(el: Element) -> str:
    return str(el.tag).lower() if isinstance(el.tag, str) else ""


def _attr(el: Element, name: str) -> str | None:
    """Attribute lookup ignoring case (Label Studio accepts ``toName`` and ``toname``)."""
    lname = name.lower()
    for key, value in el.attrib.items():
        if key.lower() == lname:
            return value
    return None


def _option_values(control: Element, option_tag: str) -> list[str]:
    """Values of ``<Label>``/``<Choice>`` options at any depth. An ``alias`` replaces the value in results."""
    out = []
    for opt in control.iter():
        if opt is control or _tag(opt) != option_tag:
            continue
        value = _attr(opt, "alias") or _attr(opt, "value")
        if value:
            out.append(value)
    return out


def _targets(control: Element) -> list[str]:
    return [t.strip() for t in (_attr(control, "toName") or "").split(",") if t.strip()]


def _load_xml(xml: str) -> Element:
    if not isinstance(xml, str) or not xml.strip():
        raise ReportLensError(
            "The labeling config is empty. Copy it from Label Studio (project Settings -> Labeling Interface -> Code)."
        )
    try:
        return safe_et.fromstring(xml.strip())
    except ParseError as exc:
        line, col = getattr(exc, "position", (None, None))
        raise ReportLensError(
            f"The labeling config is not valid XML ({exc}; line {line}, column {col}). Copy it again from Label "
            "Studio (project Settings -> Labeling Interface -> Code)."
        ) from exc
    except DefusedXmlException as exc:
        raise ReportLensError(
            f"The labeling config uses XML features that are refused for safety ({exc}); remove DTDs and entities."
        ) from exc


def _text_tags(root: Element) -> dict[str, Element]:
    texts = {}
    for el in root.iter():
        name = _attr(el, "name")
        if _tag(el) == "text" and name:
            texts[name] = el
    if not texts:
        raise ReportLensError(
            'The labeling config has no <Text name=... value="$field"> tag, so it does not label text. ReportLens '
            "imports text projects (named entities with <Labels>, document labels with <Choices>)."
        )
    return texts


def _pick_text(texts: dict[str, Element], label_tags: list[Element], choice_tags: list[Element]) -> str:
    for control in label_tags + choice_tags:
        for target in _targets(control):
            if target in texts:
                return target
    return next(iter(texts))


def _text_field(text_el: Element, to_name: str) -> str:
    value = (_attr(text_el, "value") or "").strip()
    if not value.startswith("$") or len(value) < 2:
        raise ReportLensError(
            f'The labeling config\'s <Text name="{to_name}"> has value={value!r}, not a data field like "$text"; '
            'ReportLens reads the report text from the task data, so set value="$<field>".'
        )
    return value[1:]


def parse_label_config(xml: str) -> LabelConfig:
    """Read a Label Studio labeling config (XML). Raises :class:`ReportLensError` with a fix when it cannot."""
    root = _load_xml(xml)
    texts = _text_tags(root)
    label_tags = [el for el in root.iter() if _tag(el) == "labels"]
    choice_tags = [
        el
        for el in root.iter()
        if _tag(el) in ("choices", "taxonomy") and (_attr(el, "perRegion") or "").lower() != "true"
    ]
    to_name = _pick_text(texts, label_tags, choice_tags)
    label_tags = [el for el in label_tags if to_name in _targets(el)]
    choice_tags = [el for el in choice_tags if to_name in _targets(el)]
    return LabelConfig(
        text_field=_text_field(texts[to_name], to_name),
        span_labels=[v for el in label_tags for v in _option_values(el, "label")],
        choice_labels=[v for el in choice_tags for v in _option_values(el, "choice")],
        span_from_names=[n for el in label_tags if (n := _attr(el, "name"))],
        choice_from_names=[n for el in choice_tags if (n := _attr(el, "name"))],
        to_name=to_name,
        inferred=False,
    )


# ---------------------------------------------------------------- inference from results


class LabelTally:
    """Counts the labels, control names and text field seen while parsing, to infer a :class:`LabelConfig`."""

    def __init__(self) -> None:
        self.span_labels: Counter[str] = Counter()
        self.choice_labels: Counter[str] = Counter()
        self.span_from_names: set[str] = set()
        self.choice_from_names: set[str] = set()
        self.to_names: Counter[str] = Counter()
        self.text_field = DEFAULT_TEXT_FIELD

    def add_span(self, label: str, from_name: Any = None, to_name: Any = None) -> None:
        self.span_labels[label] += 1
        if isinstance(from_name, str) and from_name:
            self.span_from_names.add(from_name)
        if isinstance(to_name, str) and to_name:
            self.to_names[to_name] += 1

    def add_choice(self, label: str, from_name: Any = None) -> None:
        self.choice_labels[label] += 1
        if isinstance(from_name, str) and from_name:
            self.choice_from_names.add(from_name)

    def config(self) -> LabelConfig:
        to_name = self.to_names.most_common(1)[0][0] if self.to_names else None
        return LabelConfig(
            text_field=self.text_field,
            span_labels=list(self.span_labels),
            choice_labels=list(self.choice_labels),
            span_from_names=list(self.span_from_names),
            choice_from_names=list(self.choice_from_names),
            to_name=to_name,
            inferred=True,
        )


def short_list(values: Any, limit: int = 12) -> str:
    """``A, B, C`` for messages, cut after ``limit`` items."""
    items = [str(v) for v in values]
    if not items:
        return "none"
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", … ({len(items) - limit} more)"
