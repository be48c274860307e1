"""Attention explanations as pure numpy: head mean, attention rollout, entity bars, token selection for long reports.

Shapes: an attention stack is ``(layers, heads, T, T)`` (row = query token, column = key token, rows sum to one), as a
BERT encoder with ``attn_implementation="eager"`` returns it for one window ``[CLS] content [SEP]``.

Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"): each layer's head-mean
attention ``A`` is mixed with the identity for the residual connection, ``Â = (1 - r) A + r I`` (``r = 0.5`` in the
paper), rows are re-normalised, and the layers are multiplied from the bottom up: ``R_1 = Â_1``,
``R_l = Â_l R_(l-1)``. ``R_l[i, j]`` reads "how much of token i's representation after layer l flows from input
token j". Rows of every ``R_l`` sum to one.

Nothing here imports torch or transformers; :mod:`training.attention` produces the matrices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.types import ReportLensError

SPECIAL = (0, 0)


@dataclass(frozen=True)
class AttentionWindow:
    """The attention of one model window of a document.

    ``tokens``/``offsets`` include the special tokens (offsets into the *document* text, ``(0, 0)`` for specials);
    ``token_start``/``token_end`` are the window's content tokens in the whole tokenized document.
    """

    doc_id: object
    index: int
    n_windows: int
    token_start: int
    token_end: int
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    attentions: np.ndarray  # (layers, heads, T, T), float32

    def __post_init__(self) -> None:
        check_attentions(self.attentions)
        if len(self.tokens) != self.attentions.shape[-1] or len(self.offsets) != len(self.tokens):
            raise ReportLensError(f"Window {self.index}: {len(self.tokens)} tokens and {len(self.offsets)} offsets "
                                  f"for attention over {self.attentions.shape[-1]} positions.")

    @property
    def n_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)


def check_attentions(att: np.ndarray) -> None:
    """Raise a clear error unless ``att`` is a finite ``(layers, heads, T, T)`` stack."""
    if not isinstance(att, np.ndarray) or att.ndim != 4 or att.shape[-1] != att.shape[-2]:
        shape = getattr(att, "shape", None)
        raise ReportLensError(f"Attention must be an array of shape (layers, heads, T, T); got {shape}. Load the "
                              "model with attn_implementation='eager' and output_attentions=True.")
    if not np.isfinite(att).all():
        raise ReportLensError("Attention contains NaN or infinite values; the model output is broken.")


def head_mean(att: np.ndarray) -> np.ndarray:
    """``(layers, heads, T, T)`` -> ``(layers, T, T)``: the mean over heads (rows still sum to one)."""
    check_attentions(att)
    return att.mean(axis=1)


def _normalise_rows(m: np.ndarray) -> np.ndarray:
    sums = m.sum(axis=-1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


def rollout(att: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Cumulative attention rollout ``(layers, T, T)``: entry ``l`` is ``R_(l+1)`` of the module docstring.

    ``residual`` is the weight of the identity (the residual connection); 0 multiplies the raw head means.
    """
    if not 0.0 <= residual <= 1.0:
        raise ReportLensError(f"residual must be in [0, 1] (0.5 in Abnar & Zuidema); got {residual!r}.")
    mean = head_mean(att).astype(np.float64)
    eye = np.eye(mean.shape[-1])
    out = np.empty_like(mean)
    acc = eye
    for layer in range(mean.shape[0]):
        a_hat = _normalise_rows((1.0 - residual) * mean[layer] + residual * eye)
        acc = a_hat @ acc
        out[layer] = acc
    return out.astype(np.float32)


# ---------------------------------------------------------------- entities


def token_indices(offsets: Sequence[tuple[int, int]], start: int, end: int) -> list[int]:
    """Positions of the (non-special) tokens whose character range overlaps ``[start, end)``."""
    return [i for i, (a, b) in enumerate(offsets) if (a, b) != SPECIAL and a < end and start < b]


@dataclass(frozen=True)
class EntityBars:
    """For each token ``j`` of the window:

    * ``to_entity[j]``: the share of token j's attention that lands on the entity's tokens, ``sum_e M[j, e]``
      (0..1; "how much j attends to the entity");
    * ``from_entity[j]``: the share of the entity's attention (averaged over its tokens) that lands on j,
      ``mean_e M[e, j]`` (sums to one over j; "how much j is attended from the entity").
    """

    entity_tokens: tuple[int, ...]
    to_entity: np.ndarray
    from_entity: np.ndarray


