"""Export a saved NER model version to ONNX (LoRA merged first), check it against torch, optionally quantise it.

:func:`export_onnx` writes the folder :mod:`training.onnx_runtime` loads: ``model.onnx`` with dynamic batch and
sequence axes (outputs ``logits`` and ``last_hidden_state``, the latter for the diversity strategies' embeddings),
the tokenizer files, the label schema, config and metrics, and a model card (``model_card.json`` +
``MODEL_CARD.md``: metrics, base model, training data size, date, exporter and opset versions, and the checks).

Exporter: ``torch.onnx.export(..., dynamo=True)`` (the torch.export-based exporter; the TorchScript one,
``dynamo=False``, is deprecated in torch 2.x). Both export the tiny BERT with dynamic axes and reproduce torch's
logits within ~1e-7; dynamo on the bundled MiniLM gives identical entities and token argmax agreement 1.0 (probability
differences < 4e-6); the legacy one also exports the MiniLM (not checked for exactness there). Dynamo is the
default, ``exporter="legacy"`` a fallback for encoders that torch.export cannot trace.

Checks, written into the card: the fp32 model against the merged torch model on ``check_docs`` through the shared
windowed inference (:mod:`training.runtime`): token argmax agreement and identical entity sets. With
``int8=True``: ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, dynamic activations) into
``model.int8.onnx``, and its entity F1 change against fp32 on ``eval_docs`` (the version's test split) next to
both variants' documents/s.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.types import Document, ReportLensError
from training.artifacts import ADAPTER_FILE, CONFIG_FILE, METRICS_FILE, SCHEMA_FILE, write_json
from training.onnx_runtime import (
    CARD_FILE,
    CARD_MD,
    EXPORT_FORMAT,
    TOKENIZER_FILE,
    VARIANTS,
    OnnxRuntime,
    onnx_dir_for,
)
from training.runtime import Runtime, predict_with

OPSET = 18
EXPORTERS = ("dynamo", "legacy")
SAMPLE = "Sinus rhythm, heart rate 72 bpm. No ST elevation."


class _WithHidden:
    """The model's logits and last hidden layer as a plain tuple (what the exporters trace)."""

    @staticmethod
    def wrap(model: Any) -> Any:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
                out = self.inner(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
                return out.logits, out.hidden_states[-1]

        return Wrapped(model).eval()


def _export_graph(model: Any, ids: Any, mask: Any, path: Path, exporter: str, opset: int) -> None:
    import warnings

    import torch

    wrapped = _WithHidden.wrap(model)
    names = {"input_names": ["input_ids", "attention_mask"], "output_names": ["logits", "last_hidden_state"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=2, max=4096)
            shapes = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
            torch.onnx.export(wrapped, (ids, mask), str(path), dynamo=True, dynamic_shapes=shapes,
                              opset_version=opset, external_data=False, verbose=False, **names)
        else:
            axes = {n: {0: "batch", 1: "sequence"} for n in names["input_names"] + names["output_names"]}
            torch.onnx.export(wrapped, (ids, mask), str(path), dynamo=False, dynamic_axes=axes,
                              opset_version=min(opset, 17), **names)


def _special(tokenizer: Any) -> dict[str, list[Any]]:
    return {k: [getattr(tokenizer, f"{k}_token_id"), getattr(tokenizer, f"{k}_token")]
            for k in ("cls", "sep", "pad", "unk")}


def compare(a: Runtime, b: Runtime, tokenizer: Any, docs: Sequence[tuple[Any, str]], schema: Any, align: Any,
            batch_size: int = 32) -> dict[str, Any]:
    """Token argmax agreement and entity-set identity of two runtimes on ``docs`` (same windows and decoding)."""
    pa = predict_with(a, tokenizer, docs, schema, align, batch_size)
    pb = predict_with(b, tokenizer, docs, schema, align, batch_size)
    tokens = agree = same_docs = 0
    max_diff = 0.0
    differing = []
    for x, y in zip(pa, pb, strict=True):
        tokens += len(x.probs)
        if len(x.probs):
            agree += int((x.probs.argmax(-1) == y.probs.argmax(-1)).sum())
            max_diff = max(max_diff, float(np.abs(x.probs - y.probs).max()))
        if {s for s, _ in x.spans} == {s for s, _ in y.spans}:
            same_docs += 1
        else:
            differing.append(x.doc_id)
    return {"documents": len(pa), "tokens": tokens, "token_argmax_agreement": agree / tokens if tokens else 1.0,
            "identical_entity_documents": same_docs, "identical_entities": same_docs == len(pa),
            "max_probability_difference": max_diff, "differing_documents": differing[:20]}


def _speed(runtime: Runtime, tokenizer: Any, docs: Sequence[tuple[Any, str]], schema: Any, align: Any) -> float:
    predict_with(runtime, tokenizer, docs[:8], schema, align)  # warm-up
    t0 = time.perf_counter()
    predict_with(runtime, tokenizer, docs, schema, align, 64)
    return len(docs) / max(time.perf_counter() - t0, 1e-9)


def _f1(runtime: Runtime, tokenizer: Any, docs: Sequence[Document], schema: Any, align: Any) -> dict[str, Any]:
    from core.metrics import evaluate_spans

    preds = predict_with(runtime, tokenizer, [(d.id, d.text) for d in docs], schema, align)
    result = evaluate_spans({d.id: set(d.spans) for d in docs}, {p.doc_id: {s for s, _ in p.spans} for p in preds},
                            {d.id: d.text for d in docs}, max_examples=0)
    return {k: result[k] for k in ("precision", "recall", "f1")}


def export_onnx(model_dir: str | Path, out_dir: str | Path | None = None, *, int8: bool = False,
                exporter: str = "dynamo", opset: int = OPSET, check_docs: Sequence[tuple[Any, str]] = (),
                eval_docs: Sequence[Document] = (), about: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the ONNX export of the NER model saved in ``model_dir`` (default folder: :func:`onnx_dir_for`) and
    return its model card. ``check_docs``: ``(id, text)`` compared torch vs ONNX; ``eval_docs``: gold-annotated
    documents (the test split) for the int8 F1 change; ``about``: version facts for the card."""
    import onnx
    import onnxruntime
    import torch

    from training.inference import load_uncached
    from training.predict import TorchRuntime

    if exporter not in EXPORTERS:
        raise ReportLensError(f"Unknown ONNX exporter {exporter!r}; use one of {', '.join(EXPORTERS)}.")
    src = Path(model_dir).resolve()
    out = Path(out_dir) if out_dir is not None else onnx_dir_for(src)
    loaded = load_uncached(src)  # uncached: merging changes the model in place
    if loaded.task != "ner":
        raise ReportLensError(f"{src} is a {loaded.task!r} model; ONNX export covers NER (token classification) "
                              "models. Use --format merged for this one.")
    model = loaded.model.merge_and_unload() if (src / ADAPTER_FILE).is_file() else loaded.model
    model.eval()
    tok, schema, align = loaded.tokenizer, loaded.schema, loaded.config.align()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    enc = tok([SAMPLE, SAMPLE[:20]], padding=True, return_tensors="pt")
    started = time.monotonic()
    try:
        _export_graph(model, enc["input_ids"], enc["attention_mask"], out / VARIANTS["fp32"], exporter, opset)
    except Exception as exc:  # the exporters raise many types; the message says which and what to do
        shutil.rmtree(out, ignore_errors=True)
        other = "legacy" if exporter == "dynamo" else "dynamo"
        raise ReportLensError(f"ONNX export of {src} with the {exporter} exporter failed: {exc}. Try "
                              f"--exporter {other}.") from exc
    export_s = time.monotonic() - started
    onnx.checker.check_model(str(out / VARIANTS["fp32"]))
    tok.save_pretrained(out)
    if not (out / TOKENIZER_FILE).is_file():
        raise ReportLensError(f"The tokenizer of {src} wrote no {TOKENIZER_FILE}; the ONNX runtime needs a fast "
                              "tokenizer.")
    for name in (SCHEMA_FILE, CONFIG_FILE, METRICS_FILE):
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    torch_rt, fp32 = TorchRuntime(model), OnnxRuntime(out / VARIANTS["fp32"])
    docs = list(check_docs) or [(0, SAMPLE)]
    checks: dict[str, Any] = {"fp32_vs_torch": compare(torch_rt, fp32, tok, docs, schema, align)}
    files = {"fp32": VARIANTS["fp32"]}
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(out / VARIANTS["fp32"]), str(out / VARIANTS["int8"]), weight_type=QuantType.QInt8)
        files["int8"] = VARIANTS["int8"]
        q8 = OnnxRuntime(out / VARIANTS["int8"])
        checks["int8_vs_fp32"] = compare(fp32, q8, tok, docs, schema, align)
        speed_docs = [(d.id, d.text) for d in eval_docs] or docs
        checks["speed_docs_per_s"] = {"documents": len(speed_docs),
                                      "fp32": round(_speed(fp32, tok, speed_docs, schema, align), 1),
                                      "int8": round(_speed(q8, tok, speed_docs, schema, align), 1)}
        if eval_docs:
            f32, f8 = _f1(fp32, tok, eval_docs, schema, align), _f1(q8, tok, eval_docs, schema, align)
            checks["int8_test_f1"] = {"documents": len(eval_docs), "fp32": f32, "int8": f8,
                                      "f1_change": round(f8["f1"] - f32["f1"], 4)}
    metrics = json.loads((src / METRICS_FILE).read_text(encoding="utf-8")) if (src / METRICS_FILE).is_file() else {}
    card = {
        "format": EXPORT_FORMAT, "format_version": 1, "files": files, "special_tokens": _special(tok),
        "inputs": ["input_ids", "attention_mask"], "outputs": ["logits", "last_hidden_state"],
        "dynamic_axes": {"batch": 0, "sequence": 1}, "labels": list(schema.labels), "tags": list(schema.tags),
        "task": loaded.task, "base_model": loaded.config.base_model, "method": loaded.config.method,
        "max_length": align.max_length, "stride": align.stride, "source_model_dir": str(src),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "exporter": {"name": f"torch.onnx.export(dynamo={exporter == 'dynamo'})", "torch": torch.__version__,
                     "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "opset": _opset(out),
                     "export_s": round(export_s, 1)},
        "training_data": {k: (metrics.get("split") or {}).get(k) for k in ("train", "dev", "test")}
        | {"train_windows": (metrics.get("speed") or {}).get("train_windows")},
        "metrics": {s: {k: (metrics.get(s) or {}).get(k) for k in ("precision", "recall", "f1")}
                    for s in ("dev", "test") if metrics.get(s)},
        "checks": checks, **(about or {}),
    }
    write_json(out / CARD_FILE, card)
    (out / CARD_MD).write_text(card_markdown(card), encoding="utf-8")
    return card


def _opset(out: Path) -> int | None:
    import onnx

    model = onnx.load(str(out / VARIANTS["fp32"]), load_external_data=False)
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def card_markdown(card: dict[str, Any]) -> str:
    """The short human-readable model card."""
    ex, data, checks = card["exporter"], card["training_data"], card["checks"]
    lines = [f"# {card.get('version', 'ReportLens model')} (ONNX)", "",
             f"- Task: {card['task']} over labels {', '.join(card['labels'])}",
             f"- Base model: {card['base_model']} ({card['method']}, merged), windows of {card['max_length']} tokens, "
             f"stride {card['stride']}",
             f"- Training data: {data.get('train')} train / {data.get('dev')} dev / {data.get('test')} test documents",
             f"- Exported {card['exported_at']} with {ex['name']}, torch {ex['torch']}, onnx {ex['onnx']}, "
             f"onnxruntime {ex['onnxruntime']}, opset {ex['opset']}", ""]
    if card["metrics"]:
        lines += ["| split | precision | recall | F1 |", "|---|---|---|---|"]
        lines += [f"| {s} | {m.get('precision')} | {m.get('recall')} | {m.get('f1')} |"
                  for s, m in card["metrics"].items()]
        lines.append("")
    c = checks["fp32_vs_torch"]
    lines.append(f"fp32 vs torch on {c['documents']} documents: token argmax agreement "
                 f"{c['token_argmax_agreement']:.4%}, identical entities in {c['identical_entity_documents']}.")
    if "int8_vs_fp32" in checks:
        q = checks["int8_vs_fp32"]
        sp = checks["speed_docs_per_s"]
        lines.append(f"int8 vs fp32: token agreement {q['token_argmax_agreement']:.4%}, identical entities in "
                     f"{q['identical_entity_documents']}/{q['documents']} documents; speed {sp['fp32']} -> "
                     f"{sp['int8']} documents/s.")
        if "int8_test_f1" in checks:
            f = checks["int8_test_f1"]
            lines.append(f"Test-split entity F1: fp32 {f['fp32']['f1']:.4f}, int8 {f['int8']['f1']:.4f} "
                         f"(change {f['f1_change']:+.4f}, {f['documents']} documents).")
    lines.append("")
    lines.append("Load without torch: `training.onnx_runtime.load_onnx(folder)` (onnxruntime + tokenizers).")
    return "\n".join(lines) + "\n"
