"""Run an exported ONNX model (``cli.py export --format onnx``) with onnxruntime and the ``tokenizers`` package only.

No torch, no transformers: this module and what it imports (:mod:`training.runtime`, :mod:`training.encoding`'s
window preparation, :mod:`training.artifacts`, ``core``) load none of them at import time, and the functions used
here never call the ones that would (``pyproject.toml``'s import-linter contract; ``tests/unit/test_onnx.py`` runs a
prediction in a subprocess where ``import torch`` fails). So a CPU server needs ``onnxruntime``, ``tokenizers`` and
``numpy`` to run a ReportLens model, with the same windows, merging and decoding as the torch path.

    model = load_onnx("data/models/1/job-3-onnx")            # or variant="int8"
    model.predict_detailed([(0, "Sinus rhythm, heart rate 72 bpm.")])  # -> [DocPrediction]

The export folder: ``model.onnx`` (fp32; inputs ``input_ids``/``attention_mask`` int64 ``(batch, sequence)``,
outputs ``logits`` ``(batch, sequence, tags)`` and ``last_hidden_state``), optionally ``model.int8.onnx``,
``tokenizer.json`` (+ the transformers tokenizer files), ``label_schema.json``, ``train_config.json``,
``metrics.json``, ``model_card.json`` (what the loader reads: files, special tokens) and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.trainconfig import TrainConfig
from core.types import LabelSchema, ReportLensError, Span
from training.artifacts import read_model_info
from training.runtime import DocPrediction, Runtime, predict_with

CARD_FILE = "model_card.json"
CARD_MD = "MODEL_CARD.md"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_FORMAT = "reportlens-onnx"
VARIANTS = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
THREADS_ENV = "REPORTLENS_ONNX_THREADS"
SPIN_ENV = "REPORTLENS_ONNX_SPIN"  # "1": let idle intra-op threads spin (a dedicated server)


RUNTIMES = ("torch", "onnx", "onnx-int8")


def onnx_dir_for(model_dir: str | Path) -> Path:
    """Where a version's ONNX export lives: beside its folder, ``<folder>-onnx``."""
    p = Path(model_dir)
    return p.parent / f"{p.name}-onnx"


def export_choice(model_dir: str | Path | None, runtime: str) -> tuple[Path, str]:
    """``(export folder, variant)`` for a runtime choice other than ``torch``: ``onnx`` / ``onnx-int8`` (the
    version's export, :func:`onnx_dir_for`), or an export folder (``[onnx-int8:]FOLDER``)."""
    variant = "int8" if runtime.startswith("onnx-int8") else "fp32"
    name, _, given = runtime.partition(":") if runtime.startswith(("onnx:", "onnx-int8:")) else (runtime, "", "")
    if name in ("onnx", "onnx-int8") and not given:
        if model_dir is None:
            raise ReportLensError(f"--runtime {runtime} needs a model version (or give an export folder).")
        folder = onnx_dir_for(model_dir)
        if not is_onnx_export(folder):
            raise ReportLensError(f"Model {Path(model_dir).name} has no ONNX export yet ({folder}); write it with "
                                  "`cli.py export --model VERSION --format onnx` (add --int8 for onnx-int8) or the "
                                  "Models page.")
        return folder, variant
    folder = Path(given or runtime)
    if not folder.is_dir():
        raise ReportLensError(f"Unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)} or an ONNX export "
                              "folder.")
    return folder, variant


