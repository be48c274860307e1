"""The machine-written statement blocks that ECG carts print, English and Chinese, beyond what the interval and
heart-rate rules of :mod:`core.rules.ecg` read (``key=value`` / ``key: value``, ``QT/QTc 380/410 ms`` and values in
s or ms are read there):

- **P-R-T axes**: ``P-R-T axes 60 45 30``, ``P/QRS/T axis: 60/45/30°``, ``P-R-T 轴 60 45 30``, ``P/QRS/T 电轴
  60/-15/30 度``: one ``AXIS`` entity per value (the value alone; the last with its unit), attrs ``measure="axis"``,
  ``wave`` (P, QRS, T), ``value`` in degrees, ``unit="deg"``. The block's key suppresses the single-axis rule there
  (``电轴 60`` would otherwise read as the QRS axis).
- **QTc formulas**: ``QTc(Bazett)``, ``QTc (Fridericia) = 405 ms``, ``QTcB``, ``QTcF``, ``QTc（巴氏）``: the interval
  rule's ``formula`` attr (:func:`formula_name`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from core.types import Entity

FORMULAS = {"bazett": "Bazett", "b": "Bazett", "巴泽特": "Bazett", "巴氏": "Bazett", "fridericia": "Fridericia",
            "f": "Fridericia", "弗里德里西亚": "Fridericia", "framingham": "Framingham", "hodges": "Hodges",
            "h": "Hodges"}
# the words after a QTc name that name its formula ("QTc(Bazett)", "QTc Bazett", "QTcB"); used inside _IV
FORMULA_GROUP = (r"(?:\s*[(（]\s*(?P<formula>Bazett|Fridericia|Framingham|Hodges|巴泽特|巴氏|弗里德里西亚)\s*[)）]"
                 r"|\s+(?P<formula2>Bazett|Fridericia|Framingham|Hodges)(?![A-Za-z]))?")

_LATIN = "A-Za-zÀ-ÖØ-öø-ÿ"
_SIGNED = r"[+\-−]?\d{1,3}"
_PRT = re.compile(
    rf"(?<![{_LATIN}])(?:(?:axes|axis|电轴|心电轴)\s*[:：]?\s*)?(?P<key>P\s*[-/]\s*(?:R|QRS)\s*[-/]\s*T)"
    rf"(?:\s*(?:axes|axis|心电轴|电轴|轴))?(?![{_LATIN}])(?:\s*(?:[:：=]|\(deg\)|（度）))?\s*"
    rf"(?P<v1>{_SIGNED})(?:\s*/\s*|\s+)(?P<v2>{_SIGNED})(?:\s*/\s*|\s+)(?P<v3>{_SIGNED})(?![\d.,])"
    rf"(?:\s*(?P<unit>°|º|degrees?(?![{_LATIN}])|deg(?![{_LATIN}])|度))?", re.I)


def formula_name(name: str, m: re.Match[str] | None = None) -> str | None:
    """The QTc formula a name or its parenthesis says ("QTcB" -> Bazett, "(Fridericia)" -> Fridericia)."""
    if m is not None:
        said = m.group("formula") or m.group("formula2")
        if said:
            return FORMULAS.get(said.lower(), FORMULAS.get(said))
    tail = re.sub(r"(?i)^q-?tc", "", name.strip())
    return FORMULAS.get(tail.lower()) if tail else None


def prt_axes(text: str) -> Iterator[tuple[tuple[int, int], list[Entity]]]:
    """Each P-R-T axes block: its span and its three ``AXIS`` entities."""
    for m in _PRT.finditer(text):
        out = []
        for k, (group, wave) in enumerate((("v1", "P"), ("v2", "QRS"), ("v3", "T"))):
            value = int(m.group(group).replace("−", "-"))
            end = m.end() if k == 2 else m.end(group)
            attrs: dict[str, object] = {"rule": "prt_axes", "measure": "axis", "wave": wave, "value": value,
                                        "unit": "deg"}
            score = 0.95
            if not -180 <= value <= 360:
                attrs["implausible"] = True
                score /= 2
            out.append(Entity(m.start(group), end, "AXIS", score, "rule", attrs))
        yield (m.start(), m.end()), out
