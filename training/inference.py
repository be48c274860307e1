"""Predictions from a trained model: windowed exactly like training, merged per document, decoded to spans.

Documents are never truncated: each is cut into the windows of :func:`core.alignment.make_windows` (the same
``max_length``/``stride`` as in training), windows of all documents are batched longest first (little padding), and
each token takes the probabilities of the window where it has the most context
(:func:`core.alignment.merge_window_probs`). Decoding (:func:`core.alignment.probs_to_spans`) keeps adjacent
entities of the same label apart when the model tags the second one ``B-``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.alignment import AlignConfig, TokenizedDoc, Window, build_windows, merge_window_probs, probs_to_spans
from core.types import LabelSchema, ReportLensError, Span
from training.config import TrainConfig
from training.encoding import load_tokenizer, tokenize_documents

SCHEMA_FILE = "label_schema.json"
CONFIG_FILE = "train_config.json"
METRICS_FILE = "metrics.json"
ADAPTER_FILE = "adapter_config.json"


@dataclass(frozen=True)
class PreparedDoc:
    """A tokenized document and its model windows (no labels)."""

    doc: TokenizedDoc
    windows: tuple[Window, ...]


@dataclass(frozen=True)
class DocPrediction:
    """Per-token probabilities (content tokens, ``(n_tokens, n_tags)``) and the decoded spans with scores."""

    doc_id: Any
    offsets: tuple[tuple[int, int], ...]
    word_ids: tuple[int | None, ...]
    probs: np.ndarray
    spans: list[tuple[Span, float]]


def schema_of(model: Any) -> LabelSchema:
    """The label schema a token-classification model was built with (from its ``id2label``)."""
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    tags = [id2label[i] for i in range(len(id2label))]
    schema = LabelSchema(tuple(t[2:] for t in tags[1::2]))
    if tuple(tags) != schema.tags:
        raise ReportLensError(f"The model's labels {tags} are not a ReportLens BIO tag set (O, B-X, I-X, ...); "
                              "use a model trained by ReportLens.")
    return schema


def prepare_documents(tokenizer: Any, docs: Sequence[tuple[Any, str]], align: AlignConfig) -> list[PreparedDoc]:
    cls = (tokenizer.cls_token_id, tokenizer.cls_token)
    sep = (tokenizer.sep_token_id, tokenizer.sep_token)
    empty = LabelSchema(())
    out = []
    for tdoc in tokenize_documents(tokenizer, docs):
        windows = build_windows(tdoc, [None] * len(tdoc), empty, align, cls, sep)
        out.append(PreparedDoc(tdoc, tuple(windows)))
    return out


@dataclass(frozen=True)
class WindowBatch:
    """Windows of several documents padded to the longest: ``keys`` are ``(document index, window index)``."""

    keys: list[tuple[int, int]]
    windows: list[Window]
    input_ids: Any  # torch.LongTensor (batch, width)
    attention_mask: Any


def window_batches(prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
                   device: Any = None) -> Iterator[WindowBatch]:
    """Every window of ``prepared``, longest first (little padding), in padded batches of ``batch_size``."""
    import torch

    if batch_size < 1:
        raise ReportLensError(f"batch_size must be >= 1; got {batch_size}.")
    items = [(d, w) for d, p in enumerate(prepared) for w in range(len(p.windows))]
    items.sort(key=lambda dw: (-len(prepared[dw[0]].windows[dw[1]].input_ids), dw))
    for b in range(0, len(items), batch_size):
        batch = items[b : b + batch_size]
        wins = [prepared[d].windows[w] for d, w in batch]
        width = max(len(win.input_ids) for win in wins)
        ids = torch.full((len(wins), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(wins), width), dtype=torch.long)
        for i, win in enumerate(wins):
            ids[i, : len(win.input_ids)] = torch.tensor(win.input_ids)
            mask[i, : len(win.input_ids)] = 1
        yield WindowBatch(batch, wins, ids.to(device) if device is not None else ids,
                          mask.to(device) if device is not None else mask)


def window_probabilities(
    model: Any, prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
    should_stop: Callable[[], bool] | None = None,
) -> list[np.ndarray] | None:
    """Merged per-token probabilities per document; ``None`` if ``should_stop()`` turned true between batches."""
    import torch

    per_window: dict[tuple[int, int], np.ndarray] = {}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for wb in window_batches(prepared, pad_id, batch_size, device):
                if should_stop is not None and should_stop():
                    return None
                batch, wins = wb.keys, wb.windows
                logits = model(input_ids=wb.input_ids, attention_mask=wb.attention_mask).logits
                probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
                for i, (key, win) in enumerate(zip(batch, wins, strict=True)):
                    per_window[key] = probs[i, 1 : len(win.input_ids) - 1]
    finally:
        model.train(was_training)
    out = []
    for d, p in enumerate(prepared):
        ranges = [(w.token_start, w.token_end) for w in p.windows]
        out.append(merge_window_probs(len(p.doc), ranges, [per_window[(d, w)] for w in range(len(p.windows))]))
    return out


def decode(prepared: Sequence[PreparedDoc], probs: Sequence[np.ndarray], schema: LabelSchema,
           align: AlignConfig) -> list[DocPrediction]:
    out = []
    for p, pr in zip(prepared, probs, strict=True):
        spans = probs_to_spans(pr, p.doc.offsets, schema, p.doc.word_ids, align.label_all_subtokens)
        out.append(DocPrediction(p.doc.doc_id, p.doc.offsets, p.doc.word_ids, pr, spans))
    return out


def predict_detailed(
    model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: TrainConfig, batch_size: int = 32
) -> list[DocPrediction]:
    """Per-document token probabilities and spans (for uncertainty scores and explanations)."""
    align = config.align()
    prepared = prepare_documents(tokenizer, docs, align)
    probs = window_probabilities(model, prepared, tokenizer.pad_token_id or 0, batch_size)
    assert probs is not None  # no should_stop given
    return decode(prepared, probs, schema_of(model), align)


def predict_documents(
    model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: TrainConfig, batch_size: int = 32
) -> list[list[tuple[Span, float]]]:
    """Spans with scores (mean top probability of their tokens) for each ``(id, text)``, in input order."""
    return [p.spans for p in predict_detailed(model, tokenizer, docs, config, batch_size)]


# ---------------------------------------------------------------------- saved models


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    tokenizer: Any
    schema: LabelSchema
    config: TrainConfig
    model_dir: str

    @property
    def task(self) -> str:
        return self.config.task

    def predict_classes(self, docs: Sequence[tuple[Any, str]], batch_size: int = 32) -> list[dict[str, float]]:
        """Classification models: class -> probability per document (most likely first)."""
        from training.classify import predict_classes

        if self.task != "classification":
            raise ReportLensError("This is a token-classification (NER) model; use predict() for entity spans.")
        return predict_classes(self.model, self.tokenizer, docs, self.config, batch_size)

    def predict(self, docs: Sequence[tuple[Any, str]], batch_size: int = 32) -> list[list[tuple[Span, float]]]:
        self._require_ner()
        return predict_documents(self.model, self.tokenizer, docs, self.config, batch_size)

    def _require_ner(self) -> None:
        if self.task == "classification":
            raise ReportLensError("This is a document classification model: it predicts choices, not entity spans; "
                                  "use predict_classes().")

    def predict_detailed(self, docs: Sequence[tuple[Any, str]], batch_size: int = 32) -> list[DocPrediction]:
        self._require_ner()
        return predict_detailed(self.model, self.tokenizer, docs, self.config, batch_size)


def read_model_files(model_dir: str | Path) -> tuple[LabelSchema, TrainConfig]:
    path = Path(model_dir)
    missing = [f for f in (SCHEMA_FILE, CONFIG_FILE) if not (path / f).is_file()]
    if missing:
        raise ReportLensError(f"{path} is not a ReportLens model folder (missing {', '.join(missing)}); point to the "
                              "folder a training job saved.")
    schema = LabelSchema.from_json((path / SCHEMA_FILE).read_text(encoding="utf-8"))
    config = TrainConfig.from_dict(json.loads((path / CONFIG_FILE).read_text(encoding="utf-8")))
    return schema, config


def _load(model_dir: str, attn_implementation: str | None) -> LoadedModel:
    from transformers import AutoModelForTokenClassification

    from training.model import _quiet_load, load_base_model

    schema, config = read_model_files(model_dir)
    attn = attn_implementation or config.attn_implementation
    if config.task == "classification":
        return _load_classifier(model_dir, schema, config, attn)
    if (Path(model_dir) / ADAPTER_FILE).is_file():
        from peft import PeftModel

        base = load_base_model(config.base_model, schema, attn)
        model = _quiet_load(PeftModel.from_pretrained, base, model_dir)
    else:
        model = _quiet_load(AutoModelForTokenClassification.from_pretrained, model_dir, attn_implementation=attn,
                            local_files_only=True)
    if schema_of(model) != schema:
        raise ReportLensError(f"{model_dir}: the model's labels differ from {SCHEMA_FILE}; the folder is damaged.")
    model.eval()
    return LoadedModel(model, load_tokenizer(model_dir), schema, config, model_dir)


def _load_classifier(model_dir: str, schema: LabelSchema, config: TrainConfig, attn: str) -> LoadedModel:
    from transformers import AutoModelForSequenceClassification

    from training.classify import load_base_classifier, model_classes
    from training.model import _quiet_load

    if (Path(model_dir) / ADAPTER_FILE).is_file():
        from peft import PeftModel

        base = load_base_classifier(config.base_model, schema.labels, config.label_mode == "multi", attn)
        model = _quiet_load(PeftModel.from_pretrained, base, model_dir)
    else:
        model = _quiet_load(AutoModelForSequenceClassification.from_pretrained, model_dir, attn_implementation=attn,
                            local_files_only=True)
    if tuple(model_classes(model)) != schema.labels:
        raise ReportLensError(f"{model_dir}: the model's classes differ from {SCHEMA_FILE}; the folder is damaged.")
    model.eval()
    return LoadedModel(model, load_tokenizer(model_dir), schema, config, model_dir)


@lru_cache(maxsize=2)
def _cached(model_dir: str, attn_implementation: str | None) -> LoadedModel:
    return _load(model_dir, attn_implementation)


def load_model(model_dir: str | Path, attn_implementation: str | None = None) -> LoadedModel:
    """A saved model (adapter on its base, or a full model) with its tokenizer, schema and config; cached per process
    (two at a time). ``attn_implementation="eager"`` for attention maps."""
    return _cached(str(Path(model_dir).resolve()), attn_implementation)


def clear_model_cache() -> None:
    _cached.cache_clear()


def export_merged(model_dir: str | Path, out_dir: str | Path) -> Path:
    """Write a standalone model folder (LoRA merged into the base weights) that plain ``transformers`` loads, e.g.
    ``pipeline("token-classification", model=out_dir)``; the ReportLens files are copied along."""
    src, out = Path(model_dir).resolve(), Path(out_dir)
    loaded = _load(str(src), None)  # uncached: merging changes the model in place
    model = loaded.model.merge_and_unload() if (src / ADAPTER_FILE).is_file() else loaded.model
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    loaded.tokenizer.save_pretrained(out)
    for name in (SCHEMA_FILE, CONFIG_FILE, METRICS_FILE):
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    return out
