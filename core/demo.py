"""The demo project: seeded synthetic reports (:mod:`core.demo_reports`: English ECG, chest X-ray and chest CT
reports) as a Label Studio FULL JSON export, with span labels RHYTHM, HEART_RATE, INTERVAL, FINDING, ANATOMY and
NEGATION, its label config, and the configs of the first training and scoring jobs that ``make run`` queues.

The data are clean on purpose (no offset errors, no overlaps, no cancelled work): the demo shows the loop, the
importer's error paths are tested on real fixtures. About 40% of tasks carry no annotation, so active learning has an
unlabeled pool. The labeling conventions are in :mod:`core.demo_reports`.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.demo_reports import Report, chest_report, ecg_report

if TYPE_CHECKING:
    from core.active.config import ScoreConfig
    from core.trainconfig import TrainConfig

def label_config(labels: tuple[str, ...], colors: tuple[str, ...]) -> str:
    """A Label Studio labeling config with one ``<Labels>`` block of ``labels`` over ``$text``."""
    return (
        '<View>\n  <Labels name="label" toName="text">\n'
        + "".join(f'    <Label value="{lab}" background="{col}"/>\n' for lab, col in zip(labels, colors, strict=True))
        + '  </Labels>\n  <Text name="text" value="$text"/>\n</View>\n'
    )


DEMO_PROJECT_NAME = "Demo: ECG & radiology"
DEMO_LABELS = ("RHYTHM", "HEART_RATE", "INTERVAL", "FINDING", "ANATOMY", "NEGATION")
_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#808080")
DEMO_LABEL_CONFIG = label_config(DEMO_LABELS, _COLORS)
UNLABELED_FRACTION = 0.4
# The demo's first training job (queued by the seed on `make run`): a short run, so a laptop with 2 cores has a model
# within a few minutes (measured: 108 s for 60 steps on 2 loaded cores, test F1 0.97; the auto default would take
# 112 steps). The Overview says so; a full run is one click on the Train page.
DEMO_TRAIN_STEPS = 60


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _region_id(rng: random.Random) -> str:
    return "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", k=10))


def generate_demo_export(n: int = 300, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` synthetic tasks as a Label Studio FULL JSON export; the same ``seed`` gives the same export."""

    def english(rng: random.Random) -> tuple[Report, dict[str, Any]]:
        modality = rng.choices(["ECG", "CXR", "CT"], [5, 3, 2])[0]
        report = ecg_report(rng) if modality == "ECG" else chest_report(rng, ct=modality == "CT")
        return report, {"modality": modality}

    return export_tasks(english, n, seed)


def export_tasks(make: Callable[[random.Random], tuple[Report, dict[str, Any]]], n: int, seed: int,
                 unlabeled_fraction: float = UNLABELED_FRACTION) -> list[dict[str, Any]]:
    """``n`` tasks of the reports ``make(rng)`` returns (a :class:`Report` and the task's extra ``data`` fields),
    as a Label Studio FULL JSON export, about ``unlabeled_fraction`` of them without annotation. Deterministic in
    ``seed``; shared by the English demo and :mod:`core.demo_zh`."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    rng = random.Random(seed)
    base = datetime(2024, 1, 1, 8, 0, 0) + timedelta(days=seed % 365)
    labeled = set(rng.sample(range(n), n - round(n * unlabeled_fraction)))
    tasks: list[dict[str, Any]] = []
    annotation_id = 0
    for i in range(n):
        report, data = make(rng)
        created = base + timedelta(minutes=i)
        annotations = []
        if i in labeled:
            annotation_id += 1
            done = base + timedelta(days=1, minutes=7 * i, seconds=rng.randint(0, 59))
            updated = done + timedelta(minutes=rng.choice([0, 0, 0, 5, 30]))
            result = [
                {
                    "id": _region_id(rng),
                    "from_name": "label",
                    "to_name": "text",
                    "type": "labels",
                    "origin": "manual",
                    "value": {"start": start, "end": end, "text": piece, "labels": [label]},
                }
                for start, end, label, piece in report.spans
            ]
            annotations.append(
                {
                    "id": annotation_id,
                    "result": result,
                    "completed_by": 1,
                    "created_at": _stamp(done),
                    "updated_at": _stamp(updated),
                    "was_cancelled": False,
                    "ground_truth": False,
                    "lead_time": round(rng.uniform(20, 240), 3),
                    "task": i + 1,
                }
            )
        tasks.append(
            {
                "id": i + 1,
                "data": {"text": report.text, **data},
                "annotations": annotations,
                "predictions": [],
                "meta": {},
                "created_at": _stamp(created),
                "updated_at": annotations[0]["updated_at"] if annotations else _stamp(created),
                "inner_id": i + 1,
                "total_annotations": len(annotations),
                "cancelled_annotations": 0,
                "total_predictions": 0,
                "project": 1,
            }
        )
    return tasks


def demo_train_config() -> TrainConfig:
    """The config of the demo's first training job: the defaults, capped at :data:`DEMO_TRAIN_STEPS` steps."""
    from core.trainconfig import TrainConfig

    return TrainConfig(max_steps=DEMO_TRAIN_STEPS)


def demo_score_config() -> ScoreConfig:
    """The scoring run queued after the demo's first model: the defaults."""
    from core.active.config import ScoreConfig

    return ScoreConfig()


def write_demo_export(path: str | os.PathLike[str], n: int = 300, seed: int = 0) -> Path:
    """Write :func:`generate_demo_export` as UTF-8 JSON to ``path``; returns the path."""
    out = Path(path)
    out.write_text(json.dumps(generate_demo_export(n=n, seed=seed), ensure_ascii=False, indent=1), encoding="utf-8")
    return out