class OnnxRuntime(Runtime):
    """An ONNX token classifier under onnxruntime (CPU). ``threads``: intra-op threads (default
    ``$REPORTLENS_ONNX_THREADS``, else onnxruntime's own choice, one per physical core); ``optimization``: the
    graph optimisation level (``all``, ``extended``, ``basic``, ``none``)."""

    name = "onnx"

    def __init__(self, path: str | Path, threads: int | None = None, optimization: str = "all") -> None:
        import onnxruntime as ort

        levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
        if optimization not in levels:
            raise ReportLensError(f"Unknown graph optimisation level {optimization!r}; use one of {', '.join(levels)}.")
        opts = ort.SessionOptions()
        threads = threads if threads is not None else int(os.environ.get(THREADS_ENV, "0") or 0)
        opts.intra_op_num_threads = max(int(threads), 0)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = levels[optimization]
        opts.log_severity_level = 3
        # no busy-waiting between ops: on cores shared with other processes spinning threads steal the time the
        # work needs (measured: 2 spinning threads slower than 1 on the shared 2-core machine)
        opts.add_session_config_entry("session.intra_op.allow_spinning", os.environ.get(SPIN_ENV, "0"))
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ReportLensError(f"onnxruntime could not load {path}: {exc}. Export the model again with "
                                  "`cli.py export --model VERSION --format onnx`.") from exc
        self.path = str(path)
        self.outputs = [o.name for o in self.session.get_outputs()]

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    def forward_hidden(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if "last_hidden_state" not in self.outputs:
            return super().forward_hidden(input_ids, attention_mask)
        logits, hidden = self.session.run(["logits", "last_hidden_state"],
                                          {"input_ids": input_ids, "attention_mask": attention_mask})
        return logits, hidden


class _Batch:
    """What :func:`training.encoding.tokenize_documents` reads from a transformers ``BatchEncoding``."""

    def __init__(self, encodings: list[Any]) -> None:
        self._enc = encodings
        self._data = {"input_ids": [e.ids for e in encodings], "offset_mapping": [e.offsets for e in encodings]}

    def __getitem__(self, key: str) -> list[Any]:
        return self._data[key]

    def tokens(self, j: int) -> list[str]:
        return self._enc[j].tokens

    def word_ids(self, j: int) -> list[int | None]:
        return self._enc[j].word_ids


class FastTokenizer:
    """A ``tokenizers.Tokenizer`` (``tokenizer.json``) with the part of the transformers fast-tokenizer interface
    that window preparation uses; no special tokens are added, nothing is truncated or padded, as in training."""

    def __init__(self, path: str | Path, special: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        self.backend = Tokenizer.from_file(str(path))
        self.backend.no_truncation()
        self.backend.no_padding()
        try:
            (self.cls_token_id, self.cls_token), (self.sep_token_id, self.sep_token) = special["cls"], special["sep"]
            self.pad_token_id, self.pad_token = special["pad"]
            self.unk_token = special["unk"][1]
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportLensError(f"{CARD_FILE} lacks the special tokens (cls, sep, pad, unk: [id, token]) ({exc}); "
                                  "export the model again.") from None

    def __call__(self, texts: list[str], add_special_tokens: bool = False, **_ignored: Any) -> _Batch:
        return _Batch(self.backend.encode_batch(list(texts), add_special_tokens=add_special_tokens))


def read_card(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        raise ReportLensError(f"{folder} is not a ReportLens ONNX export (no {CARD_FILE}); write one with "
                              "`cli.py export --model VERSION --format onnx`.")
    card = json.loads(path.read_text(encoding="utf-8"))
    if card.get("format") != EXPORT_FORMAT:
        raise ReportLensError(f"{path} is not a ReportLens ONNX model card (format {card.get('format')!r}).")
    return card


def is_onnx_export(folder: str | Path | None) -> bool:
    return folder is not None and (Path(folder) / CARD_FILE).is_file() and (Path(folder) / VARIANTS["fp32"]).is_file()


@dataclass(frozen=True)
class OnnxModel:
    """An exported model ready to predict, with the interface of :class:`training.inference.LoadedModel` that
    prediction callers use (``predict``, ``predict_detailed``, ``schema``, ``config``, ``task``)."""

    runtime: OnnxRuntime
    tokenizer: FastTokenizer
    schema: LabelSchema
    config: TrainConfig
    model_dir: str
    card: dict[str, Any]
    variant: str = "fp32"

    @property
    def task(self) -> str:
        return self.config.task

    def predict_detailed(self, docs: list[tuple[Any, str]], batch_size: int = 32) -> list[DocPrediction]:
        return predict_with(self.runtime, self.tokenizer, docs, self.schema, self.config.align(), batch_size)

    def predict(self, docs: list[tuple[Any, str]], batch_size: int = 32) -> list[list[tuple[Span, float]]]:
        return [p.spans for p in self.predict_detailed(docs, batch_size)]


def _load(folder: str, variant: str, threads: int | None, optimization: str) -> OnnxModel:
    card = read_card(folder)
    if variant not in VARIANTS:
        raise ReportLensError(f"Unknown ONNX variant {variant!r}; use one of {', '.join(VARIANTS)}.")
    path = Path(folder) / card.get("files", {}).get(variant, VARIANTS[variant])
    if not path.is_file():
        hint = " (export with --int8 to add it)" if variant == "int8" else ""
        raise ReportLensError(f"{folder} has no {variant} model ({path.name}){hint}.")
    schema, _scheme, config = read_model_info(folder)
    if config.task != "ner":
        raise ReportLensError(f"{folder} holds a {config.task!r} model; the ONNX runtime runs NER models only.")
    tokenizer = FastTokenizer(Path(folder) / TOKENIZER_FILE, card.get("special_tokens") or {})
    return OnnxModel(OnnxRuntime(path, threads, optimization), tokenizer, schema, config, folder, card, variant)


@lru_cache(maxsize=4)
def _cached(folder: str, variant: str, threads: int | None, optimization: str) -> OnnxModel:
    return _load(folder, variant, threads, optimization)


def load_onnx(folder: str | Path, variant: str = "fp32", threads: int | None = None,
              optimization: str = "all") -> OnnxModel:
    """An ONNX export folder, loaded once per process (four at a time) per variant and session settings."""
    return _cached(str(Path(folder).resolve()), variant, threads, optimization)


def clear_onnx_cache() -> None:
    _cached.cache_clear()
