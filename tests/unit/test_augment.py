"""Span-preserving augmentation: edits move spans with their words, never cross an entity boundary, and every
augmented demo report is a valid document whose entities are the same kind of thing as before."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from core.augment import apply_edits, augment_document, augment_documents, reorder_sentences
from core.demo import generate_demo_export
from core.types import Document, Span


def demo_docs(n: int = 60) -> list[Document]:
    out = []
    for t in generate_demo_export()[: n * 2]:
        if t.get("annotations"):
            spans = tuple(Span(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
                          for r in t["annotations"][0]["result"])
            out.append(Document(t["id"], t["data"]["text"], spans, {}))
    return out[:n]


def test_apply_edits_moves_spans_by_hand():
    text = "HR 78 bpm. AF noted."
    spans = [Span(3, 9, "HEART_RATE"), Span(11, 13, "RHYTHM")]
    new, moved = apply_edits(text, spans, [(0, 2, "Heart rate"), (3, 5, "84"), (11, 13, "atrial fibrillation")])
    assert new == "Heart rate 84 bpm. atrial fibrillation noted."
    assert [new[s.start:s.end] for s in moved] == ["84 bpm", "atrial fibrillation"]
    with pytest.raises(ValueError, match="crosses span"):
        apply_edits(text, spans, [(7, 12, "x")])
    with pytest.raises(ValueError, match="not overlap"):
        apply_edits(text, spans, [(0, 4, "a"), (2, 5, "b")])


def test_reorder_sentences_keeps_every_entity_on_its_words():
    text = "Sinus rhythm. Rate 70 bpm. No ST elevation."
    spans = [Span(0, 12, "RHYTHM"), Span(19, 25, "HR"), Span(30, 42, "FINDING")]
    seen = set()
    for seed in range(10):
        new, moved = reorder_sentences(text, spans, random.Random(seed))
        assert sorted(new) == sorted(text)
        assert sorted((s.label, new[s.start:s.end]) for s in moved) == sorted((s.label, text[s.start:s.end])
                                                                                for s in spans)
        seen.add(new)
    assert len(seen) > 1


def test_augmented_demo_reports_are_valid_and_keep_their_entities():
    docs = demo_docs()
    aug = augment_documents(docs, copies=2, seed=0)
    assert len(aug) > len(docs)  # most reports have something to vary
    by_id = {d.id: d for d in docs}
    changed_entities = 0
    for a in aug:
        src = by_id[a.meta["augmented_from"]]
        assert a.id.startswith(f"{src.id}#aug") and a.text != src.text
        Document(a.id, a.text, a.spans, {})  # validates every span against the new text
        assert Counter(s.label for s in a.spans) == Counter(s.label for s in src.spans)
        for s in a.spans:
            piece = a.text[s.start:s.end]
            assert piece == piece.strip() and piece
        changed_entities += len({a.text[s.start:s.end] for s in a.spans} - {src.text[s.start:s.end]
                                                                            for s in src.spans})
        # numbers stay plausible: same count of numbers in each entity kind
        nums = Counter(s.label for s in a.spans if re.search(r"\d", a.text[s.start:s.end]))
        assert nums == Counter(s.label for s in src.spans if re.search(r"\d", src.text[s.start:s.end]))
    assert changed_entities > len(aug)  # entities themselves vary, not only the words around them


def test_ambiguous_abbreviations_are_not_rewritten():
    doc = Document(1, "ST depression in V5. LAD stenosis.", (Span(0, 13, "FINDING"),), {})
    for seed in range(20):
        new = augment_document(doc, random.Random(seed), p_reorder=0)
        assert "sinus" not in new.text and "left axis" not in new.text.lower()
        assert "V5" in new.text
