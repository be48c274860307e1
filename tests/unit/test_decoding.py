"""Decoding (core/decoding.py through core.alignment.probs_to_spans): word-level aggregation, Viterbi over valid
BIO, scores, the config and its defaults for stored models; over real fast-tokenizer offsets (tiny vocab)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.alignment import AlignConfig, bio_to_spans, probs_to_spans
from core.decoding import AGGREGATIONS, DecodeConfig, aggregate, decode_words, is_valid, transitions, viterbi
from core.trainconfig import TrainConfig
from core.types import LabelSchema, ReportLensError, Span
from tests.tiny import tiny_tokenizer
from training.encoding import tokenize_documents

SCHEMA = LabelSchema(("FINDING", "RHYTHM"))  # O B-FINDING I-FINDING B-RHYTHM I-RHYTHM
TAGS = SCHEMA.tags
EN = ["sinus", "rhythm", "tachycardia", "bradycardias", "heart", "rate", "78", "bpm", "qtc", "ms", ".", ",", "left",
      "mg/day", "xylophone"]
ZH = ["窦", "性", "心", "律", "率", "78", "次", "/", "分", "，", "龘"]


def tok(text: str):
    return tokenize_documents(tiny_tokenizer(), [("d1", text)])[0]


def one_hot_probs(tags: list[str], high: float = 0.8) -> np.ndarray:
    """Rows where ``tags[i]`` has probability ``high`` and the other tags share the rest."""
    rest = (1.0 - high) / (len(TAGS) - 1)
    probs = np.full((len(tags), len(TAGS)), rest)
    probs[np.arange(len(tags)), [TAGS.index(t) for t in tags]] = high
    return probs


def spans(text: str, tags: list[str], config: DecodeConfig | None = None, label_all: bool = True):
    t = tok(text)
    return [s for s, _ in probs_to_spans(one_hot_probs(tags), t.offsets, SCHEMA, t.word_ids, label_all, config)]


# ---------------------------------------------------------------- hand cases


def test_pieces_of_one_word_with_different_labels_are_one_entity_with_one_label():
    # "Suprave"=FINDING, "ntric"=RHYTHM, "ular tachycardia"=RHYTHM, on the tiny vocabulary's pieces
    text = "tachycardia rate"
    t = tok(text)
    assert t.tokens == ("tachy", "##card", "##ia", "rate")
    probs = one_hot_probs(["B-FINDING", "B-RHYTHM", "I-RHYTHM", "I-RHYTHM"])
    probs[3] = one_hot_probs(["I-RHYTHM"], 0.9)[0]

    def decoded(config: DecodeConfig) -> list[Span]:
        return [s for s, _ in probs_to_spans(probs, t.offsets, SCHEMA, t.word_ids, decode=config)]

    assert decoded(DecodeConfig("argmax", "none")) == [Span(0, 5, "FINDING"), Span(5, 16, "RHYTHM")]  # before
    for how in ("average", "first", "max"):
        assert decoded(DecodeConfig("viterbi", how)) == [Span(0, 16, "RHYTHM")], how
        # word-level argmax alone keeps words whole but not BIO: 'rate' (I-RHYTHM) after a FINDING word
        assert all(5 not in (s.start, s.end) for s in decoded(DecodeConfig("argmax", how)))


def test_an_inside_tag_after_outside_is_repaired_not_a_new_broken_entity():
    t = tok("sinus rhythm")
    o, b, i = TAGS.index("O"), TAGS.index("B-RHYTHM"), TAGS.index("I-RHYTHM")
    probs = np.full((2, len(TAGS)), 0.0)
    probs[0, [o, b, i]] = [0.6, 0.3, 0.1]
    probs[1, [o, b, i]] = [0.2, 0.1, 0.7]
    old = probs_to_spans(probs, t.offsets, SCHEMA, t.word_ids, decode=DecodeConfig("argmax", "none"))
    assert [s for s, _ in old] == [Span(6, 12, "RHYTHM")]  # argmax: O I-RHYTHM, the stray I- opens an entity
    (new,) = probs_to_spans(probs, t.offsets, SCHEMA, t.word_ids)
    assert new == (Span(0, 12, "RHYTHM"), pytest.approx((0.3 + 0.7) / 2))  # B I (0.21) beats O O (0.12)


def test_cjk_stays_per_character():
    text = "窦性心律"
    t = tok(text)
    assert t.tokens == tuple(text) and len(set(t.word_ids)) == 4
    assert spans(text, ["B-RHYTHM", "I-RHYTHM", "O", "B-FINDING"]) == [Span(0, 2, "RHYTHM"), Span(3, 4, "FINDING")]
    assert tok("心率78次").tokens == ("心", "率", "7", "##8", "次")
    assert spans("心率78次", ["O", "O", "B-FINDING", "B-RHYTHM", "O"]) == [Span(2, 4, "FINDING")]
    with pytest.raises(ValueError, match="4 rows of probabilities for 5 tokens"):
        spans("心率78次", ["O", "O", "B-FINDING", "O"])


def test_max_takes_the_most_confident_piece_and_average_the_mean():
    t = tok("tachycardia")
    probs = np.array([[0.5, 0.0, 0.0, 0.5, 0.0], [0.05, 0.9, 0.0, 0.05, 0.0], [0.5, 0.0, 0.0, 0.5, 0.0]])
    word = aggregate(probs, np.array([0]), "max")
    assert word.tolist() == [probs[1].tolist()]
    assert aggregate(probs, np.array([0]), "average")[0] == pytest.approx(probs.mean(axis=0))
    ((span, score),) = probs_to_spans(probs, t.offsets, SCHEMA, t.word_ids, decode=DecodeConfig(aggregation="max"))
    assert (span, score) == (Span(0, 11, "FINDING"), pytest.approx(0.9))


def test_first_subtoken_models_read_the_first_piece_whatever_the_aggregation():
    t = tok("tachycardia rate")
    probs = one_hot_probs(["B-FINDING", "B-RHYTHM", "B-RHYTHM", "O"])  # continuation pieces were never trained
    for how in AGGREGATIONS:
        out = probs_to_spans(probs, t.offsets, SCHEMA, t.word_ids, False, DecodeConfig(aggregation=how))
        assert out == [(Span(0, 11, "FINDING"), pytest.approx(0.8))]


def test_empty_document_and_all_outside():
    t = tok("")
    assert probs_to_spans(np.zeros((0, len(TAGS))), t.offsets, SCHEMA, t.word_ids) == []
    assert spans("sinus rhythm", ["O", "O"]) == []


def test_config_validates_and_stored_models_read_the_defaults():
    with pytest.raises(ReportLensError, match=r"aggregation must be 'average' or 'first' or 'max' or 'none'"):
        DecodeConfig(aggregation="mean")  # type: ignore[arg-type]
    with pytest.raises(ReportLensError, match="decoding must be"):
        DecodeConfig(decoding="beam")  # type: ignore[arg-type]
    with pytest.raises(ReportLensError, match="aggregation must be one of"):
        TrainConfig(aggregation="mean")
    old = {"max_length": 64, "stride": 8}  # an AlignConfig / TrainConfig stored before decoding was configurable
    assert AlignConfig.from_dict(old).decode == DecodeConfig() == TrainConfig.from_stored(old).align().decode
    custom = TrainConfig(decoding="argmax", aggregation="max")
    assert custom.align().decode == DecodeConfig("argmax", "max")
    assert TrainConfig.from_dict(custom.to_dict()) == custom
    assert AlignConfig.from_dict(custom.align().to_dict()) == custom.align()


# ---------------------------------------------------------------- Viterbi


def _valid_tags(draw, n: int) -> list[str]:
    out: list[str] = []
    for _ in range(n):
        choices = ["O", "B-FINDING", "B-RHYTHM"] + ([f"I-{out[-1][2:]}"] if out and out[-1] != "O" else [])
        out.append(draw(st.sampled_from(choices)))
    return out


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_viterbi_equals_argmax_when_argmax_is_valid(data):
    n = data.draw(st.integers(0, 30))
    tags = _valid_tags(data.draw, n)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    probs = rng.dirichlet(np.ones(len(TAGS)), size=n) * 0.5 + one_hot_probs(tags, 1.0) * 0.5
    allowed, first = transitions(TAGS)
    top = probs.argmax(axis=-1)
    assert is_valid(top, allowed, first)
    assert viterbi(np.log(probs), allowed, first).tolist() == top.tolist()  # the search itself, not the shortcut
    assert decode_words(probs, TAGS, "viterbi").tolist() == top.tolist()


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_viterbi_finds_the_best_valid_sequence(n, seed):
    probs = np.random.default_rng(seed).dirichlet(np.ones(len(TAGS)) * 0.3, size=n)
    allowed, first = transitions(TAGS)
    logp = np.log(np.maximum(probs, 1e-30))
    valid = [p for p in itertools.product(range(len(TAGS)), repeat=n) if is_valid(np.array(p), allowed, first)]
    best = max(logp[np.arange(n), list(p)].sum() for p in valid)
    path = decode_words(probs, TAGS, "viterbi")
    assert is_valid(path, allowed, first)
    assert logp[np.arange(n), path].sum() == pytest.approx(best)


# ---------------------------------------------------------------- property: random probabilities, random texts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_entities_are_whole_words_and_valid_bio(data):
    chinese = data.draw(st.booleans())
    words = data.draw(st.lists(st.sampled_from(ZH if chinese else EN), min_size=0, max_size=30))
    text = ("" if chinese else " ").join(words)
    t = tok(text)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    probs = rng.dirichlet(np.ones(len(TAGS)) * data.draw(st.sampled_from([0.2, 1.0])), size=len(t))
    starts = {s for i, (s, _) in enumerate(t.offsets) if i == 0 or t.word_ids[i] != t.word_ids[i - 1]}
    ends = {e for i, (_, e) in enumerate(t.offsets) if i + 1 == len(t) or t.word_ids[i] != t.word_ids[i + 1]}
    allowed, first = transitions(TAGS)
    for how in ("average", "first", "max"):
        config = DecodeConfig("viterbi", how)
        out = probs_to_spans(probs, t.offsets, SCHEMA, t.word_ids, decode=config)
        for span, score in out:
            assert span.start in starts and span.end in ends, (how, span, t.tokens)
            assert 0.0 <= score <= 1.0
        assert [s for s, _ in out] == sorted(s for s, _ in out)
        assert all(a.end <= b.start for (a, _), (b, _) in zip(out, out[1:], strict=False))
    # token level ("none"): still valid BIO, and the same spans as bio_to_spans reads the decoded tags
    path = decode_words(probs, TAGS, "viterbi")
    assert is_valid(path, allowed, first)
    none = probs_to_spans(probs, t.offsets, SCHEMA, t.word_ids, decode=DecodeConfig("viterbi", "none"))
    assert [s for s, _ in none] == bio_to_spans([TAGS[i] for i in path], t.offsets, t.word_ids)


def test_cjk_stays_per_character_with_a_vocabulary_extended_tokenizer(tmp_path):
    from training.vocab import extend_tokenizer

    text = "短阵房性心动过速"  # all but 性 and 心 unknown to the tiny vocabulary, then added as real vocabulary
    new, report = extend_tokenizer(tiny_tokenizer(), [text], 1, 50, tmp_path)
    assert len(report.added) == 6
    t = tokenize_documents(new, [("d1", text)])[0]
    assert t.tokens == tuple(text) and len(set(t.word_ids)) == len(text)
    tags = ["O", "O", "B-RHYTHM", "I-RHYTHM", "B-FINDING", "I-FINDING", "I-FINDING", "I-FINDING"]
    out = probs_to_spans(one_hot_probs(tags), t.offsets, SCHEMA, t.word_ids)
    assert [s for s, _ in out] == [Span(2, 4, "RHYTHM"), Span(4, 8, "FINDING")]