def entity_bars(matrix: np.ndarray, entity_tokens: Sequence[int]) -> EntityBars:
    """Bars for one ``(T, T)`` matrix (a head, the head mean or a rollout layer) and an entity's token positions."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ReportLensError(f"Need one square (T, T) attention matrix; got shape {matrix.shape}.")
    idx = sorted(set(int(i) for i in entity_tokens))
    if not idx:
        raise ReportLensError("The entity covers no token of this window; pick the window that contains it.")
    if idx[0] < 0 or idx[-1] >= matrix.shape[0]:
        raise ReportLensError(f"Entity token positions {idx} lie outside the window (0..{matrix.shape[0] - 1}).")
    return EntityBars(tuple(idx), matrix[:, idx].sum(axis=1), matrix[idx, :].mean(axis=0))


# ---------------------------------------------------------------- long reports: which tokens to show


def top_tokens(matrix: np.ndarray, k: int, keep: Sequence[int] = (), skip_special: Sequence[int] = ()) -> list[int]:
    """The ``k`` positions (sorted) that receive the most attention from other tokens (column sums without the
    diagonal), always including ``keep`` (e.g. an entity's tokens); ``skip_special`` positions rank last."""
    n = matrix.shape[-1]
    if k < 1:
        raise ReportLensError(f"k must be at least 1; got {k}.")
    if matrix.ndim != 2 or matrix.shape[0] != n:
        raise ReportLensError(f"Need one square (T, T) attention matrix; got shape {matrix.shape}.")
    received = matrix.sum(axis=0) - np.diag(matrix)
    received = received.astype(np.float64)
    received[list(skip_special)] = -np.inf
    chosen = list(dict.fromkeys(int(i) for i in keep if 0 <= int(i) < n))
    want = min(n, max(k, len(chosen)))
    for i in np.argsort(-received, kind="stable"):
        if len(chosen) >= want:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return sorted(chosen)


def word_starts(offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Positions where a word begins: every special token, and every token that does not start where the previous
    one ends (word pieces such as ``41`` ``##8`` or ``q`` ``##tc`` continue their word; so does ``,`` glued to it)."""
    out = []
    for i, off in enumerate(offsets):
        prev = tuple(offsets[i - 1]) if i else SPECIAL
        if i == 0 or tuple(off) == SPECIAL or prev == SPECIAL or off[0] != prev[1]:
            out.append(i)
    return out


def word_windows(offsets: Sequence[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Consecutive position ranges ``[a, b)`` of at most ``size`` tokens, one starting at each word start, each
    ending on a word end, so no word is cut (a window is never a top-k pick: every token between a and b is there).

    The whole window when it fits; a single word longer than ``size`` tokens is the only one ever cut.
    """
    if size < 1:
        raise ReportLensError(f"size must be at least 1; got {size}.")
    n = len(offsets)
    if n <= size:
        return [(0, n)]
    cuts = [*word_starts(offsets), n]
    starts: list[int] = []  # word starts, and cuts through the words longer than the window
    for a, b in zip(cuts, cuts[1:], strict=False):
        starts.extend(range(a, b, size))
    ends = [*starts[1:], n]  # segment k covers [starts[k], ends[k]), never longer than size
    out: list[tuple[int, int]] = []
    j = 0
    for k, a in enumerate(starts):
        j = max(j, k)
        while j + 1 < len(starts) and ends[j + 1] - a <= size:
            j += 1
        if out and ends[j] <= out[-1][1]:
            continue  # inside the previous window's end: nothing new to show
        out.append((a, ends[j]))
        if ends[j] == n:
            break
    return out


def window_around(windows: Sequence[tuple[int, int]], positions: Sequence[int]) -> int:
    """The index of the window that contains ``positions`` (an entity's tokens) nearest its middle; else the one
    holding the most of them; 0 when ``positions`` is empty."""
    if not positions or not windows:
        return 0
    lo, hi = min(positions), max(positions)
    mid = (lo + hi) / 2

    def rank(w: int) -> tuple[int, float]:
        a, b = windows[w]
        inside = sum(a <= p < b for p in positions)
        return -inside, abs((a + b - 1) / 2 - mid)

    return min(range(len(windows)), key=rank)


def view_ranges(n_tokens: int, size: int) -> list[tuple[int, int]]:
    """Consecutive position ranges ``[a, b)`` of at most ``size`` tokens covering ``n_tokens`` (display pages)."""
    if size < 1:
        raise ReportLensError(f"size must be at least 1; got {size}.")
    if n_tokens <= 0:
        return [(0, 0)]
    return [(a, min(a + size, n_tokens)) for a in range(0, n_tokens, size)]


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Unique axis labels ``"i token"`` (a heatmap merges equal category names, and reports repeat words)."""
    return [f"{i} {t}" for i, t in enumerate(tokens)]


def special_positions(offsets: Sequence[tuple[int, int]]) -> list[int]:
    return [i for i, o in enumerate(offsets) if tuple(o) == SPECIAL]


def window_of_span(windows: Sequence[tuple[int, int]], token_idx: Sequence[int]) -> int | None:
    """The window (content ranges ``[a, b)`` into the document's tokens) where the tokens have the most context."""
    if not token_idx:
        return None
    lo, hi = min(token_idx), max(token_idx)
    best, best_ctx = None, -1
    for w, (a, b) in enumerate(windows):
        if a <= lo and hi < b:
            ctx = min(lo - a, b - 1 - hi)
            if ctx > best_ctx:
                best, best_ctx = w, ctx
    return best
