"""The inputs of the Train page's estimate (:mod:`core.trainplan`): how many windows the project's labelled reports
make with the chosen tokenizer and window size, and the training speeds earlier runs recorded on this machine.

Cheap on purpose (the page renders it on every visit): the speeds are one query that reads only
``metrics["speed"]`` of the newest model versions; counting windows tokenises the labelled reports (a tokenizer,
never a model; the page caches the count per project, labelled count and tokenizer settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.auth import Permission
from core.trainconfig import TrainConfig
from core.trainplan import RecordedSpeed, TrainPlan, pick_speed, plan_run, recorded_speed
from db import models as m
from db.engine import read_session
from services.auth import requires

SPEED_VERSIONS = 30  # newest model versions (all projects) whose recorded speed is looked at


@dataclass(frozen=True)
class WindowCount:
    n_docs: int  # labelled reports
    n_windows: int  # windows they make in all
    note: str  # how they were counted, in words
    new_vocab_rows: int = 0  # embedding rows the base model's adaptations added (training.artifacts.added_vocab_rows)


@requires(Permission.TRAIN)
def recorded_speeds(engine: Any, limit: int = SPEED_VERSIONS) -> list[RecordedSpeed]:
    """The training speeds of the newest ``limit`` model versions of every project, newest first (windows per
    second: a figure of this machine, not of any report)."""
    v = m.ModelVersion
    with read_session(engine) as s:
        rows = s.execute(select(v.project_id, v.name, v.method, v.base_model, v.duration_s, v.metrics["speed"],
                                m.Project.name).join(m.Project, m.Project.id == v.project_id)
                         .order_by(v.id.desc()).limit(limit)).all()
    return [recorded_speed(pid, name, method, base, speed, duration, project)
            for pid, name, method, base, duration, speed, project in rows]


TOKENIZE_BATCH = 256


@requires(Permission.TRAIN)
def count_windows(engine: Any, project_id: int, base_model: str, max_length: int, stride: int) -> WindowCount:
    """The windows the project's labelled reports make with ``base_model``'s tokenizer (``max_length`` tokens a
    window, ``stride`` shared), as training cuts them (:func:`core.alignment.make_windows`). It reads the model
    folder's ``tokenizer.json`` with the ``tokenizers`` package (what the transformers fast tokenizer runs; the
    page imports neither transformers nor torch for it). Without one (a Hub id not in the cache, a folder without
    ``tokenizer.json``): one window per report, and the note says so. Also counts the vocabulary rows an adaptation
    of the base added (what ``train_new_vocab`` trains)."""
    from tokenizers import Tokenizer

    from core.alignment import make_windows
    from db.base_versions import resolve_base_name
    from db.repository import training_documents
    from training.artifacts import added_vocab_rows
    from training.encoding import resolve_model

    texts = [d.text for d in training_documents(engine, project_id)]
    try:
        folder = Path(resolve_model(resolve_base_name(engine, project_id, base_model)))
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:  # noqa: BLE001 - any failure to load it: count without it, and say so
        return WindowCount(len(texts), len(texts), f"one window per report assumed: the tokenizer of {base_model!r} "
                           f"could not be read here ({type(exc).__name__})")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    n = 0
    for b in range(0, len(texts), TOKENIZE_BATCH):
        for enc in tokenizer.encode_batch(texts[b:b + TOKENIZE_BATCH], add_special_tokens=False):
            n += len(make_windows(len(enc.ids), max_length, stride, enc.word_ids))
    return WindowCount(len(texts), n, f"{n:,} windows of {max_length} tokens in the {len(texts):,} labelled reports",
                       len(added_vocab_rows(folder)))


@requires(Permission.TRAIN)
def train_plan(engine: Any, project_id: int, config: TrainConfig, windows: WindowCount) -> TrainPlan:
    """What a run of ``config`` will do in the project: steps, and the time at the speed measured here."""
    speed = pick_speed(recorded_speeds(engine), project_id, config.method)
    return plan_run(config, windows.n_docs, windows.n_windows, speed, windows.note)
