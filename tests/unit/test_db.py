"""db/: migrations, the importer's rules, the repository, on SQLite and (marked ``postgres``) PostgreSQL."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from core.errors import IssueCode
from core.policy import select_training_annotation
from core.types import Annotation, Issue, ParsedTask, ReportLensError, Span
from db import models as m
from db.engine import make_engine, read_session, write_session
from db.importer import StrictImportError, import_tasks
from db.migrate import current_revision, upgrade
from db.repository import (
    ensure_project,
    get_document,
    get_project,
    import_history,
    label_counts,
    list_documents,
    list_projects,
    project_label_config,
    project_texts,
    training_documents,
    unlabeled_documents,
)
from db.summary import merge_label_configs
from db.training_view import chosen_annotations
from tests.factories import TEXT1, TEXT2, TEXT3, basic_tasks, human, old_schema_rows, task


class FakeReport:
    """What the importer reads from a ``ParseReport``."""

    def __init__(self, issues: list[Issue] | None = None, config: Any = None, fmt: str = "json") -> None:
        self.issues = issues or []
        self.config = config
        self.format = fmt


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of the data tables, for before/after comparisons."""
    out = {}
    with read_session(make_engine(url)) as s:
        for table in m.Base.metadata.sorted_tables:
            out[table.name] = sorted(tuple(map(repr, row)) for row in s.execute(select(table)).all())
    return out


def count(url: str, model: Any) -> int:
    with read_session(make_engine(url)) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


# ---------------------------------------------------------------- schema and engine


def test_migration_to_head_on_empty_file(tmp_path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite:///{tmp_path / 'new' / 'fresh.db'}"
    assert current_revision(url) is None
    upgrade(url)
    upgrade(url)  # idempotent
    assert current_revision(url) == "0008"  # the newest revision
    with make_engine(url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), m.Base.metadata) == []


def test_migration_0004_ranks_existing_scores_by_id_order(tmp_path) -> None:
    """Scores written before 0004 were ranked by insertion (id) order; the upgrade keeps exactly that ranking, per
    project, model version (NULL = cold start) and strategy."""
    from db.engine import dispose_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    engine = make_engine(url)
    old_schema_rows(engine, "p")  # documents 1-3 (the current importer writes columns 0003 does not have)
    rows = [(3, "margin"), (1, "margin"), (2, "mnlp"), (2, "margin"), (3, "mnlp")]  # insertion order = ranking
    with engine.begin() as conn:
        for doc, strategy in rows:
            conn.execute(text("INSERT INTO uncertainty_scores (project_id, document_id, model_version_id, strategy, "
                              "score, created_at) VALUES (1, :d, NULL, :s, 0.5, '2026-01-01')"),
                         {"d": doc, "s": strategy})
    dispose_engine(url)
    upgrade(url)
    with make_engine(url).connect() as conn:
        got = conn.execute(text("SELECT document_id, strategy, queue_rank FROM uncertainty_scores ORDER BY id")).all()
    assert [tuple(r) for r in got] == [(3, "margin", 1), (1, "margin", 2), (2, "mnlp", 1), (2, "margin", 3),
                                       (3, "mnlp", 2)]


def test_queue_order_is_the_stored_rank_not_the_score_or_id(db_url: str) -> None:
    """The queue reads the ranking store_run was given (ties broken by core.active), on SQLite and PostgreSQL."""
    from db import scores

    engine = make_engine(db_url)
    import_tasks(engine, "p", [ParsedTask(text=f"Report number {i}.") for i in range(6)])
    with read_session(engine) as s:
        ids = s.scalars(select(m.Document.id).order_by(m.Document.id)).all()
    order = [ids[4], ids[0], ids[5], ids[2], ids[1], ids[3]]  # equal scores: only the rank says who comes first
    scores.store_run(engine, 1, None, None, {"diversity": [(d, 0.5, 3) for d in order],
                                             "random(seed=0)": [(d, 0.1 * k, 3) for k, d in enumerate(ids)]})
    rows, total, run = scores.ranked_queue(engine, 1, "diversity", limit=None)
    assert total == 6 and [r.document_id for r in rows] == order and [r.rank for r in rows] == list(range(1, 7))
    page, _, _ = scores.ranked_queue(engine, 1, "diversity", limit=2, offset=2)
    assert [(r.rank, r.document_id) for r in page] == [(3, order[2]), (4, order[3])]
    rows, _, _ = scores.ranked_queue(engine, 1, "random(seed=0)", limit=None)
    assert [r.document_id for r in rows] == ids  # rank order, although the scores rise


