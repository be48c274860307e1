"""The files of a saved model version: adapter or weights, tokenizer, label schema, config, metrics.

The label schema file records its ``scheme``: how the labels map to the model's outputs. ``"BIO"`` (token
classification: ``O``, ``B-X``, ``I-X`` per label) or ``"document"`` (one output per label, document
classification). A schema written before the field existed is BIO; a scheme this version does not know is refused
with a clear error rather than decoded wrongly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.trainconfig import TrainConfig
from core.types import LabelSchema, ReportLensError

SCHEMA_FILE = "label_schema.json"
CONFIG_FILE = "train_config.json"
METRICS_FILE = "metrics.json"
ADAPTER_FILE = "adapter_config.json"

BIO = "BIO"
DOCUMENT = "document"
SCHEMES = (BIO, DOCUMENT)
LEGACY_SCHEME = BIO  # schemas saved before "scheme" was recorded


def schema_json(schema: LabelSchema, scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ReportLensError(f"Unknown label scheme {scheme!r}; known schemes: {', '.join(SCHEMES)}.")
    return json.dumps({"labels": list(schema.labels), "scheme": scheme})


def parse_schema(text: str, where: str = SCHEMA_FILE) -> tuple[LabelSchema, str]:
    """``(schema, scheme)`` from a label schema file's text; no ``scheme`` field means BIO."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportLensError(f"{where} is not valid JSON ({exc}); the model folder is damaged, retrain it.") from None
    if not isinstance(data, dict) or not isinstance(data.get("labels"), list):
        raise ReportLensError(f"{where} has no 'labels' list; the model folder is damaged, retrain it.")
    scheme = data.get("scheme", LEGACY_SCHEME)
    if scheme not in SCHEMES:
        raise ReportLensError(
            f"{where} uses label scheme {scheme!r}, which this version of ReportLens cannot read (it knows "
            f"{', '.join(SCHEMES)}). Upgrade ReportLens, or retrain the model with this version.")
    return LabelSchema(tuple(data["labels"])), scheme


def read_model_files(model_dir: str | Path) -> tuple[LabelSchema, TrainConfig]:
    """The label schema and training config of a saved model folder."""
    schema, _, config = read_model_info(model_dir)
    return schema, config


def read_model_info(model_dir: str | Path) -> tuple[LabelSchema, str, TrainConfig]:
    """``(schema, scheme, config)`` of a saved model folder; clear errors for a folder that is not one."""
    path = Path(model_dir)
    missing = [f for f in (SCHEMA_FILE, CONFIG_FILE) if not (path / f).is_file()]
    if missing:
        raise ReportLensError(f"{path} is not a ReportLens model folder (missing {', '.join(missing)}); point to the "
                              "folder a training job saved.")
    schema, scheme = parse_schema((path / SCHEMA_FILE).read_text(encoding="utf-8"), str(path / SCHEMA_FILE))
    config = TrainConfig.from_dict(json.loads((path / CONFIG_FILE).read_text(encoding="utf-8")))
    return schema, scheme, config


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")


def save_model(out: Path, model: Any, tokenizer: Any, schema: LabelSchema, scheme: str, config: TrainConfig,
               metrics: dict[str, Any]) -> None:
    """Write a model version folder: weights (or adapter), tokenizer, label schema, config and metrics."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / SCHEMA_FILE).write_text(schema_json(schema, scheme), encoding="utf-8")
    (out / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=1), encoding="utf-8")
    write_json(out / METRICS_FILE, metrics)


ADAPT_FILE = "adapt.json"  # what an adaptation writes beside the adapted base model (training.adapt)


def added_vocab_rows(model_dir: str | Path) -> range:
    """The embedding rows that adaptations added to ``model_dir``'s vocabulary (from its ``adapt.json``, and its
    parents' when it was adapted from an adapted base, so rows added two steps back count too); empty for any other
    model folder."""
    start = stop = None
    path, seen = Path(model_dir), set()
    while (path / ADAPT_FILE).is_file() and path.resolve() not in seen:
        seen.add(path.resolve())
        try:
            data = json.loads((path / ADAPT_FILE).read_text(encoding="utf-8"))
            vocab = data.get("vocab") or {}
            before, after = int(vocab["vocab_before"]), int(vocab["vocab_after"])
        except (ValueError, KeyError, TypeError, AttributeError):
            break
        start, stop = before, stop if stop is not None else after
        path = Path(str(data.get("parent") or ""))
    return range(start, stop) if start is not None and stop is not None else range(0)
