"""Character spans <-> token-level BIO tags, and long documents <-> overlapping windows.

This is the one alignment implementation of ReportLens. The tokenizer runs in exactly one place
(``training.encoding.tokenize_documents``); its character offsets come here as plain tuples.

Stated policies (also shown in the UI and the ``convert`` summary):

* **Overlapping or nested spans** stay in the database. For BIO, which cannot express them, the longer span
  wins (ties: the earlier start, then the label name); every dropped span is reported as an ``overlap`` issue.
* **A span edge inside a token** (e.g. a span ``mg`` in the token ``mg/day``): with ``partial_token="expand"``
  (default) the whole token is tagged, so the entity grows to the token boundary; with ``"shrink"`` only tokens
  entirely inside the span are tagged. Either way the span is reported as a ``partial_token`` issue; a span
  left with no token at all is reported as ``span_without_tokens`` and cannot be tagged.
* **Continuation sub-tokens** (``##m`` after ``bp``) get ``I-X`` when ``label_all_subtokens`` is true
  (default), otherwise they are ignored (``None`` tag, label id -100) and only the first sub-token is trained.
* **Whitespace at a span's edges** belongs to no token, so the inverse returns the span without it
  (``trim_whitespace``); it is not reported.
* **Windows**: a document longer than ``max_length`` tokens (special tokens included) is split into
  windows of at most ``max_length`` tokens that overlap by ``stride`` tokens; nothing is truncated. A window
  does not end inside a word when it can avoid it. Tags are computed once over the whole document, so a span
  crossing a window edge is ``I-`` at the start of the next window, never a spurious ``B-``.
* **Merging windows** back: each token takes the prediction of the window in which it has the most context
  on both sides (the "max context" rule of extractive QA).
* **Decoding** predictions back to spans (:func:`probs_to_spans`, :mod:`core.decoding`): word-level distributions
  from the pieces, then the best *valid* BIO sequence, so no entity starts or ends inside a word.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from core.decoding import DecodeConfig, aggregate, decode_words, word_starts
from core.errors import IssueCode
from core.types import OUTSIDE, Issue, LabelSchema, ReportLensError, Span, snippet

IGNORE_INDEX = -100
Offsets = Sequence[tuple[int, int]]
PARTIAL_TOKEN_POLICIES = ("expand", "shrink")
OVERLAP_POLICIES = ("longest",)


@dataclass(frozen=True)
class AlignConfig:
    """How spans become tags and documents become windows. Round-trips to JSON via ``to_dict``/``from_dict``."""

    max_length: int = 256
    stride: int = 32
    label_all_subtokens: bool = True
    partial_token: Literal["expand", "shrink"] = "expand"
    overlap_policy: Literal["longest"] = "longest"
    decode: DecodeConfig = DecodeConfig()  # how probabilities become spans again (core/decoding.py)

    def __post_init__(self) -> None:
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise ReportLensError(f"max_length must be an integer >= 8 (got {self.max_length!r}).")
        if not isinstance(self.stride, int) or not 0 <= self.stride <= (self.max_length - 2) // 2:
            raise ReportLensError(
                f"stride must be between 0 and half the window's content ({(self.max_length - 2) // 2} tokens "
                f"for max_length {self.max_length}); got {self.stride!r}."
            )
        for name, allowed in (("partial_token", PARTIAL_TOKEN_POLICIES), ("overlap_policy", OVERLAP_POLICIES)):
            if (value := getattr(self, name)) not in allowed:
                raise ReportLensError(f"{name} must be {' or '.join(map(repr, allowed))} (got {value!r}).")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlignConfig:
        known = {k: d[k] for k in ("max_length", "stride", "label_all_subtokens", "partial_token", "overlap_policy")
                 if k in d}
        return cls(**known, decode=DecodeConfig.from_dict(d.get("decode")))


@dataclass(frozen=True)
class TokenizedDoc:
    """A whole document as the tokenizer sees it, without special tokens."""

    doc_id: Any
    text: str
    input_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    word_ids: tuple[int | None, ...]

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class Window:
    """One model input: special tokens included; offsets are into the *document* text, ``(0, 0)`` for specials."""

    doc_id: Any
    index: int
    token_start: int  # first content token of the window, index into the TokenizedDoc
    token_end: int  # exclusive
    text_start: int
    input_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    tags: tuple[str | None, ...]
    label_ids: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "window": self.index,
            "text_start": self.text_start,
            "tokens": list(self.tokens),
            "offsets": [list(o) for o in self.offsets],
            "tags": list(self.tags),
        }


def _where(doc_id: Any) -> str:
    return f"Document {doc_id}" if doc_id is not None else "Document"


def resolve_overlaps(text: str, spans: Sequence[Span], doc_id: Any = None) -> tuple[list[Span], list[Issue]]:
    """Keep a non-overlapping subset of ``spans`` (longest first) and report each span left out of BIO."""
    ordered = sorted(set(spans), key=lambda s: (-s.length, s.start, s.label))
    kept: list[Span] = []
    issues: list[Issue] = []
    for span in ordered:
        clash = next((k for k in kept if k.overlaps(span)), None)
        if clash is None:
            kept.append(span)
            continue
        nested = clash.start <= span.start and span.end <= clash.end
        issues.append(_issue(text, span, doc_id, IssueCode.OVERLAP, relation="is nested in" if nested else "overlaps",
                             other=clash.describe()))
    return sorted(kept), issues


def trim_whitespace(text: str, span: Span) -> Span:
    """``span`` without leading/trailing whitespace (any Unicode space); unchanged if it is all whitespace."""
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return span if start == end else Span(start, end, span.label)


def _is_special(offset: tuple[int, int]) -> bool:
    return offset[0] == offset[1]


def _is_continuation(word_ids: Sequence[int | None] | None, i: int) -> bool:
    return bool(word_ids) and i > 0 and word_ids[i] is not None and word_ids[i] == word_ids[i - 1]


def spans_to_bio(
    text: str,
    offsets: Offsets,
    spans: Sequence[Span],
    word_ids: Sequence[int | None] | None = None,
    config: AlignConfig | None = None,
    doc_id: Any = None,
) -> tuple[list[str | None], list[Issue]]:
    """Tag each token ``O``, ``B-X``, ``I-X`` or ``None`` (ignored), and report what could not be aligned exactly."""
    config = config or AlignConfig()
    kept, issues = resolve_overlaps(text, spans, doc_id)
    tags: list[str | None] = []
    for i, off in enumerate(offsets):
        if _is_special(off) or (not config.label_all_subtokens and _is_continuation(word_ids, i)):
            tags.append(None)
        else:
            tags.append(OUTSIDE)
    content = [i for i, (s, e) in enumerate(offsets) if s < e]  # tokenizer offsets ascend over content tokens
    ends = [offsets[i][1] for i in content]
    for span in kept:
        hit = []
        for k in range(bisect_right(ends, span.start), len(content)):
            i = content[k]
            if offsets[i][0] >= span.end:
                break
            hit.append(i)
        if not hit:
            issues.append(_issue(text, span, doc_id, IssueCode.SPAN_WITHOUT_TOKENS,
                                 reason="covers no token (only whitespace or characters the tokenizer drops)",
                                 fix="widen or delete the span in Label Studio"))
            continue
        first, last = hit[0], hit[-1]
        cut_start, cut_end = offsets[first][0] < span.start, offsets[last][1] > span.end
        if cut_start or cut_end:
            hit, issue = _partial(text, span, offsets, hit, cut_start, cut_end, config, doc_id)
            issues.append(issue)
            if not hit:
                continue
        for n, i in enumerate(hit):
            if n == 0:
                tags[i] = f"B-{span.label}"
            elif config.label_all_subtokens or not _is_continuation(word_ids, i):
                tags[i] = f"I-{span.label}"
    return tags, issues


def _issue(text: str, span: Span, doc_id: Any, code: IssueCode, **fields: Any) -> Issue:
    return Issue.of(code, task=_where(doc_id), span=span.as_tuple(), snippet=snippet(text, span.start, span.end),
                    where=_where(doc_id), span_text=span.describe(text), **fields)


def _partial(
    text: str, span: Span, offsets: Offsets, hit: list[int], cut_start: bool, cut_end: bool,
    config: AlignConfig, doc_id: Any,
) -> tuple[list[int], Issue]:
    edge_tok = hit[0] if cut_start else hit[-1]
    s, e = offsets[edge_tok]
    edge = "starts" if cut_start else "ends"
    token = {"edge": edge, "token": text[s:e], "token_start": s, "token_end": e}
    if config.partial_token == "expand":
        new_start, new_end = offsets[hit[0]][0], offsets[hit[-1]][1]
        action = (f"tagged as ({new_start}, {new_end}) by expanding to token boundaries. Fix it in Label Studio or "
                  "keep the expanded span")
        return hit, _issue(text, span, doc_id, IssueCode.PARTIAL_TOKEN, action=action, **token)
    inner = [i for i in hit if offsets[i][0] >= span.start and offsets[i][1] <= span.end]
    if not inner:
        reason = (f"{edge} inside token {text[s:e]!r} ({s}-{e}) and no token lies wholly inside it "
                  "(partial_token='shrink')")
        return [], _issue(text, span, doc_id, IssueCode.SPAN_WITHOUT_TOKENS, reason=reason,
                          fix="fix it in Label Studio or use partial_token='expand'")
    action = "only the tokens wholly inside it are tagged (partial_token='shrink')"
    return inner, _issue(text, span, doc_id, IssueCode.PARTIAL_TOKEN, action=action, **token)


def bio_to_spans(
    tags: Sequence[str | None], offsets: Offsets, word_ids: Sequence[int | None] | None = None
) -> list[Span]:
    """Inverse of :func:`spans_to_bio`: contiguous ``B-X I-X ...`` runs become character spans.

    A stray ``I-X`` (no open entity of label X) starts a new entity. An ignored (``None``) continuation sub-token
    extends the open entity; an ignored special token closes it.
    """
    spans: list[Span] = []
    cur: list[Any] | None = None  # [start, end, label]
    for i, (tag, off) in enumerate(zip(tags, offsets, strict=True)):
        if tag is None:
            if cur is not None and not _is_special(off) and _is_continuation(word_ids, i):
                cur[1] = off[1]
            elif cur is not None and _is_special(off):
                spans.append(Span(cur[0], cur[1], cur[2]))
                cur = None
            continue
        if tag == OUTSIDE:
            if cur is not None:
                spans.append(Span(cur[0], cur[1], cur[2]))
                cur = None
            continue
        prefix, _, label = tag.partition("-")
        if prefix == "I" and cur is not None and cur[2] == label:
            cur[1] = off[1]
            continue
        if cur is not None:
            spans.append(Span(cur[0], cur[1], cur[2]))
        cur = [off[0], off[1], label]
    if cur is not None:
        spans.append(Span(cur[0], cur[1], cur[2]))
    return spans


def make_windows(
    n_tokens: int, max_length: int, stride: int, word_ids: Sequence[int | None] | None = None
) -> list[tuple[int, int]]:
    """Content-token ranges ``[start, end)`` of the windows for a document of ``n_tokens`` tokens.

    Each window holds at most ``max_length - 2`` content tokens (room for ``[CLS]``/``[SEP]``); consecutive
    windows overlap by ``stride`` tokens (more when a window is pulled back to end on a word boundary).
    Every token is in at least one window; an empty document gives one empty window.
    """
    content = max_length - 2
    if content < 1 or not 0 <= stride < content:
        raise ReportLensError(f"Cannot window with max_length={max_length}, stride={stride}.")
    if n_tokens <= content:
        return [(0, n_tokens)]
    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + content, n_tokens)
        if end < n_tokens and word_ids:
            back = end
            while back > start + stride + 1 and _is_continuation(word_ids, back):
                back -= 1
            end = back if not _is_continuation(word_ids, back) else end
        windows.append((start, end))
        if end >= n_tokens:
            return windows
        start = max(end - stride, start + 1)


def build_windows(
    doc: TokenizedDoc,
    tags: Sequence[str | None],
    schema: LabelSchema,
    config: AlignConfig,
    cls: tuple[int, str],
    sep: tuple[int, str],
) -> list[Window]:
    """Cut a tagged document into model inputs ``[CLS] content [SEP]`` (see :func:`make_windows`)."""
    label2id = schema.label2id
    out: list[Window] = []
    for index, (a, b) in enumerate(make_windows(len(doc), config.max_length, config.stride, doc.word_ids)):
        win_tags = [None, *tags[a:b], None]
        label_ids = []
        for t in win_tags:
            if t is None:
                label_ids.append(IGNORE_INDEX)
            elif t in label2id:
                label_ids.append(label2id[t])
            else:
                raise ReportLensError(
                    f"{_where(doc.doc_id)}: tag {t!r} is not in the label schema {list(schema.labels)}; "
                    "rebuild the schema from the project's labels."
                )
        out.append(
            Window(
                doc_id=doc.doc_id,
                index=index,
                token_start=a,
                token_end=b,
                text_start=doc.offsets[a][0] if b > a else 0,
                input_ids=(cls[0], *doc.input_ids[a:b], sep[0]),
                tokens=(cls[1], *doc.tokens[a:b], sep[1]),
                offsets=((0, 0), *doc.offsets[a:b], (0, 0)),
                tags=tuple(win_tags),
                label_ids=tuple(label_ids),
            )
        )
    return out


def merge_window_probs(
    n_tokens: int, windows: Sequence[tuple[int, int]], window_probs: Sequence[np.ndarray]
) -> np.ndarray:
    """Per-token probabilities for the whole document from per-window ones (content tokens only, no specials).

    Each token takes the row of the window where it has the most context (min distance to a window edge);
    ties go to the earlier window.
    """
    if len(windows) != len(window_probs):
        raise ValueError(f"{len(windows)} windows but {len(window_probs)} probability arrays.")
    if not window_probs:
        raise ValueError("No windows to merge.")
    n_labels = window_probs[0].shape[-1]
    out = np.zeros((n_tokens, n_labels), dtype=np.float32)
    best = np.full(n_tokens, -1, dtype=np.int64)
    for (a, b), probs in zip(windows, window_probs, strict=True):
        if probs.shape != (b - a, n_labels):
            raise ValueError(f"Window ({a}, {b}) needs probabilities of shape {(b - a, n_labels)}, not {probs.shape}.")
        pos = np.arange(a, b)
        context = np.minimum(pos - a, b - 1 - pos)
        better = context > best[a:b]
        out[a:b][better] = probs[better]
        best[a:b] = np.where(better, context, best[a:b])
    return out


def probs_to_spans(
    probs: np.ndarray,
    offsets: Offsets,
    schema: LabelSchema,
    word_ids: Sequence[int | None] | None = None,
    label_all_subtokens: bool = True,
    decode: DecodeConfig | None = None,
) -> list[tuple[Span, float]]:
    """Decode per-token probabilities (content tokens) into spans with scores (:mod:`core.decoding`).

    Each word's distribution is aggregated from its pieces and the word tags are decoded as valid BIO (default),
    so an entity starts and ends on word boundaries. A span's score, in [0, 1], is the mean over its words of the
    probability of the tag chosen for the word (``B-X`` or ``I-X``) in the word's aggregated distribution.
    """
    if len(probs) != len(offsets):
        raise ValueError(f"{len(probs)} rows of probabilities for {len(offsets)} tokens.")
    if not len(probs):
        return []
    decode = decode or DecodeConfig()
    how = decode.aggregation_for(label_all_subtokens)
    starts = word_starts(len(probs), word_ids, how)
    word_probs = aggregate(probs, starts, how)
    path = decode_words(word_probs, schema.tags, decode.decoding)
    chosen = word_probs[np.arange(len(path)), path]
    bounds = np.array([(offsets[a][0], offsets[b - 1][1]) for a, b in zip(starts, [*starts[1:], len(probs)],
                                                                           strict=True)]).reshape(-1, 2)
    spans = bio_to_spans([schema.id2label[int(t)] for t in path], [tuple(b) for b in bounds.tolist()])
    return [(span, float(chosen[(bounds[:, 0] >= span.start) & (bounds[:, 1] <= span.end)].mean()))
            for span in spans]
