"""MACCROBAT2020 (real clinical case reports, nested entities) through brat import and the bundled tokenizer."""

from __future__ import annotations

from collections import Counter

import pytest

from core.alignment import AlignConfig, bio_to_spans, resolve_overlaps, spans_to_bio, trim_whitespace
from core.formats.registry import iter_tasks
from core.formats.report import ParseReport
from core.policy import training_documents_from_tasks
from core.types import LabelSchema
from tests.shared_data import shared
from training.encoding import encode_documents, load_tokenizer, tokenize_documents

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def corpus():
    report = ParseReport()
    tasks = list(iter_tasks(shared("maccrobat2020"), report=report))
    assert report.format == "brat"
    return tasks, report.issues


def test_brat_import_reads_every_entity(corpus):
    tasks, issues = corpus
    assert len(tasks) == 200
    codes = Counter(i.code for i in issues)
    assert codes["discontinuous"] == 44  # the README's count of discontinuous entities
    assert not [i for i in issues if i.level == "error"]
    for task in tasks:
        for span in task.annotations[0].spans:
            assert 0 <= span.start < span.end <= len(task.text)


def test_alignment_reports_every_conflict_and_round_trips(corpus):
    tasks, _ = corpus
    tok = load_tokenizer()
    docs = list(training_documents_from_tasks(tasks))
    tokenized = tokenize_documents(tok, [(d.id, d.text) for d in docs])
    counts: Counter[str] = Counter()
    for doc, tdoc in zip(docs, tokenized, strict=True):
        tags, issues = spans_to_bio(doc.text, tdoc.offsets, doc.spans, tdoc.word_ids, AlignConfig(), doc.id)
        kept, overlaps = resolve_overlaps(doc.text, doc.spans, doc.id)
        counts.update(i.code for i in issues)
        assert sum(i.code == "overlap" for i in issues) == len(overlaps) == len(set(doc.spans)) - len(kept)
        back = set(bio_to_spans(tags, tdoc.offsets, tdoc.word_ids))
        partial = {i.span for i in issues if i.code == "partial_token"}
        lost = {i.span for i in issues if i.code == "span_without_tokens"}
        for span in kept:
            if span.as_tuple() in lost:
                continue
            if span.as_tuple() in partial:
                assert any(b.label == span.label and b.start <= span.start and b.end >= span.end for b in back)
            else:
                assert trim_whitespace(doc.text, span) in back, (doc.id, span)
    assert counts["overlap"] > 100  # MACCROBAT nests entities (466 conflicts with the bundled tokenizer)
    assert counts["partial_token"] > 0


def test_windows_cover_long_case_reports(corpus):
    tasks, _ = corpus
    tok = load_tokenizer()
    docs = list(training_documents_from_tasks(tasks[:40]))
    schema = LabelSchema.from_labels({s.label for d in docs for s in d.spans})
    cfg = AlignConfig(max_length=128, stride=32)
    for enc in encode_documents(tok, docs, schema, cfg):
        covered = set()
        for w in enc.windows:
            assert len(w.input_ids) <= 128
            covered.update(range(w.token_start, w.token_end))
        assert covered == set(range(enc.n_tokens))
        assert enc.n_tokens > 126  # case reports are longer than one window: never truncated
        assert len(enc.windows) >= 2
