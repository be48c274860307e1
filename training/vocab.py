"""Vocabulary extension: teach a WordPiece tokenizer the characters of a project's text that it maps to ``[UNK]``.

BERT's basic tokenizer puts every CJK character in a word of its own, so a Chinese report is a run of one-character
words, and each character missing from the vocabulary is one ``[UNK]``; an emoji or a rare symbol glued to a word
makes the whole word ``[UNK]``. :func:`unknown_pieces` finds, for every word the tokenizer cannot decompose, the
single-character pieces it lacks (``X`` at a word's start, ``##X`` inside one): with those added, the greedy
WordPiece match always succeeds. :func:`extend_tokenizer` adds the frequent ones (``min_count``, ``max_new``) **to
the WordPiece vocabulary itself** (``tokenizer.json``'s ``model.vocab`` and ``vocab.txt``, then reloads), never as
``add_tokens`` "added tokens": added tokens are matched before normalisation and pre-tokenisation, so they would
change how the rest of the text splits and bypass lower-casing; real vocabulary behaves exactly like the pieces
that were there (same normaliser, same offsets, same word ids).

:func:`resize_and_init` grows the model's embedding matrix and initialises each new row from the pieces the
character decomposes into under NFKC (a full-width ``Ａ`` from ``a``), else from the mean of the existing rows plus
a little seeded noise (so new rows are not identical).
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.types import ReportLensError

TOKENIZER_JSON = "tokenizer.json"
VOCAB_TXT = "vocab.txt"
NOISE_STD = 0.1  # of the existing rows' per-dimension standard deviation


@dataclass(frozen=True)
class VocabReport:
    """What a vocabulary extension did: the pieces added (most frequent first), the candidates seen, and the
    ``[UNK]`` share of the corpus before and after."""

    added: tuple[str, ...]
    candidates: int
    unk_before: float
    unk_after: float
    tokens_before: int
    tokens_after: int
    vocab_before: int
    vocab_after: int

    def to_dict(self) -> dict[str, Any]:
        return {"added": len(self.added), "candidates": self.candidates, "unk_before": round(self.unk_before, 4),
                "unk_after": round(self.unk_after, 4), "tokens_before": self.tokens_before,
                "tokens_after": self.tokens_after, "vocab_before": self.vocab_before, "vocab_after": self.vocab_after,
                "sample": list(self.added[:50])}


def _backend(tokenizer: Any) -> Any:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = getattr(backend, "model", None)
    if backend is None or type(model).__name__ != "WordPiece":
        raise ReportLensError(
            f"Vocabulary extension needs a fast WordPiece (BERT-family) tokenizer; this one is "
            f"{type(model).__name__ if model is not None else type(tokenizer).__name__}. Choose a BERT-family parent "
            "model, or set the vocabulary cap to 0 to adapt without extending the vocabulary.")
    return backend


def _words(backend: Any, text: str) -> list[str]:
    normalized = backend.normalizer.normalize_str(text) if backend.normalizer is not None else text
    if backend.pre_tokenizer is None:
        return normalized.split()
    return [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(normalized)]


def unknown_pieces(tokenizer: Any, texts: Iterable[str]) -> Counter[str]:
    """How often each missing single-character piece (``X`` or ``##X``) would turn an ``[UNK]`` word into real
    tokens, over ``texts``."""
    backend = _backend(tokenizer)
    model = backend.model
    vocab = backend.get_vocab(with_added_tokens=False)
    prefix, unk = model.continuing_subword_prefix, model.unk_token
    limit = model.max_input_chars_per_word
    cache: dict[str, tuple[str, ...]] = {}
    counts: Counter[str] = Counter()
    for text in texts:
        for word in _words(backend, text):
            needed = cache.get(word)
            if needed is None:
                needed = ()
                if len(word) <= limit and any(t.value == unk for t in model.tokenize(word)):
                    needed = tuple(p for i, c in enumerate(word) if (p := c if i == 0 else prefix + c) not in vocab)
                cache[word] = needed
            counts.update(needed)
    return counts


def choose_pieces(counts: Counter[str], min_count: int, max_new: int) -> tuple[str, ...]:
    """The pieces seen at least ``min_count`` times, most frequent first (ties by the piece), at most ``max_new``."""
    ranked = sorted((p for p, n in counts.items() if n >= min_count), key=lambda p: (-counts[p], p))
    return tuple(ranked[:max_new])


def unk_share(tokenizer: Any, texts: Iterable[str]) -> tuple[int, int]:
    """``(unknown tokens, all tokens)`` of ``texts`` (no special tokens)."""
    unk = total = 0
    batch = list(texts)
    for b in range(0, len(batch), 256):
        enc = tokenizer(batch[b:b + 256], add_special_tokens=False, truncation=False, verbose=False)
        for ids in enc["input_ids"]:
            total += len(ids)
            unk += sum(1 for i in ids if i == tokenizer.unk_token_id)
    return unk, total


def write_extended(tokenizer: Any, pieces: Iterable[str], out_dir: Path) -> Any:
    """Save ``tokenizer`` to ``out_dir`` with ``pieces`` appended to its WordPiece vocabulary (``tokenizer.json``
    and ``vocab.txt``), and load it back from there."""
    from transformers import AutoTokenizer

    _backend(tokenizer)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    path = out_dir / TOKENIZER_JSON
    data = json.loads(path.read_text(encoding="utf-8"))
    vocab: dict[str, int] = data["model"]["vocab"]
    next_id = max([*vocab.values(), *(t["id"] for t in data.get("added_tokens", []))]) + 1
    for piece in pieces:
        if piece not in vocab:
            vocab[piece] = next_id
            next_id += 1
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ReportLensError(f"The vocabulary of {out_dir} has gaps in its ids; the parent tokenizer is unusual. "
                              "Set the vocabulary cap to 0 to adapt without extending it.")
    (out_dir / VOCAB_TXT).write_text("".join(f"{t}\n" for t, _ in by_id), encoding="utf-8")
    return AutoTokenizer.from_pretrained(str(out_dir), local_files_only=True)


def extend_tokenizer(tokenizer: Any, texts: list[str], min_count: int, max_new: int,
                     out_dir: Path) -> tuple[Any, VocabReport]:
    """The tokenizer with the frequent ``[UNK]`` pieces of ``texts`` added (saved in ``out_dir``) and its report.
    With nothing to add (or ``max_new`` 0) the parent's tokenizer is saved as it is."""
    counts = unknown_pieces(tokenizer, texts)
    pieces = choose_pieces(counts, min_count, max_new) if max_new > 0 else ()
    unk0, tot0 = unk_share(tokenizer, texts)
    new = write_extended(tokenizer, pieces, out_dir)
    unk1, tot1 = unk_share(new, texts)
    report = VocabReport(pieces, len(counts), unk0 / tot0 if tot0 else 0.0, unk1 / tot1 if tot1 else 0.0, tot0, tot1,
                         len(tokenizer), len(new))
    return new, report


def resize_and_init(model: Any, old_tokenizer: Any, new_tokenizer: Any, pieces: Iterable[str], seed: int = 0) -> int:
    """Grow ``model``'s input (and tied output) embeddings to the new vocabulary and initialise each new row: the
    mean of the old rows of the pieces its NFKC form tokenizes into (when any are known), else the mean of all old
    rows plus seeded noise. Returns how many rows were initialised from pieces."""
    import torch

    old_n = model.get_input_embeddings().weight.shape[0]
    if len(new_tokenizer) <= old_n:
        return 0
    model.resize_token_embeddings(len(new_tokenizer), mean_resizing=False)
    weight = model.get_input_embeddings().weight
    from_pieces = 0
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        old = weight[:old_n]
        mean, std = old.mean(0), old.std(0)
        for piece in pieces:
            new_id = new_tokenizer.convert_tokens_to_ids(piece)
            if new_id is None or new_id < old_n:
                continue
            char = piece[2:] if piece.startswith("##") and len(piece) > 2 else piece
            folded = unicodedata.normalize("NFKC", char)
            ids = [] if folded == char else [i for i in old_tokenizer(folded, add_special_tokens=False)["input_ids"]
                                             if i != old_tokenizer.unk_token_id and i < old_n]
            if ids:
                weight[new_id] = old[ids].mean(0)
                from_pieces += 1
            else:
                weight[new_id] = mean + NOISE_STD * std * torch.randn(mean.shape, generator=gen)
        _init_output_bias(model, old_n)
    return from_pieces


def _init_output_bias(model: Any, old_n: int) -> None:
    """A masked-LM head's bias for the new tokens: the old biases' minimum, so new tokens start unlikely."""
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    bias = getattr(out, "bias", None)
    if bias is not None and bias.shape[0] > old_n:
        bias[old_n:] = bias[:old_n].min()