def test_migration_matches_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with make_engine(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), m.Base.metadata) == []


def test_sqlite_pragmas_and_begin_immediate(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, *a: seen.append(stmt))
    with read_session(engine) as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert s.execute(text("PRAGMA busy_timeout")).scalar() >= 30000
    assert "BEGIN" in seen and "BEGIN IMMEDIATE" not in seen
    seen.clear()
    with write_session(engine) as s:
        s.add(m.Project(name="p", settings={}))
    assert seen[0] == "BEGIN IMMEDIATE"
    assert make_engine(sqlite_url) is engine


# ---------------------------------------------------------------- importing


def test_import_counts_and_document(db_url: str) -> None:
    engine = make_engine(db_url)
    summary = import_tasks(engine, "ecg", basic_tasks(), file_name="export.json")
    assert (summary.documents_added, summary.documents_updated, summary.documents_unchanged) == (3, 0, 0)
    assert (summary.annotations, summary.predictions, summary.spans) == (2, 2, 6)
    assert summary.status == "ok" and summary.import_id is not None
    assert summary.to_dict()["documents_added"] == 3
    assert (count(db_url, m.Document), count(db_url, m.Annotation), count(db_url, m.Span)) == (3, 4, 6)
    [info] = list_projects(engine)
    assert (info.name, info.n_documents, info.n_labeled) == ("ecg", 3, 2)
    assert info.labels == ("FINDING", "RHYTHM", "SIZE")
    rows, total = list_documents(engine, info.id)
    doc = get_document(engine, rows[0].id)
    assert doc is not None and doc.ls_task_id == 1 and doc.text == TEXT1 and doc.meta == {"source_file": "a"}
    assert doc.training is not None and [s.label for s in doc.training.spans] == ["RHYTHM", "FINDING"]
    assert doc.training.meta["ls_task_id"] == 1
    assert get_document(engine, 10_000) is None
    assert count(db_url, m.AuditEvent) == 1


def test_reimport_same_ids_updates_without_duplicates(db_url: str) -> None:
    engine = make_engine(db_url)
    import_tasks(engine, "ecg", basic_tasks())
    again = import_tasks(engine, "ecg", basic_tasks())
    assert (again.documents_added, again.documents_updated, again.documents_unchanged) == (0, 0, 3)
    changed = basic_tasks()
    changed[1] = task(2, TEXT2 + " Stable.", *changed[1].annotations)
    third = import_tasks(engine, "ecg", changed)
    assert (third.documents_added, third.documents_updated, third.documents_unchanged) == (0, 1, 2)
    assert (count(db_url, m.Document), count(db_url, m.Annotation), count(db_url, m.Span)) == (3, 4, 6)
    pid = get_project(engine, "ecg").id
    assert [t for _, t in project_texts(engine, pid)][1] == TEXT2 + " Stable."


def test_reimport_without_ids_keys_by_text_hash(db_url: str) -> None:
    engine = make_engine(db_url)
    tasks = [task(None, TEXT1, human(None, (0, 13, "RHYTHM"))), task(None, TEXT2)]
    first = import_tasks(engine, "notes", tasks, source="conll")
    second = import_tasks(engine, "notes", tasks, source="conll")
    assert first.documents_added == 2 and second.documents_unchanged == 2 and second.documents_added == 0
    assert count(db_url, m.Document) == 2 and count(db_url, m.Annotation) == 1
    # a corrected annotation without an id replaces the id-less one of the earlier import (issue 13: no pile-up)
    third = import_tasks(engine, "notes", [task(None, TEXT1, human(None, (0, 5, "RHYTHM")))], source="conll")
    assert third.documents_updated == 1 and count(db_url, m.Annotation) == 1
    # a later export with ids adopts the id-less document of the same text instead of duplicating it
    fourth = import_tasks(engine, "notes", [task(7, TEXT2)])
    assert fourth.documents_updated == 1 and count(db_url, m.Document) == 2
    assert get_document(engine, list_documents(engine, get_project(engine, "notes").id)[0][1].id).ls_task_id == 7


