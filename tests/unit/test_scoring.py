"""training/scoring.py + db/scores.py + services/queue.py with a tiny trained BERT: a scoring run stores scores and
predictions, the queue reads them back ranked, cold start, cancel; the score job through a real worker process;
``cli.py score``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.active import REGISTRY, Diversity, Margin, Pool, ScoreConfig, select_batch
from core.types import ParsedTask, ReportLensError
from db import scores as score_db
from db.engine import make_engine
from db.importer import import_tasks
from db.model_versions import activate_model_version, list_model_versions, record_model_version
from jobs import queue as jobs
from tests.factories import N_UNLABELED, tiny_tasks, unlabeled_tasks
from tests.tiny import tiny_model_dir
from training.inference import clear_model_cache, load_model, prepare_documents, window_probabilities
from training.scoring import forward_pool, run_scoring

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(sqlite_url, trained, tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTLENS_DATA_DIR", str(tmp_path / "data"))
    engine = make_engine(sqlite_url)
    import_tasks(engine, "tiny", tiny_tasks() + unlabeled_tasks())
    version = record_model_version(engine, "tiny", None, trained)
    return engine, version


def test_forward_pool_matches_inference_and_merges_windows(trained):
    loaded = load_model(trained.model_dir)
    docs = [(t.task_id, t.text) for t in unlabeled_tasks()]
    prepared = prepare_documents(loaded.tokenizer, docs, loaded.config.align())
    assert len(prepared[-1].windows) > 1  # the long report is windowed, never truncated
    expected = window_probabilities(loaded.model, prepared, loaded.tokenizer.pad_token_id, batch_size=4)
    pool = forward_pool(loaded.model, prepared, loaded.tokenizer.pad_token_id, batch_size=4, mc_passes=3)
    for a, b, p in zip(expected, pool.probs, prepared, strict=True):
        assert a.shape == b.shape == (len(p.doc), len(loaded.schema.tags))
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert pool.embeddings.shape == (len(docs), 32) and np.all(np.isfinite(pool.embeddings))
    assert [s.shape for s in pool.passes] == [(3, *p.shape) for p in pool.probs]
    assert not np.allclose(pool.passes[0][0], pool.passes[0][1])  # dropout was on for the MC passes
    assert not loaded.model.training  # and the model is back in eval mode


def test_scoring_run_stores_scores_and_predictions_read_back_ranked(project):
    engine, version = project
    seen = []
    result = run_scoring(engine, "tiny", ScoreConfig(strategy="margin", batch_size=4), progress=seen.append)
    assert not result.cancelled and result.model_version == "v1" and result.primary == "margin"
    assert len(result.doc_ids) == N_UNLABELED and result.n_tokens[-1] > 60
    assert {"least_confidence", "least_confidence(per_token)", "margin", "margin(per_token)", "entropy(max)",
            "entropy(mean)", "mnlp", "random(seed=0)", "diversity(margin)"} <= set(result.scores)
    assert seen[-1]["phase"] == "done" and any(p.get("phase") == "score" for p in seen)

    rows, total, run = score_db.ranked_queue(engine, 1, "margin", limit=None)
    assert total == N_UNLABELED and run.model_version == "v1" and run.n_documents == N_UNLABELED
    assert [r.rank for r in rows] == list(range(1, N_UNLABELED + 1))
    assert [r.document_id for r in rows] == [d for _, d, _ in result.ranked("margin")]
    assert all(a.score >= b.score for a, b in zip(rows, rows[1:], strict=False))
    assert {r.ls_task_id for r in rows} == set(range(100, 100 + N_UNLABELED))
    # the stored order is the core ranking (tie-break included) of the in-memory probabilities
    loaded = load_model(version.model_dir)
    probs = [p.probs for p in loaded.predict_detailed([(d, _text(engine, d)) for d in result.doc_ids])]
    core_order = [result.doc_ids[i] for i in select_batch(Margin(), Pool(probs), N_UNLABELED)]
    assert core_order == [r.document_id for r in rows]

    entities, conf = score_db.document_predictions(engine, rows[0].document_id)
    assert 0 < conf <= 1 and entities == rows[0].entities
    assert all(e.source == "model" and 0 <= e.score <= 1 for r in rows for e in r.entities)
    labelled = [r for r in rows if any(e.label == "HR" for e in r.entities)]
    hr, n_hr, _ = score_db.ranked_queue(engine, 1, "margin", label="HR", limit=None)
    assert [r.document_id for r in hr] == [r.document_id for r in labelled] and n_hr == len(labelled)

    batch = score_db.create_batch(engine, 1, [r.document_id for r in rows[:3]], "margin", version.id, "ann")
    assert score_db.list_batches(engine, 1) == [batch] and batch.status == "created"
    rest, n_rest, _ = score_db.ranked_queue(engine, 1, "margin")
    assert n_rest == N_UNLABELED - 3 and rest[0].document_id == rows[3].document_id and rest[0].rank == 1
    with pytest.raises(ReportLensError, match="not in project"):
        score_db.create_batch(engine, 1, [999_999], "margin", version.id)

    again = run_scoring(engine, "tiny", ScoreConfig(strategy="bald", mc_passes=3, per_token=True, batch_size=4))
    assert again.primary == "bald(passes=3, per_token)"
    _, total_again, run2 = score_db.ranked_queue(engine, 1, again.primary, exclude_batched=False)
    assert total_again == N_UNLABELED and again.primary in run2.strategies  # replaced, not duplicated


def test_queue_holds_each_text_once_before_repeats_and_labelled_texts(sqlite_url, trained, tmp_path, monkeypatch):
    """Copies of a text (and texts already labelled) score like the original; the stored queue puts them behind
    every new text, so no batch from the top holds one report twice (core.active.duplicates)."""
    monkeypatch.setenv("REPORTLENS_DATA_DIR", str(tmp_path / "data"))
    engine = make_engine(sqlite_url)
    labelled = tiny_tasks()
    pool = unlabeled_tasks()
    copies = [ParsedTask(text=pool[0].text.upper(), task_id=200), ParsedTask(text=pool[0].text + "  ", task_id=201),
              ParsedTask(text=pool[3].text, task_id=202), ParsedTask(text=labelled[0].text, task_id=203)]
    import_tasks(engine, "tiny", labelled + pool + copies)
    record_model_version(engine, "tiny", None, trained)
    result = run_scoring(engine, "tiny", ScoreConfig(strategy="mnlp", batch_size=4))
    assert result.duplicates == {"documents": N_UNLABELED + 4, "distinct": N_UNLABELED + 1,
                                 "new_texts": N_UNLABELED, "ranked_last": 4, "already_labelled": 1}
    from services.queue import duplicate_note

    # the labelled reports are the diversity strategies' first centres: a copy of one sits on a centre (distance 0)
    copy_of_labelled = result.doc_ids.index(max(result.doc_ids))
    for name in ("diversity(margin)", "diversity(mnlp)"):
        assert result.scores[name][copy_of_labelled] == pytest.approx(0.0, abs=1e-6)
        assert np.sum(result.scores[name] > 1e-6) >= N_UNLABELED - 1  # new texts are off the centres
    note = duplicate_note(result.duplicates)
    assert f"4 of {N_UNLABELED + 4} reports" in note and "1 of them the text of a report already labelled" in note
    for strategy in ("mnlp", "margin", "random(seed=0)", "diversity(margin)"):
        rows, total, _ = score_db.ranked_queue(engine, 1, strategy, limit=None)
        assert total == N_UNLABELED + 4
        texts = [" ".join(_text(engine, r.document_id).lower().split()) for r in rows]
        assert len(set(texts[:N_UNLABELED])) == N_UNLABELED  # every new text once, first
        assert " ".join(labelled[0].text.lower().split()) not in texts[:N_UNLABELED]
        assert set(texts[N_UNLABELED:]) <= set(texts[:N_UNLABELED]) | {" ".join(labelled[0].text.lower().split())}


def _stored_order(engine, strategy: str) -> list[int]:
    rows, _, _ = score_db.ranked_queue(engine, 1, strategy, exclude_batched=False, limit=None)
    return [r.document_id for r in rows]


# every registered strategy, chosen as the queue's; per token as well where that is a stored variant of its own
CHOSEN = [(r.name, False) for r in REGISTRY.values()] + [
    (r.name, True) for r in REGISTRY.values() if "per_token" in r.options and not r.both_costs]


@pytest.mark.parametrize(("name", "per_token"), CHOSEN, ids=[f"{n}{'-per_token' if p else ''}" for n, p in CHOSEN])
def test_stored_queue_is_select_batch_for_every_registered_strategy(name, per_token, sqlite_url, trained, tmp_path,
                                                                    monkeypatch):
    """The Queue reads what the scoring run stored; for each strategy the run stores (the chosen one included), that
    is select_batch over the same pool, copies of a text and of a labelled text included."""
    monkeypatch.setenv("REPORTLENS_DATA_DIR", str(tmp_path / "data"))
    engine = make_engine(sqlite_url)
    labelled, pool = tiny_tasks(), unlabeled_tasks()
    copies = [ParsedTask(text=pool[1].text.upper(), task_id=200), ParsedTask(text=labelled[2].text, task_id=201)]
    import_tasks(engine, "tiny", labelled + pool + copies)
    record_model_version(engine, "tiny", None, trained)
    config = ScoreConfig(strategy=name, per_token=per_token, mc_passes=3, batch_size=4)
    result = run_scoring(engine, "tiny", config)
    n = len(result.doc_ids)
    assert n == N_UNLABELED + 2 and len(set(result.pool.keys)) == N_UNLABELED + 1 and result.pool.known
    assert (result.pool.passes is not None) == REGISTRY[name].needs_passes  # MC passes only when chosen needs them
    stored = config.strategies()
    assert result.primary == str(stored[0]) == str(config.primary())
    assert sorted(score_db.latest_run(engine, 1).strategies) == sorted(str(s) for s in stored)
    for strategy in stored:
        queue = _stored_order(engine, str(strategy))
        assert queue == [result.doc_ids[i] for i in select_batch(strategy, result.pool, n)], strategy
        assert queue[:3] == [result.doc_ids[i] for i in select_batch(strategy, result.pool, 3)], strategy
        texts = [" ".join(_text(engine, d).lower().split()) for d in queue]
        assert len(set(texts[:N_UNLABELED])) == N_UNLABELED, strategy  # each new text once, before the copies


def _text(engine, doc_id: int) -> str:
    from db.repository import get_document

    return get_document(engine, doc_id).text


def test_cold_start_ranks_by_diversity_and_cancel_stores_nothing(sqlite_url, tmp_path, monkeypatch):
    engine = make_engine(sqlite_url)
    import_tasks(engine, "cold", unlabeled_tasks())
    base = str(tiny_model_dir(tmp_path / "base"))
    with pytest.raises(ReportLensError, match="no unlabeled report"):
        import_tasks(engine, "done", tiny_tasks(4))
        run_scoring(engine, "done")
    stopped = run_scoring(engine, "cold", ScoreConfig(batch_size=2), should_stop=lambda: True)
    assert stopped.cancelled and score_db.latest_run(engine, 1) is None
    from db import models as m
    from db.engine import write_session
    from db.repository import get_project

    with write_session(engine) as s:  # the project's own base model setting is honoured at cold start
        s.get(m.Project, get_project(engine, "cold").id).settings = {"base_model": base}
    result = run_scoring(engine, "cold", ScoreConfig(strategy="margin"))
    assert result.cold_start and result.primary == "diversity" and set(result.scores) == {"diversity",
                                                                                          "random(seed=0)"}
    rows, total, run = score_db.ranked_queue(engine, 1, "diversity")
    assert total == N_UNLABELED and run.model_version_id is None and rows[0].entities == ()
    assert result.pool.probs is None and result.pool.passes is None  # no model: embeddings only
    for strategy in ScoreConfig(strategy="margin").strategies(cold_start=True):
        assert _stored_order(engine, str(strategy)) == [
            result.doc_ids[i] for i in select_batch(strategy, result.pool, N_UNLABELED)]
    assert _stored_order(engine, "diversity")[:4] == [result.doc_ids[i] for i in select_batch(Diversity(),
                                                                                              result.pool, 4)]
    with pytest.raises(ReportLensError, match="no 'margin' scores"):
        score_db.ranked_queue(engine, 1, "margin")
    with pytest.raises(ReportLensError, match="does not exist"):
        run_scoring(engine, "nope")


def test_score_config_validates():
    assert ScoreConfig.from_dict(ScoreConfig(strategy="bald", mc_passes=5).to_dict()).mc_passes == 5
    with pytest.raises(ReportLensError, match="Unknown strategy"):
        ScoreConfig(strategy="smart")
    with pytest.raises(ReportLensError, match="mc_passes"):
        ScoreConfig(mc_passes=1)
    with pytest.raises(ReportLensError, match="Unknown scoring config key"):
        ScoreConfig.from_dict({"strategy": "margin", "passes": 3})


def test_stopping_indicator_compares_versions(project, trained):
    from services.queue import stopping_indicator

    engine, v1 = project
    run_scoring(engine, "tiny", ScoreConfig(batch_size=4))
    advice, changes = stopping_indicator(engine, 1)
    assert changes == [] and not advice.consider_stopping
    record_model_version(engine, "tiny", None, trained)  # v2: the same weights, so nothing changes
    v2 = activate_model_version(engine, list_model_versions(engine, "tiny")[0].id)
    assert v2.name == "v2"
    run_scoring(engine, "tiny", ScoreConfig(batch_size=4))
    advice, changes = stopping_indicator(engine, 1)
    assert [(c.before, c.after, c.documents, c.change_rate) for c in changes] == [("v1", "v2", N_UNLABELED, 0.0)]
    assert len(advice.mean_uncertainty) == 2 and "0.0%" in advice.hint


# ---------------------------------------------------------------- processes: worker and CLI


def _env(url: str, data: Path) -> dict[str, str]:
    return {**os.environ, "REPORTLENS_DATABASE_URL": url, "REPORTLENS_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}


def test_score_job_runs_in_a_real_worker_process(project, sqlite_url, tmp_path):
    engine, version = project
    job = jobs.enqueue(engine, "tiny", "score", ScoreConfig(strategy="entropy_mean", batch_size=4).to_dict())
    proc = subprocess.run([sys.executable, "-m", "jobs.worker", "--once", "--heartbeat", "0.3", "--poll", "0.1"],
                          cwd=ROOT, env=_env(sqlite_url, tmp_path / "data"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = jobs.get_job(engine, job.id)
    assert (info.status, info.error) == ("succeeded", None), info.log
    assert info.result["documents"] == N_UNLABELED and info.result["strategy"] == "entropy(mean)"
    assert info.result["model_version"] == "v1" and info.progress.phase == "done"
    run = score_db.latest_run(engine, 1)
    assert run.job_id == job.id and run.model_version_id == version.id and "entropy(mean)" in run.strategies
    from services.queue import duplicate_note, run_duplicates

    assert run_duplicates(engine, run) == info.result["duplicates"] == {
        "documents": N_UNLABELED, "distinct": N_UNLABELED, "new_texts": N_UNLABELED, "ranked_last": 0,
        "already_labelled": 0}
    assert duplicate_note(run_duplicates(engine, run)) is None  # nothing to say when every text is new


def test_cli_score_out_and_errors(project, sqlite_url, tmp_path):
    engine, _ = project
    out = tmp_path / "ranked.jsonl"
    cli = [sys.executable, "cli.py", "score"]
    env = _env(sqlite_url, tmp_path / "data")
    done = subprocess.run([*cli, "--project", "tiny", "--strategy", "mnlp", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["rank"] for r in rows] == list(range(1, N_UNLABELED + 1))
    assert set(rows[0]) == {"rank", "task_id", "document_id", "score", "strategy"}
    assert {r["strategy"] for r in rows} == {"mnlp"} and {r["task_id"] for r in rows} == set(range(100, 112))
    assert all(a["score"] >= b["score"] for a, b in zip(rows, rows[1:], strict=False))
    table = subprocess.run([*cli, "--project", "tiny", "--top", "3"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert table.returncode == 0 and len(table.stdout.strip().splitlines()) == 4 and "margin" in table.stdout
    missing = subprocess.run([*cli, "--project", "nope"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    import_tasks(engine, "all-labeled", tiny_tasks(3))
    full = subprocess.run([*cli, "--project", "all-labeled"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert full.returncode == 1 and "no unlabeled report" in full.stderr
    clear_model_cache()
