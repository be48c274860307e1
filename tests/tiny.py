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


def tiny_model_dir(path):
    """A "local base model folder" at ``path``: a random 2-layer BERT (hidden 32) and the tiny tokenizer."""
    from pathlib import Path

    import torch
    from transformers import BertConfig, BertModel

    out = Path(path)
    if (out / "config.json").exists():
        return out
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=128)
    BertModel(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out
