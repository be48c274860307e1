"""The stopping indicator: do more labels still change the model? (stabilising predictions, Bloodgood &
Vijay-Shanker 2009). Pure functions over predicted entity sets and mean uncertainties per model version; the Queue
page reads them through ``services.queue.stopping_indicator``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.types import ReportLensError

__all__ = ["StoppingAdvice", "entity_change_rate", "fixed_sample", "stopping_advice", "uncertainty_trend"]

EntitySet = set[tuple[int, int, str]]


def entity_change_rate(before: Sequence[EntitySet], after: Sequence[EntitySet]) -> float:
    """Share of predicted entities that changed between two model versions on the same documents:
    ``sum |A xor B| / sum |A or B|`` (an entity that moved, changed label, appeared or vanished counts; 0.0 when
    neither version predicted anything)."""
    if len(before) != len(after):
        raise ReportLensError(f"Change rate needs the same documents: {len(before)} vs {len(after)}.")
    changed = union = 0
    for a, b in zip(before, after, strict=True):
        changed += len(set(a) ^ set(b))
        union += len(set(a) | set(b))
    return changed / union if union else 0.0


def fixed_sample(doc_ids: Sequence[int], size: int = 500) -> list[int]:
    """A sample that does not move between rounds: the ``size`` ids with the smallest hash (a document stays in it
    for as long as it is in the pool)."""
    key = {d: hashlib.sha256(f"reportlens-sample:{d}".encode()).hexdigest() for d in doc_ids}
    return sorted(sorted(key, key=key.__getitem__)[:size])


def uncertainty_trend(means: Sequence[float]) -> float | None:
    """Least-squares slope of the mean uncertainty per round (negative: the model grows surer); ``None`` < 2 rounds."""
    y = np.asarray([m for m in means if m is not None and np.isfinite(m)], dtype=np.float64)
    if len(y) < 2:
        return None
    x = np.arange(len(y), dtype=np.float64)
    return float(np.polyfit(x, y, 1)[0])


@dataclass(frozen=True)
class StoppingAdvice:
    """What the stopping indicator says: ``consider_stopping`` and a plain-language ``hint``."""

    change_rates: tuple[float, ...]  # between consecutive versions, oldest pair first
    mean_uncertainty: tuple[float, ...]  # per version, oldest first
    trend: float | None
    consider_stopping: bool
    hint: str


def _pct(x: float) -> str:
    return f"{x:.1%}" if x < 0.1 else f"{x:.0%}"


def stopping_advice(change_rates: Sequence[float], mean_uncertainty: Sequence[float] = (), threshold: float = 0.01,
                    rounds: int = 3) -> StoppingAdvice:
    """Stabilising predictions (Bloodgood & Vijay-Shanker 2009): when the last ``rounds`` model versions changed
    under ``threshold`` of the predicted entities on a fixed unlabeled sample, more labels are unlikely to change
    the model much."""
    rates = tuple(float(r) for r in change_rates)
    unc = tuple(float(u) for u in mean_uncertainty)
    trend = uncertainty_trend(unc)
    trend_txt = ""
    if trend is not None:
        direction = "falling" if trend < 0 else "rising" if trend > 0 else "flat"
        trend_txt = f" Mean token uncertainty is {direction} ({unc[0]:.3f} → {unc[-1]:.3f} over {len(unc)} versions)."
    if not rates:
        hint = ("Not enough model versions yet: the indicator compares each version's predictions on a fixed sample "
                "of unlabeled reports with the previous one's. Score the pool after each training round.")
        return StoppingAdvice(rates, unc, trend, False, hint + trend_txt)
    last = rates[-rounds:]
    stable = len(last) >= rounds and max(last) < threshold
    if stable:
        hint = (f"The last {len(last)} rounds changed under {_pct(threshold)} of predicted entities "
                f"(latest {_pct(last[-1])}): the model has stabilised; more labels of this kind may add little. "
                "Check the test F1 before stopping.")
    else:
        seen = ", ".join(_pct(r) for r in last)
        hint = (f"The latest round changed {_pct(rates[-1])} of predicted entities (last rounds: {seen}); keep "
                f"labelling until {rounds} rounds in a row change under {_pct(threshold)}.")
    return StoppingAdvice(rates, unc, trend, stable, hint + trend_txt)
