"""Clinician review: snapping to tokens, decision semantics (accept / reject / relabel / adjust / add / accept_all),
decisions -> one review annotation per reviewer -> the training view of the next run, annotators' work kept and
never silently outranked, progress and the worklist, and suggestions predicted once then read back (tiny random
BERT)."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from core.review import (
    apply_decision,
    is_snapped,
    overlap_groups,
    overlapped_by,
    pending_entities,
    review_items,
    snap_to_tokens,
)
from core.types import Annotation, Entity, ParsedTask, ReportLensError, Span
from db import models as m
from db import review as db_review
from db.engine import make_engine, read_session, write_session
from db.importer import import_tasks
from db.model_versions import record_model_version
from db.repository import get_document, training_documents
from db.scores import predictions_for, save_predictions
from services import review as svc
from services.dataset import annotation_status, training_status
from tests.tiny import tiny_model_dir, tiny_tokenizer

T1 = "sinus bradycardia, heart rate 45 bpm. there is a pleural effusion."
T2 = "atrial fibrillation, heart rate 120 bpm. no nodule."
T3 = "normal ecg."
LABELS = ("FINDING", "HR", "RHYTHM")


def at(text: str, piece: str, label: str, score: float = 0.9, source: str = "model") -> Entity:
    start = text.index(piece)
    return Entity(start, start + len(piece), label, score, source)


SUGGEST_1 = [at(T1, "sinus bradycardia", "RHYTHM", 0.95), at(T1, "45 bpm", "HR", 0.4),
             at(T1, "pleural effusion", "RHYTHM", 0.55)]  # the last one has the wrong label
HUMAN_2 = (Span(0, len("atrial fibrillation"), "RHYTHM"),)


@pytest.fixture
def project(sqlite_url, tmp_path):
    """Three documents (the second labeled by an annotator), a model version, its stored predictions."""
    engine = make_engine(sqlite_url)
    tasks = [
        ParsedTask(text=T1, task_id=1),
        ParsedTask(text=T2, task_id=2, annotations=(Annotation(source="human", spans=HUMAN_2, author="anna",
                                                               external_id="a2",
                                                               updated_at="2024-05-01T10:00:00.000000Z"),)),
        ParsedTask(text=T3, task_id=3),
    ]
    import_tasks(engine, "rev", tasks)
    version = record_model_version(engine, "rev", None, {"model_dir": tmp_path / "no-model",
                                                         "schema": {"labels": list(LABELS)}, "config": {}})
    with read_session(engine) as s:
        ids = {t: d for t, d in s.execute(select(m.Document.ls_task_id, m.Document.id)).all()}
    save_predictions(engine, version.id, {
        ids[1]: (SUGGEST_1, 0.6),
        ids[2]: ([at(T2, "atrial fibrillation", "RHYTHM", 0.9), at(T2, "nodule", "FINDING", 0.8)], 0.9),
        ids[3]: ([], 0.99)})
    return engine, ids, version


def n_rows(engine, model) -> int:
    with read_session(engine) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


# ---------------------------------------------------------------- pure rules


def test_snap_grows_to_token_boundaries_and_refuses_ranges_without_tokens():
    text = "sinus bradycardia, 45 bpm"
    offsets = [(0, 0), (0, 5), (6, 11), (11, 15), (15, 17), (17, 18), (19, 20), (20, 21), (22, 25), (0, 0)]
    assert snap_to_tokens(text, offsets, 7, 9) == (6, 11)  # inside "brady"
    assert snap_to_tokens(text, offsets, 5, 13) == (6, 15)  # leading space trimmed, ends inside "##card"
    assert snap_to_tokens(text, offsets, 0, 17) == (0, 17)  # already on boundaries
    assert snap_to_tokens(text, offsets, 20, 24) == (20, 25)  # "5" is its own token; "bp" grows to "bpm"
    assert is_snapped(offsets, 6, 15) and not is_snapped(offsets, 7, 15)
    for start, end in [(5, 6), (18, 19), (3, 3), (-1, 4), (10, 99)]:
        with pytest.raises(ReportLensError):
            snap_to_tokens(text, offsets, start, end)
    with pytest.raises(ReportLensError, match="covers no word"):
        snap_to_tokens(text, offsets, 18, 19)


def test_snap_range_uses_the_tokenizer_offsets():
    tok = tiny_tokenizer()
    s, e = svc.snap_range(tok, T1, T1.index("brady") + 2, T1.index("brady") + 7)  # "ady" + "ca"
    assert T1[s:e] == "bradycard"  # tokens brady + ##card
    s, e = svc.snap_range(tok, T1, T1.index("45"), T1.index("bpm") + 1)
    assert T1[s:e] == "45 bpm"
    s, e = svc.snap_range(tok, T1, T1.index("45") + 1, T1.index("45") + 2)
    assert T1[s:e] == "5"  # "45" is two word pieces, "4" and "##5": a piece is a token boundary


def test_apply_decision_semantics():
    text = "sinus bradycardia, heart rate 45 bpm."
    rhythm, hr = at(text, "sinus bradycardia", "RHYTHM"), at(text, "45 bpm", "HR")
    spans, acc = apply_decision(text, [], "accept", before=rhythm)
    assert spans == [rhythm.span] and acc == [rhythm]
    spans, _ = apply_decision(text, spans, "accept", before=rhythm)  # idempotent
    assert spans == [rhythm.span]
    spans, _ = apply_decision(text, spans, "reject", before=rhythm)
    assert spans == []
    relabelled = Entity(hr.start, hr.end, "FINDING", 1.0, "review")
    spans, _ = apply_decision(text, [hr.span], "relabel", before=hr, after=relabelled)
    assert spans == [relabelled.span]
    narrower = Entity(hr.start, hr.start + 2, "HR", 1.0, "review")
    spans, _ = apply_decision(text, [], "adjust", before=hr, after=narrower)  # adjusting a pending one
    assert spans == [narrower.span]
    spans, _ = apply_decision(text, [rhythm.span], "add", after=at(text, "heart rate", "HR"))
    assert [text[s.start:s.end] for s in spans] == ["sinus bradycardia", "heart rate"]
    with pytest.raises(ReportLensError, match="overlap"):
        apply_decision(text, [rhythm.span], "add", after=at(text, "bradycardia", "FINDING"))
    overlapping = at(text, "bradycardia, heart", "FINDING")
    spans, acc = apply_decision(text, [rhythm.span], "accept_all", pending=[hr, overlapping])
    assert spans == sorted([rhythm.span, hr.span]) and acc == [hr]  # the one overlapping a reviewed span: not taken
    assert overlapped_by([hr, overlapping], spans) == [overlapping]  # ... it is rejected as overlapping
    fragment, whole = at(text, "sinus", "RHYTHM"), at(text, "sinus bradycardia", "RHYTHM", source="rule")
    with pytest.raises(ReportLensError, match="overlapping suggestions need your choice") as err:
        apply_decision(text, [], "accept_all", pending=[fragment, whole, hr])  # two pending overlap: you choose
    assert "'sinus'" in str(err.value) and "'sinus bradycardia'" in str(err.value) and "(rule)" in str(err.value)
    with pytest.raises(ReportLensError, match="No entity here"):
        apply_decision(text, [], "accept_all", pending=[])  # an empty report is confirmed, not accepted
    assert apply_decision(text, [], "no_entity", pending=[hr]) == ([], [])
    with pytest.raises(ReportLensError, match="reject it first"):
        apply_decision(text, [rhythm.span], "no_entity")
    for bad in [dict(action="accept"), dict(action="relabel", before=hr), dict(action="add"),
                dict(action="delete", before=hr), dict(action="add", after=Entity(30, 99, "HR"))]:
        with pytest.raises(ReportLensError):
            apply_decision(text, [], **bad)


def test_review_items_tell_pending_accepted_decided_and_added():
    a, b, c = SUGGEST_1
    added = Span(T1.index("heart rate"), T1.index("heart rate") + 10, "HR")
    fixed = Span(c.start, c.end, "FINDING")
    items = review_items(SUGGEST_1, [a.span, added, fixed], decided={c.span.as_tuple()})
    status = {(it.entity.start, it.entity.label): it.status for it in items}
    assert status == {(a.start, "RHYTHM"): "accepted", (b.start, "HR"): "pending", (c.start, "RHYTHM"): "decided",
                      (added.start, "HR"): "reviewed", (c.start, "FINDING"): "reviewed"}
    assert [it.entity.start for it in items] == sorted(it.entity.start for it in items)
    assert pending_entities(SUGGEST_1, [a.span], decided=set()) == [b, c]


# ---------------------------------------------------------------- decisions -> review annotation -> training


def test_decisions_become_a_review_annotation_that_trains_once_finished(project):
    engine, ids, version = project
    doc = ids[1]
    tok = tiny_tokenizer()
    rhythm, hr, wrong = SUGGEST_1
    kw = {"version_id": version.id, "tokenizer": tok}

    state = svc.decide(engine, doc, "dr. lee", "accept", entity=rhythm, **kw)
    assert state.spans == (rhythm.span,) and not state.complete and state.pending == 2
    # unfinished: stored, but not training data and not "reviewed"
    assert doc not in {d.id for d in training_documents(engine, 1)}
    assert svc.progress(engine, 1) == db_review.ReviewProgress(total=3, reviewed=0, in_progress=1)
    review_row = next(a for a in get_document(engine, doc).annotations if a.source == "review")
    assert annotation_status(review_row) == "review draft (trains once finished)"  # the Dataset page's wording

    svc.decide(engine, doc, "dr. lee", "relabel", entity=wrong, label="FINDING", **kw)
    rate = T1.index("rate")
    # "ate 45 bp" snaps to "rate 45 bpm"
    state = svc.decide(engine, doc, "dr. lee", "adjust", entity=hr, start=rate + 1, end=hr.end - 1, **kw)
    assert state.complete and state.pending == 0
    wanted = sorted([rhythm.span, Span(wrong.start, wrong.end, "FINDING"), Span(rate, hr.end, "HR")])
    assert state.spans == tuple(wanted)

    trained = {d.id: d for d in training_documents(engine, 1)}
    assert sorted(trained[doc].spans) == wanted and trained[doc].meta["author"] == "dr. lee"
    assert svc.progress(engine, 1) == db_review.ReviewProgress(total=3, reviewed=1, in_progress=0)
    assert [annotation_status(a) for a in get_document(engine, doc).annotations if a.source == "review"] == ["usable"]

    decisions = db_review.list_decisions(engine, document_id=doc)
    assert [d.action for d in reversed(decisions)] == ["accept", "relabel", "adjust"]
    assert all(d.reviewer == "dr. lee" and d.model_version_id == version.id and d.decided_at for d in decisions)
    relabel_row = next(d for d in decisions if d.action == "relabel")
    assert relabel_row.before == db_review.entity_dict(wrong)
    assert relabel_row.after["label"] == "FINDING" and relabel_row.after["source"] == "review"
    with read_session(engine) as s:  # one review annotation per reviewer and document, updated in place
        rows = s.execute(select(m.Annotation.source, m.Annotation.author, m.Annotation.cancelled,
                                m.Annotation.model_version).where(m.Annotation.document_id == doc)).all()
    assert rows == [("review", "dr. lee", False, version.name)]

    # once finished it stays training data, even when a later decision leaves something pending again
    state = svc.decide(engine, doc, "dr. lee", "reject", entity=rhythm, **kw)
    assert state.complete and rhythm.span not in state.spans
    assert doc in {d.id for d in training_documents(engine, 1)}


def test_accept_all_and_add_and_reject_on_an_empty_suggestion_list(project):
    engine, ids, version = project
    rhythm, hr, wrong = SUGGEST_1
    svc.decide(engine, ids[1], "kim", "reject", entity=wrong, version_id=version.id)
    state = svc.decide(engine, ids[1], "kim", "accept_all", version_id=version.id)
    assert state.complete and state.spans == (rhythm.span, hr.span)
    (row, _) = db_review.list_decisions(engine, document_id=ids[1])
    assert row.action == "accept_all" and row.before is None
    assert [e["label"] for e in row.after["entities"]] == ["RHYTHM", "HR"]

    # a report with no suggestion: adding an entity finishes it; an empty one is confirmed "no entity here"
    start = T3.index("normal")
    state = svc.decide(engine, ids[3], "kim", "add", start=start, end=start + 3, label="FINDING",
                       version_id=version.id,
                    tokenizer=tiny_tokenizer())
    assert state.complete and [T3[s.start:s.end] for s in state.spans] == ["normal"]
    with pytest.raises(ReportLensError, match="Nothing to accept"):
        svc.decide(engine, ids[3], "lee", "accept_all", version_id=version.id)
    state = svc.decide(engine, ids[3], "lee", "no_entity", version_id=version.id)
    assert state.complete and state.spans == ()
    trained = {d.id: d for d in training_documents(engine, 1)}
    assert trained[ids[3]].spans == () and trained[ids[3]].meta["author"] == "lee"  # the latest review trains
    assert svc.progress(engine, 1).reviewed == 2


def test_annotator_work_is_kept_and_a_difference_is_shown(project):
    engine, ids, version = project
    doc = ids[2]
    report = svc.open_report(engine, doc, "dr. lee", version.id)
    assert report.differing == () and "anna" in report.trains  # no review yet: the annotator's work trains
    # the reviewer disagrees with the annotator: the rhythm is rejected, everything else accepted
    af = next(e for e in report.candidates if e.start == 0)
    svc.decide(engine, doc, "dr. lee", "reject", entity=af, version_id=version.id)
    svc.decide(engine, doc, "dr. lee", "accept_all", version_id=version.id, candidates=report.candidates)
    report = svc.open_report(engine, doc, "dr. lee", version.id)
    assert report.state.complete and len(report.differing) == 1
    (anna,) = report.differing
    assert (anna.source, anna.author, anna.spans, anna.ground_truth) == ("human", "anna", HUMAN_2, False)
    assert report.annotators == report.differing
    assert report.trains == "your review"  # the most recent wins, and the page says so
    stored = get_document(engine, doc)
    human = [a for a in stored.annotations if a.source == "human"]
    assert len(human) == 1 and human[0].spans == HUMAN_2 and human[0].author == "anna"  # untouched

    with write_session(engine) as s:  # the annotator's work marked ground truth in Label Studio outranks a review
        s.execute(m.Annotation.__table__.update().where(m.Annotation.document_id == doc,
                                                        m.Annotation.source == "human").values(ground_truth=True))
    report = svc.open_report(engine, doc, "dr. lee", version.id)
    assert "anna" in report.trains
    assert {d.id: d for d in training_documents(engine, 1)}[doc].spans == HUMAN_2


def test_bad_decisions_store_nothing_and_say_how_to_fix(project):
    engine, ids, version = project
    rhythm, hr, wrong = SUGGEST_1
    kw = {"version_id": version.id, "tokenizer": tiny_tokenizer()}
    cases = [
        (lambda: svc.decide(engine, ids[1], "  ", "accept", entity=rhythm, **kw), "Reviewer"),
        (lambda: svc.decide(engine, ids[1], "kim", "relabel", entity=rhythm, label="RHYTHM", **kw),
         "already has label"),
        (lambda: svc.decide(engine, ids[1], "kim", "relabel", entity=rhythm, label="", **kw), "Choose a label"),
        (lambda: svc.decide(engine, ids[1], "kim", "adjust", entity=hr, start=hr.start, end=hr.end - 1, **kw),
         "nothing to change"),
        (lambda: svc.decide(engine, ids[1], "kim", "add", start=5, end=6, label="HR", **kw), "covers no word"),
        (lambda: svc.decide(engine, ids[1], "kim", "add", start=0, end=999, label="HR", **kw),
         "not inside the report"),
        (lambda: svc.decide(engine, 999, "kim", "accept_all"), "does not exist"),
        (lambda: svc.decide(engine, ids[1], "kim", "approve", **kw), "Unknown review action"),
    ]
    for call, message in cases:
        with pytest.raises(ReportLensError, match=message):
            call()
    svc.decide(engine, ids[1], "kim", "accept", entity=rhythm, **kw)
    with pytest.raises(ReportLensError, match="overlap"):
        svc.decide(engine, ids[1], "kim", "add", start=rhythm.start, end=rhythm.start + 3, label="FINDING", **kw)
    assert n_rows(engine, m.ReviewDecision) == 1  # only the accept
    assert db_review.review_state(engine, ids[1], "kim").spans == (rhythm.span,)


def test_worklist_orders_by_uncertainty_unreviewed_first_and_filters_by_label(project):
    engine, ids, version = project
    rows, total = db_review.worklist(engine, 1, version_id=version.id)
    # no scoring run yet: lowest prediction confidence first (0.6, 0.9, 0.99)
    assert total == 3 and [r.document_id for r in rows] == [ids[1], ids[2], ids[3]]
    assert rows[0].labels == ("HR", "RHYTHM") and rows[0].n_entities == 3 and rows[0].status == "not reviewed"
    with write_session(engine) as s:
        for task, score in [(1, 0.1), (2, 0.2), (3, 0.7)]:
            s.add(m.UncertaintyScore(project_id=1, document_id=ids[task], model_version_id=version.id,
                                     strategy="margin", score=score, queue_rank=4 - task))
            s.add(m.UncertaintyScore(project_id=1, document_id=ids[task], model_version_id=version.id,
                                     strategy="entropy", score=1 - score, queue_rank=task))
    rows, _ = db_review.worklist(engine, 1, version_id=version.id, strategy="margin")
    assert [r.document_id for r in rows] == [ids[3], ids[2], ids[1]] and rows[0].uncertainty == pytest.approx(0.7)
    rows, _ = db_review.worklist(engine, 1, version_id=version.id)  # default: the strategy stored last
    assert [r.document_id for r in rows] == [ids[1], ids[2], ids[3]] and rows[0].uncertainty == pytest.approx(0.9)
    rows, _ = db_review.worklist(engine, 1, version_id=version.id, strategy="margin")
    svc.decide(engine, ids[3], "kim", "no_entity", version_id=version.id)
    rows, _ = db_review.worklist(engine, 1, version_id=version.id, strategy="margin")
    assert [r.document_id for r in rows] == [ids[2], ids[1], ids[3]] and rows[-1].status == "reviewed: no entity"
    svc.decide(engine, ids[1], "kim", "accept_all", version_id=version.id)
    rows, _ = db_review.worklist(engine, 1, version_id=version.id, strategy="margin")
    assert [(r.document_id, r.status) for r in rows] == [
        (ids[2], "not reviewed"), (ids[3], "reviewed: no entity"), (ids[1], "reviewed")]
    rows, total = db_review.worklist(engine, 1, version_id=version.id, hide_reviewed=True)
    assert total == 1 and rows[0].document_id == ids[2]
    rows, total = db_review.worklist(engine, 1, version_id=version.id, label="FINDING")
    assert total == 1 and rows[0].document_id == ids[2]
    rows, _ = db_review.worklist(engine, 1, version_id=version.id, order="document", unreviewed_first=False)
    assert [r.document_id for r in rows] == sorted(ids.values())
    with pytest.raises(ReportLensError):
        db_review.worklist(engine, 1, order="random")


def test_suggestions_are_predicted_once_then_read_from_the_stored_prediction(sqlite_url, tmp_path):
    from core.trainconfig import TrainConfig
    from training import trainer as trainer_mod

    engine = make_engine(sqlite_url)
    labeled = [ParsedTask(text=t, task_id=i, annotations=(Annotation(source="human", spans=(
        Span(0, t.index(","), "RHYTHM"),)),)) for i, t in enumerate([T1, T2] * 4, start=1)]
    import_tasks(engine, "live", [*labeled, ParsedTask(text="sinus rhythm, heart rate 60 bpm.", task_id=99)])
    base = tiny_model_dir(tmp_path / "tiny-base")
    cfg = TrainConfig(base_model=str(base), max_steps=3, batch_size=4, max_length=32, stride=8, seed=1)
    result = trainer_mod.run_training(engine, 1, cfg, tmp_path / "m")
    version = record_model_version(engine, 1, None, result)
    with read_session(engine) as s:
        doc_id = s.scalar(select(m.Document.id).where(m.Document.ls_task_id == 99))
    assert n_rows(engine, m.Prediction) == 0
    # the page's tokenizer is the model's own (saved with the version)
    assert svc.project_tokenizer(engine, 1, version).get_vocab() == tiny_tokenizer().get_vocab()
    first = svc.open_report(engine, doc_id, "", version.id)
    assert first.version.id == version.id and all(0 <= e.score <= 1 for e in first.candidates)
    (stored, confidence), = predictions_for(engine, version.id, [doc_id]).values()  # predicted now, and stored
    assert n_rows(engine, m.Prediction) == 1 and 0 < confidence <= 1
    model = {e.span for e in first.candidates if e.source in ("model", "both")}
    assert model <= {e.span for e in stored}
    shutil.rmtree(version.model_dir)  # no model any more: the next visit can only read the stored prediction
    again = svc.open_report(engine, doc_id, "", version.id)
    assert again.candidates == first.candidates and n_rows(engine, m.Prediction) == 1


@pytest.mark.parametrize(("source", "cancelled", "status"), [
    ("human", False, "usable"), ("human", True, "cancelled (never trains)"),
    ("review", True, "review draft (trains once finished)"), ("review", False, "usable"),
    ("prediction", False, "prediction (never trains)"),
])
def test_annotation_status_words(source, cancelled, status):
    from types import SimpleNamespace

    spans = (Span(0, 3, "HR"),)
    assert annotation_status(SimpleNamespace(source=source, cancelled=cancelled, spans=spans)) == status
    if source == "review" and not cancelled:  # a finished review with no entity: the confirmed negative
        assert annotation_status(SimpleNamespace(source=source, cancelled=cancelled, spans=())) == (
            "reviewed: no entity (trains as a negative example)")


# ---------------------------------------------------------------- overlapping suggestions, "no entity here"


def test_accept_all_resolves_every_suggestion_when_model_and_rule_entities_overlap(project):
    """Issue 13: the model suggests two fragments, the rules the whole entity over both. Accepting the report
    greedily took the fragments and left the rule entity pending; now the reviewer chooses, the choice rejects the
    overlapping fragments (recorded), and accepting the report then leaves nothing pending."""
    engine, ids, version = project
    doc = ids[1]
    sinus, brady = at(T1, "sinus", "RHYTHM", 0.7), at(T1, "bradycardia", "RHYTHM", 0.6)
    whole, hr = at(T1, "sinus bradycardia", "RHYTHM", 1.0, "rule"), at(T1, "45 bpm", "HR", 0.8)
    shown = (sinus, brady, whole, hr)
    kw = {"version_id": version.id, "candidates": shown}
    report = svc.open_report(engine, doc, "kim", version.id)
    assert report.conflicts == []  # the stored prediction has none; with these candidates:
    assert overlap_groups(shown) == [[sinus, whole, brady]]
    with pytest.raises(ReportLensError, match="overlapping suggestions need your choice") as err:
        svc.decide(engine, doc, "kim", "accept_all", **kw)
    assert "'sinus bradycardia'" in str(err.value) and "'bradycardia'" in str(err.value)
    assert n_rows(engine, m.ReviewDecision) == 0 and db_review.review_state(engine, doc, "kim").annotation_id is None

    state = svc.decide(engine, doc, "kim", "accept", entity=whole, **kw)
    assert state.spans == (whole.span,) and state.pending == 1 and not state.complete  # only "45 bpm" waits
    rejected = [d for d in db_review.list_decisions(engine, document_id=doc) if d.action == "reject"]
    assert sorted(d.before["start"] for d in rejected) == [sinus.start, brady.start]
    assert all(d.reviewer == "kim" and "overlapping" in d.comment and "sinus bradycardia" in d.comment
               for d in rejected)
    assert pending_entities(shown, state.spans, state.decided) == [hr]

    state = svc.decide(engine, doc, "kim", "accept_all", **kw)
    assert state.complete and state.pending == 0 and state.spans == (whole.span, hr.span)
    assert pending_entities(shown, state.spans, db_review.review_state(engine, doc, "kim").decided) == []


def test_accept_all_rejects_suggestions_overlapping_a_reviewed_entity(project):
    engine, ids, version = project
    doc = ids[1]
    whole, brady = at(T1, "sinus bradycardia", "RHYTHM", 1.0, "rule"), at(T1, "bradycardia", "FINDING", 0.6)
    # an older review already holds "sinus bradycardia"; a new model version suggests an overlapping "bradycardia"
    svc.decide(engine, doc, "kim", "accept", entity=whole, version_id=version.id, candidates=(whole,))
    state = svc.decide(engine, doc, "kim", "accept_all", version_id=version.id, candidates=(whole, brady))
    assert state.complete and state.pending == 0 and state.spans == (whole.span,)
    last = db_review.list_decisions(engine, document_id=doc)[0]
    assert (last.action, last.before["label"], last.after) == ("reject", "FINDING", None)


def test_rejecting_every_suggestion_stays_in_progress_until_no_entity_is_confirmed(project):
    """Issue 13: a report whose only suggestions were rejected counted as labelled with zero entities. Now it stays
    in progress (never trains) until the reviewer confirms "no entity here"; that decision is recorded and the
    confirmed empty review trains as a negative example."""
    engine, ids, version = project
    doc = ids[1]
    kw = {"version_id": version.id}
    for e in SUGGEST_1:
        state = svc.decide(engine, doc, "kim", "reject", entity=e, **kw)
    assert state.pending == 0 and state.spans == () and not state.complete
    assert doc not in {d.id for d in training_documents(engine, 1)}
    assert svc.progress(engine, 1) == db_review.ReviewProgress(total=3, reviewed=0, in_progress=1)
    assert svc.open_report(engine, doc, "kim", version.id).status == "in progress"
    (draft,) = [a for a in get_document(engine, doc).annotations if a.source == "review"]
    assert annotation_status(draft) == "review draft (trains once finished)"
    assert training_status(get_document(engine, doc)).startswith("Not labeled yet")

    state = svc.decide(engine, doc, "kim", "no_entity", **kw)
    assert state.complete and state.spans == ()
    last = db_review.list_decisions(engine, document_id=doc)[0]
    assert (last.action, last.reviewer, last.before, last.after) == ("no_entity", "kim", {"entities": []},
                                                                     {"entities": []})
    trained = {d.id: d for d in training_documents(engine, 1)}
    assert trained[doc].spans == () and trained[doc].meta["author"] == "kim"  # the confirmed negative trains
    report = svc.open_report(engine, doc, "kim", version.id)
    assert report.status == "reviewed: no entity" and report.no_entity
    (done,) = [a for a in get_document(engine, doc).annotations if a.source == "review"]
    assert annotation_status(done) == "reviewed: no entity (trains as a negative example)"
    assert training_status(get_document(engine, doc)) == ("Reviewed: no entity (confirmed by kim); trains as a "
                                                           "negative example.")
    rows, _ = db_review.worklist(engine, 1, version_id=version.id)
    assert next(r.status for r in rows if r.document_id == doc) == "reviewed: no entity"

    # adding an entity keeps it finished; rejecting that last entity again is not a confirmation: in progress
    tok = tiny_tokenizer()
    start = T1.index("heart rate")
    state = svc.decide(engine, doc, "kim", "add", start=start, end=start + 10, label="HR", tokenizer=tok, **kw)
    assert state.complete and len(state.spans) == 1
    added = Entity(state.spans[0].start, state.spans[0].end, "HR", 1.0, "review")
    with pytest.raises(ReportLensError, match="reject it first"):
        svc.decide(engine, doc, "kim", "no_entity", **kw)
    state = svc.decide(engine, doc, "kim", "reject", entity=added, **kw)
    assert not state.complete and doc not in {d.id for d in training_documents(engine, 1)}


def test_no_entity_rejects_the_pending_suggestions_in_one_recorded_decision(project):
    engine, ids, version = project
    state = svc.decide(engine, ids[1], "lee", "no_entity", version_id=version.id)
    assert state.complete and state.spans == () and state.pending == 0
    (row,) = db_review.list_decisions(engine, document_id=ids[1])
    assert row.action == "no_entity" and row.reviewer == "lee" and row.model_version_id == version.id
    assert [e["start"] for e in row.before["entities"]] == [e.start for e in SUGGEST_1]
    report = svc.open_report(engine, ids[1], "lee", version.id)
    assert report.pending == () and {it.status for it in report.items} == {"decided"}


def test_migration_0006_reopens_empty_reviews_nobody_confirmed(project, sqlite_url):
    """Before issue 13 an all-rejected review finished with zero entities and trained. Migration 0006 puts such
    reviews back in progress; a review confirmed with "no entity here", and one with entities, stay finished."""
    from sqlalchemy import update

    from db.engine import write_session
    from db.migrate import current_revision, downgrade, upgrade

    engine, ids, version = project
    kw = {"version_id": version.id}
    for e in SUGGEST_1:  # doc 1: every suggestion rejected (in progress now) ...
        svc.decide(engine, ids[1], "kim", "reject", entity=e, **kw)
    svc.decide(engine, ids[3], "lee", "no_entity", **kw)  # doc 3: confirmed empty
    with write_session(engine) as s:  # ... as the old code stored it: finished
        s.execute(update(m.Annotation).where(m.Annotation.document_id == ids[1], m.Annotation.source == "review")
                  .values(cancelled=False))
    assert ids[1] in {d.id for d in training_documents(engine, 1)}  # the old, silent negative example

    downgrade(sqlite_url, "0005")
    upgrade(sqlite_url, "0007")  # 0007 sits on 0006; later migrations do not touch reviews
    assert current_revision(sqlite_url) == "0007"
    trained = {d.id for d in training_documents(engine, 1)}
    assert ids[1] not in trained and ids[3] in trained
    assert svc.open_report(engine, ids[1], "kim", version.id).status == "in progress"
