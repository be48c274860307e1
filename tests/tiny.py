"""A tiny word-piece tokenizer (and later a tiny BERT) for fast tests: no real weights, no files needed."""

from __future__ import annotations

from functools import lru_cache

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "sinus", "rhythm", "heart", "rate", "bpm", "pr", "qrs", "qt", "qtc", "interval", "ms", "no", "st", "elevation",
    "left", "right", "axis", "deviation", "atrial", "fibrillation", "normal", "ecg", "lobe", "upper", "lower",
    "nodule", "effusion", "pleural", "there", "is", "a", "the", "of", "in", "with", "without", "and", "cm", "mg",
    "brady", "tachy", "##card", "##ia", "##s", "##ed", "##m", "##day", "/", ".", ",", ":", "-", "(", ")",
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "##0", "##1", "##2", "##3", "##4", "##5", "##6", "##7",
    "##8", "##9", "心", "率", "次", "分", "窦", "性", "律", "未", "见", "异", "常", "可", "能",
]


@lru_cache(maxsize=1)
def tiny_tokenizer():
    from transformers import BertTokenizer

    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    return BertTokenizer(vocab=vocab, do_lower_case=True)
