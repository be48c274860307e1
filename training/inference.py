"""Predictions from a saved model version: :func:`load_model` (cached), :class:`LoadedModel`, :func:`export_merged`.

A folder is read back through its task (``train_config.json``'s ``task``, looked up in :data:`training.tasks.TASKS`),
so a new task needs nothing here. The windowing and decoding primitives live in :mod:`training.encoding` and
:mod:`training.predict`; they are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.trainconfig import TrainConfig
from core.types import LabelSchema, ReportLensError, Span
from training.artifacts import (
    ADAPTER_FILE,
    CONFIG_FILE,
    LEGACY_SCHEME,
    METRICS_FILE,
    SCHEMA_FILE,
    read_model_files,
    read_model_info,
)
from training.encoding import PreparedDoc, load_tokenizer, prepare_documents
from training.predict import (
    DocPrediction,
    WindowBatch,
    decode,
    predict_detailed,
    predict_documents,
    schema_of,
    window_batches,
    window_probabilities,
)
from training.tasks import get_task

__all__ = [
    "ADAPTER_FILE", "CONFIG_FILE", "METRICS_FILE", "SCHEMA_FILE", "DocPrediction", "LoadedModel", "PreparedDoc",
    "WindowBatch", "clear_model_cache", "decode", "export_merged", "load_model", "load_uncached", "predict_detailed",
    "predict_documents", "prepare_documents", "read_model_files", "schema_of", "window_batches",
    "window_probabilities",
]


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    tokenizer: Any
    schema: LabelSchema
    config: TrainConfig
    model_dir: str
    scheme: str = LEGACY_SCHEME

    @property
    def task(self) -> str:
        return self.config.task

    def decode(self, docs: Sequence[tuple[Any, str]], batch_size: int = 32) -> list[Any]:
        """The task's predictions per ``(id, text)``: :class:`DocPrediction` (NER), class -> probability dicts
        (classification), ..."""
        return get_task(self.task).decode(self.model, self.tokenizer, docs, self.config, batch_size)

    def predict_classes(self, docs: Sequence[tuple[Any, str]], batch_size: int = 32) -> list[dict[str, float]]:
        """Classification models: class -> probability per document (most likely first)."""
        if self.task != "classification":
            raise ReportLensError("This is a token-classification (NER) model; use predict() for entity spans.")
        return self.decode(docs, batch_size)

    def predict(self, docs: Sequence[tuple[Any, str]], batch_size: int = 32) -> list[list[tuple[Span, float]]]:
        return [p.spans for p in self.predict_detailed(docs, batch_size)]

    def predict_detailed(self, docs: Sequence[tuple[Any, str]], batch_size: int = 32) -> list[DocPrediction]:
        if self.task == "classification":
            raise ReportLensError("This is a document classification model: it predicts choices, not entity spans; "
                                  "use predict_classes().")
        if self.task != "ner":
            raise ReportLensError(f"This is a {self.task!r} model, not an entity (NER) model; use decode().")
        return self.decode(docs, batch_size)


def _load(model_dir: str, attn_implementation: str | None) -> LoadedModel:
    schema, scheme, config = read_model_info(model_dir)
    attn = attn_implementation or config.attn_implementation
    model = get_task(config.task).load_trained(model_dir, schema, scheme, config, attn)
    return LoadedModel(model, load_tokenizer(model_dir), schema, config, model_dir, scheme)


def load_uncached(model_dir: str | Path) -> LoadedModel:
    """A saved model loaded afresh (not the cached one), for callers that change it, e.g. by merging LoRA."""
    return _load(str(Path(model_dir).resolve()), None)


@lru_cache(maxsize=2)
def _cached(model_dir: str, attn_implementation: str | None) -> LoadedModel:
    loaded = _load(model_dir, attn_implementation)
    return replace(loaded, model=merged_for_inference(loaded.model))


def merged_for_inference(model: Any) -> Any:
    """A LoRA model folded into its base weights (``merge_and_unload``), in eval mode; any other model as it is.
    Fewer, larger matmuls per layer: about 25% less time per report in the API (bench/README.md, "API latency"),
    the same predictions (probabilities within ~1e-5). The cached models of :func:`load_model` are merged; callers
    that need the adapter itself use :func:`load_uncached`."""
    from training.model import is_peft

    if not is_peft(model):
        return model
    merged = model.merge_and_unload()
    merged.eval()
    return merged


def load_model(model_dir: str | Path, attn_implementation: str | None = None) -> LoadedModel:
    """A saved model (its LoRA adapter merged into the base weights, or a full model) with its tokenizer, schema and
    config, ready to predict; cached per process (two at a time). ``attn_implementation="eager"`` for attention
    maps."""
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