def test_annotations_replaced_by_external_id_others_kept(db_url: str) -> None:
    engine = make_engine(db_url)
    import_tasks(engine, "p", [task(1, TEXT1, human("10", (0, 5, "A")), human("12", (6, 12, "B")))])
    summary = import_tasks(engine, "p", [task(1, TEXT1, human("10", (0, 13, "RHYTHM")), human("11", (14, 18, "C")))])
    assert summary.documents_updated == 1
    doc = get_document(engine, list_documents(engine, get_project(engine, "p").id)[0][0].id)
    by_id = {a.external_id: a for a in doc.annotations}
    assert set(by_id) == {"10", "11", "12"}  # 12 is not in the partial export: kept
    assert by_id["10"].spans == (Span(0, 13, "RHYTHM"),)
    assert count(db_url, m.Annotation) == 3 and count(db_url, m.Span) == 3


def test_predictions_stored_but_never_training(db_url: str) -> None:
    engine = make_engine(db_url)
    import_tasks(engine, "p", basic_tasks())
    pid = get_project(engine, "p").id
    rows, _ = list_documents(engine, pid)
    doc3 = get_document(engine, rows[2].id)
    [p] = doc3.annotations
    assert (p.source, p.model_version, p.score, p.external_id) == ("model", "v1", 0.9, "p2")
    assert p.span_scores == (0.5,)
    assert doc3.training is None
    docs = list(training_documents(engine, pid))
    assert [d.meta["ls_task_id"] for d in docs] == [1, 2]
    assert all(d.id in (rows[0].id, rows[1].id) for d in docs)
    assert label_counts(engine, pid) == {"FINDING": 2, "RHYTHM": 1, "SIZE": 1}  # prediction spans not counted
    assert [d.id for d in unlabeled_documents(engine, pid)] == [rows[2].id]
    assert rows[1].n_predictions == 1 and rows[1].n_annotations == 1


def test_policy_ground_truth_wins_and_cancelled_skipped(db_url: str) -> None:
    engine = make_engine(db_url)
    anns = (
        human("1", (0, 5, "GT"), ground_truth=True, updated_at="2024-01-01T00:00:00Z"),
        human("2", (0, 5, "LATEST"), updated_at="2024-06-01T00:00:00Z"),
        human("3", (0, 5, "CANCELLED"), cancelled=True, updated_at="2025-01-01T00:00:00Z"),
    )
    import_tasks(engine, "p", [task(1, TEXT1, *anns), task(2, TEXT2, anns[2]), task(3, TEXT3, *anns[1:])])
    pid = get_project(engine, "p").id
    docs = {d.meta["ls_task_id"]: d for d in training_documents(engine, pid)}
    assert set(docs) == {1, 3}
    assert [s.label for s in docs[1].spans] == ["GT"]
    assert [s.label for s in docs[3].spans] == ["LATEST"]
    assert [s.label for s in next(training_documents(engine, pid, policy="latest")).spans] == ["LATEST"]
    assert label_counts(engine, pid) == {"GT": 1, "LATEST": 1}
    assert label_counts(engine, pid, policy="latest") == {"LATEST": 2}
    _, total = list_documents(engine, pid, labeled=False)
    assert total == 1  # only cancelled work: unlabeled


