"""Per-token probabilities -> per-word BIO tags: word-level aggregation and constrained (Viterbi) decoding.

The one decoding of ReportLens (training's dev/test scores, scoring, ``cli.py extract``, the REST API and the ONNX
runtime all reach it through :func:`core.alignment.probs_to_spans`). Two steps, both configurable
(:class:`DecodeConfig`, carried by :class:`core.alignment.AlignConfig`):

* **Aggregation** (``aggregation``): a word's label distribution from its word pieces (the tokenizer's
  ``word_ids``), as in the Hugging Face token-classification pipeline: ``"average"`` (mean of the pieces'
  probabilities), ``"first"`` (the first piece), ``"max"`` (the piece with the highest top probability), or
  ``"none"`` (each piece is decoded on its own, so an entity may start or end inside a word). BERT's
  pre-tokenizer makes each CJK character and each punctuation mark a word of its own, so Chinese text stays
  character-level. A model trained on first pieces only (``label_all_subtokens=False``) is always read with
  ``"first"``: its other pieces were never trained.
* **Decoding** (``decoding``): ``"viterbi"`` finds the most probable tag sequence (sum of log-probabilities) among
  the valid BIO ones: ``I-X`` only after ``B-X`` or ``I-X``, never first. Where the per-word argmax is already
  valid it *is* that sequence, and it is returned as is. ``"argmax"`` takes each word's most probable tag (a
  stray ``I-X`` then starts an entity, as :func:`core.alignment.bio_to_spans` reads it).

Only numpy and :mod:`core.types`; :mod:`core.alignment` builds on this module, not the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from core.types import ReportLensError

DECODINGS = ("viterbi", "argmax")
AGGREGATIONS = ("average", "first", "max", "none")
DEFAULT_AGGREGATION = "average"  # measured on the demo project, bench/README.md "Word-level decoding"
_TINY = 1e-30  # floor before log: a float32 softmax can round a probability to 0


@dataclass(frozen=True)
class DecodeConfig:
    """How per-token probabilities become entities. A stored config without these keys reads as the defaults."""

    decoding: Literal["viterbi", "argmax"] = "viterbi"
    aggregation: Literal["average", "first", "max", "none"] = DEFAULT_AGGREGATION

    def __post_init__(self) -> None:
        for name, allowed in (("decoding", DECODINGS), ("aggregation", AGGREGATIONS)):
            if (value := getattr(self, name)) not in allowed:
                raise ReportLensError(f"{name} must be {' or '.join(map(repr, allowed))} (got {value!r}).")

    def aggregation_for(self, label_all_subtokens: bool) -> str:
        """The aggregation actually used: ``"first"`` for a model trained on first pieces only."""
        return self.aggregation if label_all_subtokens else "first"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DecodeConfig:
        return cls(**{k: v for k, v in (d or {}).items() if k in ("decoding", "aggregation")})


def word_starts(n_tokens: int, word_ids: Sequence[int | None] | None, aggregation: str) -> np.ndarray:
    """Index of the first token of each word (ascending). A token continues a word when its ``word_id`` equals
    the previous token's; without ``word_ids``, or with ``aggregation="none"``, every token is a word."""
    if aggregation == "none" or not word_ids:
        return np.arange(n_tokens)
    return np.array([i for i in range(n_tokens)
                     if i == 0 or word_ids[i] is None or word_ids[i] != word_ids[i - 1]], dtype=np.int64)


def aggregate(probs: np.ndarray, starts: np.ndarray, aggregation: str) -> np.ndarray:
    """``(n_words, n_tags)`` distributions of the words beginning at ``starts`` (see the module docstring)."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(starts) == len(probs) or aggregation in ("none", "first"):
        return probs[starts]
    if aggregation == "average":
        return np.add.reduceat(probs, starts, axis=0) / np.diff(np.append(starts, len(probs)))[:, None]
    word_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(probs))))
    top = probs.max(axis=-1)
    best = np.full(len(starts), -1.0)
    np.maximum.at(best, word_of, top)
    # the first piece of each word reaching the word's best top probability
    pick = np.flatnonzero(top == best[word_of])
    chosen = pick[np.unique(word_of[pick], return_index=True)[1]]
    return probs[chosen]


def transitions(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``allowed[a, b]`` (tag ``b`` may follow tag ``a``) and ``first[b]`` (tag ``b`` may open a sequence)."""
    inside = np.array([t.startswith("I-") for t in tags])
    allowed = ~inside[None, :].repeat(len(tags), axis=0)
    for b, tag in enumerate(tags):
        if inside[b]:
            label = tag[2:]
            allowed[:, b] = [t in (f"B-{label}", f"I-{label}") for t in tags]
    return allowed, ~inside


def is_valid(path: np.ndarray, allowed: np.ndarray, first: np.ndarray) -> bool:
    """Whether the tag-id sequence ``path`` is valid BIO under :func:`transitions`."""
    return len(path) == 0 or bool(first[path[0]] and allowed[path[:-1], path[1:]].all())


def viterbi(log_probs: np.ndarray, allowed: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The tag-id sequence with the highest sum of ``log_probs`` (``(n, n_tags)``) among the valid ones; vectorised
    over tags, one step per position. Ties go to the lower tag id."""
    n, n_tags = log_probs.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    penalty = np.where(allowed, 0.0, -np.inf)
    score = np.where(first, log_probs[0], -np.inf)
    back = np.zeros((n, n_tags), dtype=np.int64)
    for i in range(1, n):
        cand = score[:, None] + penalty
        back[i] = cand.argmax(axis=0)
        score = cand[back[i], np.arange(n_tags)] + log_probs[i]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(score.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def decode_words(word_probs: np.ndarray, tags: Sequence[str], decoding: str) -> np.ndarray:
    """One tag id per word: the argmax, or (``"viterbi"``) the best valid BIO sequence, equal to the argmax
    whenever the argmax is valid."""
    top = word_probs.argmax(axis=-1) if len(word_probs) else np.zeros(0, dtype=np.int64)
    if decoding == "argmax":
        return top
    allowed, first = transitions(tags)
    if is_valid(top, allowed, first):
        return top
    return viterbi(np.log(np.maximum(word_probs, _TINY)), allowed, first)
