"""Test data shared by several test modules: tiny labelled reports, training configs for the tiny BERT, the importer's
sample tasks and seeded projects for the page tests. Test modules import from here (or get fixtures from a
conftest.py), never from one another; tests/unit/test_layers.py checks that."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from core.trainconfig import TrainConfig
from core.types import Annotation, Entity, ParsedTask, Span

# ---------------------------------------------------------------- entity (NER) reports: tiny vocabulary

RHYTHMS = ["sinus rhythm", "atrial fibrillation", "sinus bradycardia", "sinus tachycardia"]
FINDINGS = ["pleural effusion", "nodule", "st elevation", "left axis deviation"]


def report(rng: random.Random) -> tuple[str, list[Span]]:
    """A tiny-vocabulary report with its RHYTHM / HR / FINDING spans."""
    text, spans = "", []

    def add(piece: str, label: str | None = None) -> None:
        nonlocal text
        if text:
            text += " "
        if label:
            spans.append(Span(len(text), len(text) + len(piece), label))
        text += piece

    add(rng.choice(RHYTHMS), "RHYTHM")
    add(", heart rate")
    add(f"{rng.randint(40, 150)} bpm", "HR")
    add(".")
    if rng.random() < 0.7:
        add("there is a")
        add(rng.choice(FINDINGS), "FINDING")
        add(".")
    else:
        add("no")
        add(rng.choice(FINDINGS), "FINDING")
        add(".")
    return text, spans


def tiny_tasks(n: int = 24, seed: int = 0, labeled: bool = True) -> list[ParsedTask]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text, spans = report(rng)
        anns = (Annotation(source="human", spans=tuple(spans), external_id=str(i + 1)),) if labeled else ()
        out.append(ParsedTask(text=text, task_id=i + 1, annotations=anns))
    return out


N_UNLABELED = 12


def unlabeled_tasks(n: int = N_UNLABELED, seed: int = 50) -> list[ParsedTask]:
    """``n`` unlabelled reports (task ids 100...), the last one long enough for several 32-token windows."""
    rng = random.Random(seed)
    out = [ParsedTask(text=report(rng)[0], task_id=100 + i) for i in range(n - 1)]
    long_text = " ".join(report(rng)[0] for _ in range(6))  # ~120 tokens: several 32-token windows
    return [*out, ParsedTask(text=long_text, task_id=100 + n - 1)]


def cfg(base_dir: str, **kw) -> TrainConfig:
    """A few-step NER training config for the tiny BERT at ``base_dir``."""
    defaults = {"base_model": base_dir, "max_steps": 5, "batch_size": 4, "max_length": 32, "stride": 8,
                "learning_rate": 5e-3, "seed": 1}
    return TrainConfig(**(defaults | kw))


# ---------------------------------------------------------------- document classification (Choices)

RHYTHM_CLASSES = {"sinus rhythm": "NORMAL", "atrial fibrillation": "AFIB", "sinus tachycardia": "TACHY"}


def class_tasks(n: int, seed: int = 0, multi: bool = False) -> list[ParsedTask]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rhythm = rng.choice(list(RHYTHM_CLASSES))
        effusion = rng.random() < 0.5
        text = f"{rhythm} , heart rate {rng.randint(50, 140)} bpm . " + (
            "there is a pleural effusion ." if effusion else "no nodule .")
        choices = [RHYTHM_CLASSES[rhythm]] + (["EFFUSION"] if multi and effusion else [])
        out.append(ParsedTask(text=text, task_id=i + 1,
                              annotations=(Annotation(source="human", choices=tuple(choices), external_id=str(i)),)))
    return out


def class_cfg(base_dir: str, **kw) -> TrainConfig:
    """A few-step document-classification training config for the tiny BERT at ``base_dir``."""
    defaults = {"base_model": base_dir, "task": "classification", "max_steps": 6, "batch_size": 4, "max_length": 32,
                "stride": 8, "learning_rate": 5e-3, "seed": 1}
    return TrainConfig(**(defaults | kw))


# ---------------------------------------------------------------- importer sample tasks (db/)

TEXT1 = "Sinus rhythm. Left ventricular hypertrophy. No acute ST changes."
TEXT2 = "CT chest: 8 mm nodule in the right upper lobe. No pleural effusion."
TEXT3 = "Atrial fibrillation with rapid ventricular response."


def human(ext: str | None, *spans: tuple[int, int, str], **kw: Any) -> Annotation:
    return Annotation(source="human", spans=tuple(Span(*s) for s in spans), external_id=ext, **kw)


def pred(ext: str | None, *spans: tuple[int, int, str], version: str = "v1", score: float = 0.9) -> Annotation:
    return Annotation(source="model", spans=tuple(Span(*s) for s in spans), external_id=ext, model_version=version,
                      score=score, span_scores=tuple(0.5 + i / 10 for i in range(len(spans))))


def task(tid: int | None, text_: str, *anns: Annotation, **meta: Any) -> ParsedTask:
    return ParsedTask(text=text_, task_id=tid, meta=meta, annotations=anns)


def basic_tasks() -> list[ParsedTask]:
    return [
        task(1, TEXT1, human("10", (0, 13, "RHYTHM"), (14, 42, "FINDING")), source_file="a"),
        task(2, TEXT2, human("20", (10, 14, "SIZE"), (15, 21, "FINDING")), pred("p1", (15, 21, "FINDING"))),
        task(3, TEXT3, pred("p2", (0, 19, "RHYTHM"))),
    ]


# ---------------------------------------------------------------- seeded projects for the page tests (ui/, browser/)


def seed_with_version(url: str, tmp: Path) -> None:
    """The demo project (30 synthetic reports) and a tiny BERT version trained on it for a few steps."""
    from db.engine import make_engine
    from db.model_versions import record_model_version
    from services.imports import seed_demo
    from tests.tiny import tiny_model_dir
    from training.trainer import run_training

    engine = make_engine(url)
    seed_demo(engine, n=30)
    result = run_training(engine, 1, cfg(str(tiny_model_dir(tmp / "tiny-bert")), max_steps=3, max_length=32,
                                         stride=8), tmp / "model")
    record_model_version(engine, 1, None, result)


REVIEW_PROJECT = "ECG review"
REVIEW_TEXTS = ["sinus bradycardia, heart rate 45 bpm. there is a pleural effusion.",
                "atrial fibrillation, heart rate 120 bpm. no nodule.",
                "normal ecg."]


def _at(text: str, piece: str, label: str, score: float) -> Entity:
    start = text.index(piece)
    return Entity(start, start + len(piece), label, score, "model")


REVIEW_PREDICTED = [
    [_at(REVIEW_TEXTS[0], "sinus bradycardia", "RHYTHM", 0.93), _at(REVIEW_TEXTS[0], "45 bpm", "HR", 0.41),
     _at(REVIEW_TEXTS[0], "pleural effusion", "RHYTHM", 0.58)],
    [_at(REVIEW_TEXTS[1], "atrial fibrillation", "RHYTHM", 0.9)],
    [],
]


def seed_review_project(db_url: str, work: Path) -> dict:
    """Three reports (the second labeled by annotator "anna"), a tiny model trained on labeled copies, recorded as
    a version, and its predictions stored (fixed, so the page shows the same entities every run)."""
    from sqlalchemy import select

    from db import models as m
    from db.engine import make_engine, read_session
    from db.importer import import_tasks
    from db.model_versions import record_model_version
    from db.scores import save_predictions
    from tests.tiny import tiny_model_dir
    from training import trainer as trainer_mod

    texts = REVIEW_TEXTS
    engine = make_engine(db_url)
    annotated = Annotation(source="human", spans=(Span(0, 19, "RHYTHM"), Span(texts[1].index("nodule"),
                                                                              texts[1].index("nodule") + 6,
                                                                              "FINDING")),
                           author="anna", external_id="a2", updated_at="2024-05-01T10:00:00.000000Z")
    train = [ParsedTask(text=t, task_id=100 + i, annotations=(Annotation(source="human", spans=(
        Span(0, t.index(","), "RHYTHM"), Span(t.index("heart"), t.index("heart") + 10, "HR"))),))
        for i, t in enumerate(texts[:2] * 4)]
    tasks = [ParsedTask(text=texts[0], task_id=1), ParsedTask(text=texts[1], task_id=2, annotations=(annotated,)),
             ParsedTask(text=texts[2], task_id=3), *train]
    import_tasks(engine, REVIEW_PROJECT, tasks)
    base = tiny_model_dir(work / "tiny-base")
    config = TrainConfig(base_model=str(base), max_steps=2, batch_size=4, max_length=32, stride=8, seed=1)
    with read_session(engine) as s:
        pid = s.scalar(select(m.Project.id).where(m.Project.name == REVIEW_PROJECT))
        ids = {t: d for t, d in s.execute(select(m.Document.ls_task_id, m.Document.id)).all()}
    result = trainer_mod.run_training(engine, pid, config, work / "model")
    version = record_model_version(engine, pid, None, result)
    save_predictions(engine, version.id, {ids[tid]: (ents, min([e.score for e in ents], default=0.99))
                                          for tid, ents in zip((1, 2, 3), REVIEW_PREDICTED, strict=True)},
                     replace=True)
    return {"engine": engine, "project_id": pid, "ids": ids, "version": version}


# ---------------------------------------------------------------- rows written by an older schema (migration tests)


def old_schema_rows(engine: Any, project: str = "ecg") -> None:
    """A project with the three documents of :func:`basic_tasks` (ids 1-3, human annotations with spans), written
    with plain SQL in the columns every revision since 0001 has, so migration tests can seed an old schema without
    the current importer (which writes the current columns)."""
    import hashlib
    import json

    from sqlalchemy import text

    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        pid = conn.execute(text("INSERT INTO projects (name, settings, created_at) VALUES (:n, '{}', :t) "
                                "RETURNING id"), {"n": project, "t": now}).scalar_one()
        for t in basic_tasks():
            h = hashlib.sha256(t.text.encode("utf-8")).hexdigest()
            doc = conn.execute(text(
                "INSERT INTO documents (project_id, ls_task_id, text_hash, text, meta, source, created_at, "
                "updated_at) VALUES (:pid, :tid, :h, :x, :meta, 'labelstudio', :t, :t) RETURNING id"),
                {"pid": pid, "tid": t.task_id, "h": h, "x": t.text, "meta": json.dumps(t.meta), "t": now}).scalar_one()
            for pos, a in enumerate(t.annotations):
                ann = conn.execute(text(
                    "INSERT INTO annotations (document_id, source, external_id, ground_truth, cancelled, choices, "
                    "position, stored_at) VALUES (:d, :s, :e, :gt, :c, '[]', :p, :t) RETURNING id"),
                    {"d": doc, "s": a.source, "e": a.external_id, "gt": a.ground_truth, "c": a.cancelled,
                     "p": pos, "t": now}).scalar_one()
                for sp in a.spans:
                    conn.execute(text('INSERT INTO spans (annotation_id, start, "end", label) '
                                      "VALUES (:a, :s, :e, :l)"), {"a": ann, "s": sp.start, "e": sp.end,
                                                                  "l": sp.label})


def train_tiny(tmp: Path, tasks: list[ParsedTask], project: str = "tiny", **config: Any) -> tuple[Any, str, Any]:
    """A fresh migrated SQLite database in ``tmp`` holding ``tasks``, and a tiny random BERT fine-tuned on them with
    ``cfg(..., **config)``: ``(engine, url, training result)``; the caller disposes the engine (``dispose_engine``)."""
    from db.engine import make_engine
    from db.importer import import_tasks
    from db.migrate import upgrade
    from tests.tiny import tiny_model_dir
    from training.trainer import fit

    url = f"sqlite:///{tmp / 'train.db'}"
    upgrade(url)
    engine = make_engine(url)
    import_tasks(engine, project, tasks)
    return engine, url, fit(engine, 1, cfg(str(tiny_model_dir(tmp / "base")), **config), tmp / "model")
