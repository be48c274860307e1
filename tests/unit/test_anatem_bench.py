"""bench/anatem.py: AnatEM sentences -> ReportLens documents (spans on the rebuilt text), the official split, and the
seqeval entity count the recipe compares with."""

from __future__ import annotations

import pytest

from bench.anatem import (
    TASK_ID_BASE,
    count_entities,
    document_task,
    documents,
    group_documents,
    official_split,
    read_sentences,
    split_of,
)
from core.types import Document

SENTENCES = [
    [("The", "O"), ("left", "B-Anatomy"), ("ventricle", "I-Anatomy"), ("was", "O"), ("dilated", "O")],
    [("Liver", "B-Anatomy"), ("and", "O"), ("spleen", "B-Anatomy")],
    [("Kidney", "B-Anatomy"), ("cortex", "I-Anatomy")],
]


def test_document_text_and_spans():
    task = document_task("test", 4, SENTENCES)
    assert task.text == "The left ventricle was dilated Liver and spleen Kidney cortex"
    assert task.task_id == TASK_ID_BASE["test"] + 4
    spans = task.annotations[0].spans
    assert [task.text[s.start:s.end] for s in spans] == ["left ventricle", "Liver", "spleen", "Kidney cortex"]
    assert {s.label for s in spans} == {"Anatomy"}
    assert len(spans) == count_entities(SENTENCES) == 4


def test_no_entity_crosses_a_sentence_start():
    sents = [[("skin", "B-Anatomy")], [("cells", "I-Anatomy")]]  # an I- opening a sentence starts a new entity
    task = document_task("train", 0, sents)
    assert [task.text[s.start:s.end] for s in task.annotations[0].spans] == ["skin", "cells"]


def test_grouping_and_split_ids():
    groups = group_documents(SENTENCES * 7, 10)
    assert [len(g) for g in groups] == [10, 10, 1]
    assert [split_of(TASK_ID_BASE[s] + 3) for s in ("train", "dev", "test")] == ["train", "dev", "test"]
    with pytest.raises(ValueError):
        split_of(5)
    docs = [Document(id=i, text="x", meta={"ls_task_id": TASK_ID_BASE[s] + i})
            for i, s in enumerate(["train", "test", "dev", "train"])]
    split = official_split(docs)
    assert (split.train, split.dev, split.test) == ((0, 3), (2,), (1,))


def test_reader_caps_and_last_sentence(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("a\tO\nb\tB-Anatomy\n\nc\tO\n\nd\tB-Anatomy", encoding="utf-8")  # no final newline
    assert read_sentences(path) == [[("a", "O"), ("b", "B-Anatomy")], [("c", "O")], [("d", "B-Anatomy")]]
    assert len(read_sentences(path, limit=2)) == 2


def test_shared_anatem_files_entity_counts():
    from tests.shared_data import shared

    root = shared("anatem")
    docs = documents(max_docs=3, root=root)
    assert {k: len(v) for k, v in docs.items()} == {"train": 3, "dev": 3, "test": 3}
    sents = read_sentences(root / "test.tsv", limit=30)
    assert sum(len(t.annotations[0].spans) for t in docs["test"]) == count_entities(sents)
