"""Vocabulary extension (training/vocab.py) on the tiny tokenizer: which pieces are added (Chinese, emoji, a
full-width letter), that they become real WordPiece vocabulary (normalised like the rest, offsets and word ids
unchanged, alignment round-trips), the new embedding rows, and a model that is saved and reloaded gives identical
outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.alignment import AlignConfig, bio_to_spans, spans_to_bio
from core.types import Span
from tests.tiny import tiny_tokenizer
from training.encoding import tokenize_documents
from training.vocab import choose_pieces, extend_tokenizer, resize_and_init, unk_share, unknown_pieces

ZH = ["窦性心律，心率72次/分。房性早搏 3 次", "短阵房性心动过速，房性早搏", "窦性心律 房性早搏"]
EMOJI = ["heart rate 72 bpm 😀ok", "normal ecg 😀"]


def test_unknown_pieces_are_the_missing_characters_at_word_start_and_inside() -> None:
    counts = unknown_pieces(tiny_tokenizer(), ZH + EMOJI)
    assert counts["房"] == 4 and counts["早"] == 3 and counts["搏"] == 3  # each CJK character is a word
    assert counts["😀"] == 2  # glued to "ok" in one text: the word "😀ok" needs "😀", "##o", "##k"
    assert counts["##o"] == 1 and counts["##k"] == 1
    assert "窦" not in counts and "心" not in counts and "72" not in counts  # known already
    assert "，" in counts and "。" in counts  # full-width punctuation is its own word


def test_choose_pieces_threshold_cap_and_order() -> None:
    counts = unknown_pieces(tiny_tokenizer(), ZH + EMOJI)
    assert choose_pieces(counts, 3, 100) == ("房", "搏", "早")  # ties by code point
    assert choose_pieces(counts, 3, 2) == ("房", "搏")
    assert choose_pieces(counts, 100, 100) == ()


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    return extend_tokenizer(tiny_tokenizer(), ZH + EMOJI + ["Ａ"], 1, 1000, out), out


def test_extension_adds_real_vocabulary_and_reports_the_unk_share(extended) -> None:
    (tok, report), out = extended
    old = tiny_tokenizer()
    assert report.unk_before > 0.3 and report.unk_after == 0.0
    assert report.vocab_after == len(tok) == len(old) + len(report.added)
    assert set(report.added) >= {"房", "😀", "##o", "##k", "ａ"}  # the full-width A is lower-cased first
    assert unk_share(tok, ZH + EMOJI) == (0, unk_share(old, ZH + EMOJI)[1] + 2)  # 😀ok: one [UNK] -> three pieces
    # real WordPiece vocabulary, not "added tokens": in vocab.txt, none in added_tokens beyond the specials
    vocab_lines = (out / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab_lines[-len(report.added):] == list(report.added)
    assert set(tok.get_added_vocab()) <= {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    # the new pieces obey the normaliser like the old ones: upper-case full-width A -> the added lower-case piece
    assert tok.tokenize("Ａ") == ["ａ"]
    # and the old text tokenizes exactly as before
    plain = "sinus rhythm, heart rate 72 bpm. no st elevation."
    assert tok(plain)["input_ids"] == old(plain)["input_ids"]


def test_offsets_and_word_ids_round_trip_with_the_new_pieces(extended) -> None:
    (tok, _), _ = extended
    text = "窦性心律，房性早搏 😀ok 心率72次/分"
    (doc,) = tokenize_documents(tok, [(1, text)])
    assert "[UNK]" not in doc.tokens
    assert [text[s:e] for s, e in doc.offsets] == ["窦", "性", "心", "律", "，", "房", "性", "早", "搏", "😀", "o", "k",
                                                   "心", "率", "7", "2", "次", "/", "分"]
    assert doc.word_ids[9] == doc.word_ids[10] == doc.word_ids[11]  # 😀ok is one word of three pieces
    spans = [Span(5, 9, "EVENT"), Span(10, 13, "X"), Span(16, 18, "HR")]
    config = AlignConfig()
    tags, issues = spans_to_bio(text, doc.offsets, spans, doc.word_ids, config, 1)
    assert not issues
    assert bio_to_spans(tags, doc.offsets, doc.word_ids) == spans


def test_new_rows_are_initialised_and_a_saved_model_reloads_identically(extended, base_dir, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    (tok, report), tok_dir = extended
    old = tiny_tokenizer()
    model = AutoModelForMaskedLM.from_pretrained(base_dir)
    before = model.get_input_embeddings().weight.detach().clone()
    from_pieces = resize_and_init(model, old, tok, report.added, seed=3)
    weight = model.get_input_embeddings().weight.detach()
    assert weight.shape[0] == len(tok) and torch.equal(weight[: len(old)], before)
    assert from_pieces >= 2  # "ａ" from "a", "，" from ","
    a_id, fw_id = old.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("ａ")
    assert torch.allclose(weight[fw_id], before[a_id])
    new_rows = weight[len(old):]
    assert not torch.allclose(new_rows[0], new_rows[1])  # noise: new rows differ
    from_mean = (new_rows - before.mean(0)).norm(dim=1)  # the rows not taken from pieces sit near the mean
    assert int((from_mean < 0.3 * before.norm(dim=1).mean()).sum()) == len(report.added) - from_pieces
    assert model.get_output_embeddings().weight.shape[0] == len(tok)  # the tied MLM decoder grew too

    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    again = AutoModelForMaskedLM.from_pretrained(tmp_path / "m").eval()
    tok2 = AutoTokenizer.from_pretrained(tmp_path / "m")
    text = "窦性心律，房性早搏 😀ok"
    enc, enc2 = tok(text, return_tensors="pt"), tok2(text, return_tensors="pt")
    assert torch.equal(enc["input_ids"], enc2["input_ids"])
    with torch.no_grad():
        assert torch.equal(model.eval()(**enc).logits, again(**enc2).logits)