def test_training_view_sql_agrees_with_core_policy(sqlite_url: str) -> None:
    engine, rng = make_engine(sqlite_url), random.Random(7)
    stamps = [None, "", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.5Z", "2024-02-01T00:00:00+00:00"]
    tasks = []
    for tid in range(300):
        anns = [Annotation(source=rng.choice(["human", "human", "review", "model", "rule"]),
                           spans=(Span(0, 3, f"L{i}"),), external_id=str(i), cancelled=rng.random() < 0.2,
                           ground_truth=rng.random() < 0.2, created_at=rng.choice(stamps),
                           updated_at=rng.choice(stamps)) for i in range(rng.randint(0, 4))]
        tasks.append(task(tid, f"report {tid}", *anns))
    import_tasks(engine, "p", tasks)
    for policy in ("latest", "ground_truth_then_latest"):
        with read_session(engine) as s:
            sql = dict(s.execute(chosen_annotations(None, policy)).all())
            rows = s.execute(select(m.Annotation.document_id, m.Annotation.id, m.Annotation.source,
                                    m.Annotation.cancelled, m.Annotation.ground_truth, m.Annotation.created_at,
                                    m.Annotation.updated_at).order_by(m.Annotation.id)).all()
        per_doc: dict[int, list[tuple[int, Annotation]]] = {}
        for d, i, src, canc, gt, ca, ua in rows:
            per_doc.setdefault(d, []).append((i, Annotation(source=src, cancelled=canc, ground_truth=gt,
                                                            created_at=ca, updated_at=ua)))
        expected = {}
        for d, pairs in per_doc.items():
            chosen = select_training_annotation([a for _, a in pairs], policy)
            if chosen is not None:
                expected[d] = next(i for i, a in pairs if a is chosen)
        assert sql == expected


def test_strict_mode_stores_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    error = Issue("error", IssueCode.UNKNOWN_LABEL, "Task 2: label 'X' is not in the config; span skipped.",
                  task="Task 2")
    with pytest.raises(StrictImportError) as info:
        import_tasks(engine, "p", basic_tasks(), report=FakeReport([error]), strict=True, file_name="bad.json")
    assert info.value.summary.skipped == [error]
    assert "nothing was stored" in str(info.value)
    assert count(db_url, m.Document) == 0 and count(db_url, m.Project) == 0 and count(db_url, m.Span) == 0
    [run] = import_history(engine, "p")
    assert (run.status, run.file_name, run.project_id) == ("failed", "bad.json", None)
    assert run.issues == [error]

    # an error reported by the parser midway (after the first batch was flushed) also rolls everything back
    report = FakeReport()

    def parser():
        for i in range(25):
            if i == 20:
                report.issues.append(error)
            yield task(i, f"text {i}", human(str(i), (0, 4, "A")))

    with pytest.raises(StrictImportError):
        import_tasks(engine, "p", parser(), report=report, strict=True, batch_size=10)
    assert count(db_url, m.Document) == 0
    # not strict: the valid part is stored and the error reported
    summary = import_tasks(engine, "p", basic_tasks(), report=FakeReport([error]))
    assert summary.documents_added == 3 and summary.skipped == [error]


def test_failing_parser_leaves_earlier_data_untouched(db_url: str) -> None:
    engine = make_engine(db_url)
    import_tasks(engine, "p", basic_tasks(), file_name="a.json")
    before = snapshot(db_url)

    def parser():
        yield task(1, "changed text", human("10", (0, 7, "X")))  # would update document 1
        for i in range(100, 130):
            yield task(i, f"new report {i}", human(str(i), (0, 3, "NEW")))
        raise ReportLensError("b.json is not valid JSON at line 9000, column 3 (after task 31).")

    with pytest.raises(ReportLensError, match="line 9000"):
        import_tasks(engine, "p", parser(), file_name="b.json", batch_size=10)
    after = snapshot(db_url)
    for table in ("projects", "documents", "annotations", "spans"):
        assert after[table] == before[table], table
    runs = import_history(engine, get_project(engine, "p").id)
    assert [(r.file_name, r.status) for r in runs] == [("b.json", "failed"), ("a.json", "ok")]
    assert "line 9000" in runs[0].error and runs[0].summary["tasks_read"] == 31
    assert runs[1].import_summary().documents_added == 3


def test_duplicate_task_in_one_file_last_wins(db_url: str) -> None:
    engine = make_engine(db_url)
    tasks = [task(1, TEXT1, human("10", (0, 5, "OLD"))), task(2, TEXT2), task(3, TEXT3),
             task(1, TEXT1, human("11", (0, 13, "NEW")))]  # batch_size=2: the copies land in different batches
    summary = import_tasks(engine, "p", tasks, batch_size=2)
    assert [i.code for i in summary.warnings] == ["duplicate_task"]
    assert summary.documents_added == 3 and summary.annotations == 1 and summary.spans == 1
    docs = list(training_documents(engine, get_project(engine, "p").id))
    assert [s.label for s in docs[0].spans] == ["NEW"] and count(db_url, m.Annotation) == 1
    same_batch = import_tasks(engine, "q", [task(5, "a"), task(5, "b")])
    assert same_batch.documents_added == 1 and len(same_batch.warnings) == 1


def test_invalid_spans_and_sources_are_reported(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    bad = [task(1, "short", human("1", (0, 5, "OK"), (3, 50, "TOO_LONG"))),
           task(2, "text", Annotation(source="oracle", spans=(Span(0, 1, "A"),)))]  # type: ignore[arg-type]
    summary = import_tasks(engine, "p", bad)
    assert sorted(i.code for i in summary.skipped) == ["offset_out_of_range", "unknown_source"]
    assert summary.spans == 1 and count(sqlite_url, m.Span) == 1
    with pytest.raises(StrictImportError):
        import_tasks(engine, "p2", bad, strict=True)
    with pytest.raises(ReportLensError, match="does not exist"):
        import_tasks(engine, "missing", bad, create_project=False)
    with pytest.raises(ReportLensError, match="source"):
        import_tasks(engine, "p", bad, source="fax")


def test_label_config_saved_and_merged(db_url: str) -> None:
    from core.formats.labelconfig import LabelConfig

    engine = make_engine(db_url)
    xml_cfg = LabelConfig(text_field="report", span_labels=("RHYTHM", "FINDING"), to_name="text")
    import_tasks(engine, "p", basic_tasks()[:1], report=FakeReport(config=xml_cfg))
    inferred = LabelConfig(span_labels=("SIZE", "FINDING"), choice_labels=("normal",), inferred=True)
    import_tasks(engine, "p", basic_tasks()[1:], report=FakeReport(config=inferred))
    cfg = project_label_config(engine, "p")
    assert cfg == LabelConfig(text_field="report", span_labels=("FINDING", "RHYTHM", "SIZE"),
                              choice_labels=("normal",), to_name="text", inferred=False)
    assert project_label_config(engine, ensure_project(engine, "empty").id) is None


def test_merge_label_configs_rules() -> None:
    assert merge_label_configs(None, None) is None
    xml = {"text_field": "report", "span_labels": ["A"], "inferred": False}
    inf = {"text_field": "text", "span_labels": ["B"], "inferred": True}
    assert merge_label_configs(xml, inf) == {"text_field": "report", "span_labels": ["A", "B"], "inferred": False}
    assert merge_label_configs(inf, xml) == {"text_field": "report", "span_labels": ["A", "B"], "inferred": False}
    assert merge_label_configs(inf, {**inf, "text_field": "body"})["text_field"] == "body"


def test_list_documents_search_pagination_and_filters(db_url: str) -> None:
    engine = make_engine(db_url)
    tasks = [task(i, f"Report {i}: {'Atrial FIBRILLATION' if i % 3 == 0 else 'sinus rhythm'} 50% done_x",
                  *([human(str(i), (0, 6, "AF" if i % 3 == 0 else "SR"))] if i % 2 == 0 else []))
             for i in range(1, 26)]
    import_tasks(engine, "p", tasks)
    pid = get_project(engine, "p").id
    rows, total = list_documents(engine, pid, limit=10, offset=20)
    assert total == 25 and [r.ls_task_id for r in rows] == [21, 22, 23, 24, 25]
    assert rows[1].labels == ("SR",) and rows[1].n_spans == 1 and rows[0].labels == ()
    rows, total = list_documents(engine, pid, search="atrial fib")
    assert total == 8 and all(r.ls_task_id % 3 == 0 for r in rows)
    assert list_documents(engine, pid, search="50%")[1] == 25 and list_documents(engine, pid, search="_%")[1] == 0
    assert list_documents(engine, pid, labeled=True)[1] == 12
    assert list_documents(engine, pid, labeled=False)[1] == 13
    rows, total = list_documents(engine, pid, label="AF", search="report")
    assert total == 4 and [r.ls_task_id for r in rows] == [6, 12, 18, 24]
    assert rows[0].preview.startswith("Report 6: Atrial")
    assert label_counts(engine, pid) == {"SR": 8, "AF": 4}
    assert len(list(unlabeled_documents(engine, pid, limit=5))) == 5
    assert len(list(project_texts(engine, pid))) == 25


def test_import_history_and_audit(db_url: str) -> None:
    engine = make_engine(db_url)
    import_tasks(engine, "p", basic_tasks(), file_name="one.json", report=FakeReport(fmt="json-min"))
    import_tasks(engine, "p", basic_tasks(), file_name="two.json")
    runs = import_history(engine, "p")
    assert [r.file_name for r in runs] == ["two.json", "one.json"]
    assert runs[1].format == "json-min" and runs[1].status == "ok" and runs[1].finished_at is not None
    assert runs[0].summary["documents_unchanged"] == 3
    with read_session(engine) as s:
        actions = s.scalars(select(m.AuditEvent.action).order_by(m.AuditEvent.id)).all()
    assert actions == ["import", "import"]


def test_real_parser_end_to_end(db_url: str, tmp_path) -> None:
    """core.formats.registry.iter_tasks streaming into import_tasks, with its ParseReport."""
    import json

    from core.formats.registry import iter_tasks
    from core.formats.report import ParseReport

    def region(start: int, end: int, label: str, text_: str) -> dict:
        return {"id": f"r{start}", "from_name": "label", "to_name": "text", "type": "labels",
                "value": {"start": start, "end": end, "text": text_[start:end], "labels": [label]}}

    export = [
        {"id": 1, "data": {"text": TEXT1}, "annotations": [{"id": 10, "completed_by": 1, "result": [
            region(0, 13, "RHYTHM", TEXT1)], "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "was_cancelled": False, "ground_truth": False}],
         "predictions": [{"id": 5, "model_version": "m1", "score": 0.7, "result": [region(14, 42, "FINDING", TEXT1)]}]},
        {"id": 2, "data": {"text": TEXT2}, "annotations": [], "predictions": []},
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    engine = make_engine(db_url)
    report = ParseReport()
    summary = import_tasks(engine, "ls", iter_tasks(path, report=report), report=report, file_name=path.name)
    assert (summary.documents_added, summary.annotations, summary.predictions, summary.spans) == (2, 1, 1, 2)
    assert summary.format == "json" and summary.skipped == []
    cfg = project_label_config(engine, "ls")
    assert cfg is not None and cfg.inferred and set(cfg.span_labels) == {"RHYTHM", "FINDING"}
    pid = get_project(engine, "ls").id
    assert label_counts(engine, pid) == {"RHYTHM": 1}
    again = ParseReport()
    assert import_tasks(engine, "ls", iter_tasks(path, report=again), report=again).documents_unchanged == 2


# ---------------------------------------------------------------- concurrency


_WORKER = """
import json, sys, time
from pathlib import Path
from db.engine import make_engine
from db.importer import import_tasks
from tests.factories import human, task

url, start, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
tasks = [task(i, f"Report {i}: sinus rhythm, rate {i}.", human(str(i), (0, 6, "X"))) for i in range(start, start + 400)]
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
summaries = [import_tasks(make_engine(url), "shared", tasks[k:k + 100], batch_size=50) for k in range(0, 400, 100)]
print(json.dumps(["ok", sum(s.documents_added for s in summaries)]))
"""


def test_concurrent_writers_in_two_processes(db_url: str, tmp_path: Any) -> None:
    """Two real processes (not threads) import into the same database at the same moment."""
    root = Path(__file__).resolve().parents[2]
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, db_url, str(start), str(go)], cwd=root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for start in (0, 10_000)
    ]
    time.sleep(1.0)  # both processes are up and waiting
    go.touch()
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=240)
        assert p.returncode == 0, stderr[-2000:]
        results.append(tuple(json.loads(stdout.strip().splitlines()[-1])))
    assert results == [("ok", 400), ("ok", 400)], results
    assert count(db_url, m.Document) == 800 and count(db_url, m.Project) == 1
    assert count(db_url, m.ImportRun) == 8


def test_spans_left_stale_by_a_changed_text_never_break_the_training_view(db_url: str) -> None:
    engine = make_engine(db_url)
    long_text = "Sinus rhythm at 78 bpm with first degree AV block."
    import_tasks(engine, "stale", [task(1, long_text, human("a", (0, 12, "RHYTHM"), (28, 49, "FINDING"),
                                                               ground_truth=True))])
    summary = import_tasks(engine, "stale", [task(1, "Sinus rhythm.", human("b", (0, 12, "RHYTHM")))])
    assert [w.code for w in summary.warnings] == ["text_changed"]
    project = get_project(engine, "stale")
    (doc,) = list(training_documents(engine, project.id))
    # the ground-truth annotation "a" was made on the earlier text: stale, so "b" (made on this text) trains
    assert doc.spans == (Span(0, 12, "RHYTHM"),) and "invalid_spans" not in doc.meta
    assert {a.external_id: a.stale for a in get_document(engine, doc.id).annotations} == {"a": True, "b": False}
