"""The active-learning queue as the Queue page and ``cli.py score`` use it: start a scoring run (job or in-process),
read the ranked queue, save a batch, and the stopping indicator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.active import TREND_STRATEGY
from core.active.stopping import StoppingAdvice, entity_change_rate, fixed_sample, stopping_advice
from core.auth import Permission
from core.jobs import JobKind
from db import scores as score_db
from db.records import JobInfo
from db.repository import require_project
from services.auth import job_detail, open_to_all, requires

SAMPLE_SIZE = 500


@requires(Permission.QUEUE, action="score_queued", detail=job_detail)
def queue_scoring_job(engine: Any, project: int | str, config: Any) -> tuple[JobInfo, bool]:
    """Queue a ``score`` job (``config``: a ``training.scoring.ScoreConfig``) and make sure a worker runs it.
    Returns the job and whether a worker was started."""
    from services.jobs import queue_job

    return queue_job(engine, project, JobKind.SCORE, config.to_dict())


@requires(Permission.QUEUE, action="scored")
def score_in_process(engine: Any, project: str, config: Any) -> Any:
    """``cli.py score``: run and store the scoring here (no worker). Returns a ``training.scoring.ScoringResult``."""
    from training.scoring import run_scoring

    info = require_project(engine, project)
    return run_scoring(engine, info.id, config)


@requires(Permission.QUEUE)
def ranked_rows(engine: Any, result: Any, top: int | None = None) -> list[dict[str, Any]]:
    """``{"rank", "task_id", "document_id", "score", "strategy"}`` of a scoring result, rank 1 first."""
    ranked = result.ranked()
    if top is not None:
        ranked = ranked[:top]
    task_ids = _task_ids(engine, [d for _, d, _ in ranked])
    return [{"rank": r, "task_id": task_ids.get(d), "document_id": d, "score": round(s, 6),
             "strategy": result.primary} for r, d, s in ranked]


def _task_ids(engine: Any, doc_ids: list[int]) -> dict[int, int | None]:
    from sqlalchemy import select

    from db import models as m
    from db.engine import read_session

    out: dict[int, int | None] = {}
    with read_session(engine) as s:
        for b in range(0, len(doc_ids), 500):
            chunk = doc_ids[b : b + 500]
            out.update(dict(s.execute(select(m.Document.id, m.Document.ls_task_id)
                                      .where(m.Document.id.in_(chunk))).all()))
    return out


@requires(Permission.QUEUE)
def run_duplicates(engine: Any, run: score_db.ScoringRun | None) -> dict[str, int] | None:
    """What the duplicate handling did in a stored scoring run (``core.active.duplicates.duplicate_stats``, kept in
    its job's result); ``None`` for a run made outside a job (``cli.py score``) or before it was recorded."""
    from jobs.queue import get_job

    if run is None or run.job_id is None:
        return None
    job = get_job(engine, run.job_id)
    stats = (job.result or {}).get("duplicates") if job is not None else None
    return dict(stats) if isinstance(stats, dict) else None


@open_to_all
def duplicate_note(stats: dict[str, int] | None) -> str | None:
    """One sentence for the Queue page when some reports were ranked last as copies; ``None`` when none were."""
    if not stats or not stats.get("ranked_last"):
        return None
    labelled = stats.get("already_labelled", 0)
    also = f", {labelled} of them the text of a report already labelled" if labelled else ""
    return (f"{stats['ranked_last']} of {stats['documents']} reports repeat a text ranked higher{also}: they come "
            f"after the {stats['new_texts']} new texts, so a batch never holds the same text twice (their scores "
            "are their own, so the score column is not monotonic there).")


@requires(Permission.QUEUE, action="batch_created")
def save_batch(engine: Any, project_id: int, document_ids: list[int], strategy: str, model_version_id: int | None,
               created_by: str | None = None) -> score_db.BatchInfo:
    """A new batch; ``created_by`` defaults to the person acting (a signed-in person is always themselves)."""
    from services.people import acting_name

    return score_db.create_batch(engine, project_id, document_ids, strategy, model_version_id,
                                 acting_name(created_by) or None)


@dataclass(frozen=True)
class VersionChange:
    before: str
    after: str
    documents: int  # in the fixed sample both versions predicted
    change_rate: float


@requires(Permission.QUEUE)
def stopping_indicator(engine: Any, project_id: int, sample_size: int = SAMPLE_SIZE) -> tuple[StoppingAdvice,
                                                                                                 list[VersionChange]]:
    """Compare the predictions of consecutive model versions on a fixed sample of reports both predicted while
    unlabeled, and the mean token uncertainty per version."""
    versions = score_db.prediction_versions(engine, project_id)
    changes: list[VersionChange] = []
    previous = None
    for vid, name in versions:
        current = score_db.prediction_sets(engine, vid)
        if previous is not None:
            pname, pset = previous
            sample = fixed_sample(sorted(set(pset) & set(current)), sample_size)
            if sample:
                rate = entity_change_rate([pset[d] for d in sample], [current[d] for d in sample])
                changes.append(VersionChange(pname, name, len(sample), rate))
        previous = (name, current)
    means = [mean for _, mean in score_db.strategy_means(engine, project_id, TREND_STRATEGY)]
    return stopping_advice([c.change_rate for c in changes], means), changes


# ---------------------------------------------------------------- what the Queue page reads


@requires(Permission.QUEUE)
def active_version(engine: Any, project_id: int) -> Any:
    """The project's active model version (``None`` before the first training: scoring is then a cold start)."""
    from db.model_versions import active_model_version

    return active_model_version(engine, project_id)


@requires(Permission.QUEUE)
def latest_run(engine: Any, project_id: int) -> score_db.ScoringRun | None:
    return score_db.latest_run(engine, project_id)


@requires(Permission.QUEUE)
def ranked_queue(engine: Any, project_id: int, strategy: str, *, label: str | None = None,
                 limit: int = 25) -> tuple[list[Any], int, Any]:
    """The stored ranking by ``strategy``: its top ``limit`` unlabeled, unbatched reports (filtered by a predicted
    ``label``), how many there are, and the run."""
    return score_db.ranked_queue(engine, project_id, strategy, label=label, limit=limit)


@requires(Permission.QUEUE)
def saved_batches(engine: Any, project_id: int) -> list[score_db.BatchInfo]:
    return score_db.list_batches(engine, project_id)


@requires(Permission.QUEUE)
def document_texts(engine: Any, doc_ids: list[int]) -> dict[int, str]:
    """The texts of the given documents, in one query."""
    from db.repository import document_texts as texts

    return texts(engine, doc_ids)
