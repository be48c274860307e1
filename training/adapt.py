"""Adapt a base model to a project's text: :func:`run_adaptation` (the ``adapt`` job).

1. The corpus: every document of the project, labelled (their entity spans can bias the masking) and unlabelled,
   plus the lines of ``extra_text`` when given.
2. Vocabulary extension (:mod:`training.vocab`): the frequent ``[UNK]`` characters become real WordPiece entries;
   the embeddings grow and the new rows are initialised.
3. Continued masked-LM pretraining (:mod:`training.mlm`): whole-word masking, LoRA or full updates (new embedding
   rows always trained; with LoRA the adapters are merged into the saved weights), the Hugging Face ``Trainer`` with
   the progress and cancel callbacks of :mod:`training.callbacks`, early stopping on the held-out MLM loss, a
   wall-clock cap.
4. A plain model folder (weights, tokenizer, ``adapt.json``) that training loads like any base model.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.adaptconfig import AdaptConfig
from core.types import Document, ReportLensError
from training.artifacts import ADAPT_FILE, added_vocab_rows, write_json
from training.callbacks import callback_classes, restore
from training.encoding import load_tokenizer, resolve_model
from training.mlm import (
    WholeWordMaskCollator,
    build_windows,
    heldout_batches,
    heldout_callback,
    mlm_loss,
    split_heldout,
)
from training.model import quiet_load
from training.vocab import extend_tokenizer, resize_and_init

LORA_TARGETS = ["query", "key", "value", "dense"]


@dataclass(frozen=True)
class AdaptResult:
    model_dir: Path
    vocab: dict[str, Any]
    mlm: dict[str, Any]
    corpus: dict[str, Any]
    duration_s: float
    cancelled: bool


PLAIN_TEXT_SUFFIXES = ("", ".txt", ".text")


def read_extra_text(path: str | None) -> list[str]:
    """The extra reports of ``path``: the non-empty lines of a plain-text file (``.txt`` or no suffix, one report
    per line), or the texts of any export ReportLens imports (a Label Studio export without annotations, JSON-MIN,
    CoNLL, brat, DICOM SR; annotations, if any, are ignored)."""
    if not path:
        return []
    p = Path(path).expanduser()
    if not p.exists():
        raise ReportLensError(f"extra_text {path!r} does not exist; give a plain-text file with one report per line "
                              "or a Label Studio export.")
    if p.is_file() and p.suffix.lower() in PLAIN_TEXT_SUFFIXES and not p.with_suffix(".ann").is_file():
        try:
            return [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as exc:
            raise ReportLensError(f"extra_text {path!r} is not UTF-8 text ({exc}); save it as UTF-8.") from None
    from core.formats.registry import parse_export

    try:
        tasks, _ = parse_export(p)
    except ReportLensError as exc:
        raise ReportLensError(f"extra_text {path!r}: {exc}") from None
    return [t.text.strip() for t in tasks if t.text and t.text.strip()]


def load_corpus(engine: Any, project_id: int, extra_text: str | None = None,
                exclude: Collection[Any] = ()) -> list[Document]:
    """Every document of the project (labelled ones with their spans) and the extra lines, as ``Document``s;
    ``exclude`` names document ids to leave out (a benchmark keeps its test split's text away from the MLM)."""
    from db.repository import require_project, training_documents, unlabeled_documents

    project = require_project(engine, project_id)
    docs = [*training_documents(engine, project.id), *unlabeled_documents(engine, project.id)]
    if exclude:
        left_out = set(exclude)
        docs = [d for d in docs if d.id not in left_out]
    docs += [Document(id=f"extra-{i}", text=t) for i, t in enumerate(read_extra_text(extra_text))]
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise ReportLensError(f"Project {project.name!r} has no documents to adapt to; import reports first.")
    return docs


def _mlm_model(path: str) -> Any:
    from transformers import AutoModelForMaskedLM

    try:
        return quiet_load(AutoModelForMaskedLM.from_pretrained, path, local_files_only=Path(path).is_dir())
    except (OSError, ValueError) as exc:
        raise ReportLensError(f"Could not load {path} as a masked-LM model: {exc}. Choose a BERT-family encoder "
                              "folder.") from exc


def _make_trainable(model: Any, config: AdaptConfig, old_rows: int) -> Any:
    """Full: every weight. LoRA: adapters, the MLM head transform and bias, and the new embedding rows only (a
    gradient hook zeroes the old rows; no weight decay, so they stay exactly as they were)."""
    if config.method == "full":
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=2 * config.lora_r, lora_dropout=0.0, target_modules=LORA_TARGETS)
    model = quiet_load(get_peft_model, model, lora)
    for name, param in model.named_parameters():
        if ".predictions." in name and "lora_" not in name and "decoder" not in name:
            param.requires_grad = True
    emb = model.get_input_embeddings().weight
    if emb.shape[0] > old_rows:
        emb.requires_grad = True

        def keep_old_rows(grad: Any) -> Any:
            grad = grad.clone()
            grad[:old_rows] = 0
            return grad

        emb.register_hook(keep_old_rows)
    return model


def _dataset(items: list[Any]) -> Any:
    import torch

    class Windows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(items)

        def __getitem__(self, i: int) -> Any:
            return items[i]

    return Windows()


def _trainer_class() -> Any:
    from transformers import Trainer

    class MaskedOnlyTrainer(Trainer):
        """``Trainer`` whose loss projects only the masked positions onto the vocabulary (:func:`mlm_loss`)."""

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            loss = mlm_loss(model, inputs)
            return (loss, None) if return_outputs else loss

    return MaskedOnlyTrainer


def _train_mlm(model: Any, tokenizer: Any, train: list[Any], heldout: list[Any], config: AdaptConfig,
               progress: Callable[[dict], None], should_stop: Callable[[], bool]) -> tuple[dict[str, Any], bool]:
    from transformers import PrinterCallback, TrainingArguments

    progress_cls, cancel_cls, _ = callback_classes()
    prog, cancel = progress_cls(progress), cancel_cls(should_stop)
    batches = heldout_batches(tokenizer, heldout, config.mask_prob, config.seed, config.batch_size)
    stopper = heldout_callback()(batches, config.eval_every, config.patience, config.max_minutes * 60, prog, cancel)
    epochs = config.epochs or 10_000
    with tempfile.TemporaryDirectory(prefix="reportlens-adapt-") as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=config.batch_size, learning_rate=config.lr,
            num_train_epochs=epochs, max_steps=config.mlm_steps if not config.epochs else -1,
            warmup_steps=0.06, weight_decay=0.0, lr_scheduler_type="linear", logging_strategy="steps",
            logging_steps=max(1, min(config.eval_every, config.mlm_steps // 50 or 1)), save_strategy="no",
            eval_strategy="no", report_to=[], use_cpu=True, seed=config.seed, data_seed=config.seed,
            dataloader_num_workers=0, disable_tqdm=True, remove_unused_columns=False)
        collator = WholeWordMaskCollator(tokenizer, config.mask_prob, config.entity_boost, config.seed)
        trainer = _trainer_class()(model=model, args=args, train_dataset=_dataset(train), data_collator=collator,
                          callbacks=[prog, cancel, stopper])
        trainer.remove_callback(PrinterCallback)
        if config.epochs and config.mlm_steps:
            trainer.args.max_steps = min(config.mlm_steps, config.epochs * -(-len(train) // config.batch_size))
        trainer.train()
        state = trainer.state
    if not cancel.cancelled:
        stopper.measure(model, state)
    if not cancel.cancelled and stopper.best_state is not None and stopper.best_step != state.global_step:
        restore(model, stopper.best_state)
    curve = [{"step": p["step"], "loss": round(p["loss"], 5), "elapsed_s": p.get("elapsed_s")}
             for p in prog.history if p.get("phase") == "train" and p["loss"]]
    mlm = {"steps": state.global_step, "loss_curve": curve, "heldout_curve": stopper.curve,
           "best_step": stopper.best_step, "best_heldout_loss": None if stopper.best == float("inf") else
           round(stopper.best, 5), "stopped": stopper.stopped, "heldout_windows": sum(len(b["input_ids"])
                                                                                      for b in batches)}
    return mlm, cancel.cancelled


def run_adaptation(engine: Any, project_id: int, config: AdaptConfig, parent_path: str, out_dir: Path, *,
                   progress: Callable[[dict], None] = lambda p: None,
                   should_stop: Callable[[], bool] = lambda: False, exclude: Collection[Any] = ()) -> AdaptResult:
    """Adapt ``parent_path`` (a resolved base model) to the project's text and save it to ``out_dir``
    (``exclude``: document ids kept out of the corpus, see :func:`load_corpus`)."""
    import torch

    started = time.monotonic()
    torch.manual_seed(config.seed)
    docs = load_corpus(engine, project_id, config.extra_text, exclude)
    progress({"phase": "vocabulary", "message": f"reading {len(docs)} documents"})
    path = resolve_model(parent_path)
    old_tok = load_tokenizer(path)
    texts = [d.text for d in docs]
    if config.vocab_max_new > 0:
        tokenizer, report = extend_tokenizer(old_tok, texts, config.vocab_min_count, config.vocab_max_new, out_dir)
    else:
        from training.vocab import VocabReport, unk_share

        old_tok.save_pretrained(out_dir)
        unk, total = unk_share(old_tok, texts)
        share = unk / total if total else 0.0
        tokenizer = old_tok
        report = VocabReport((), 0, share, share, total, total, len(old_tok), len(old_tok))
    model = _mlm_model(path)
    # rows the vocabulary had before any adaptation: those an earlier adaptation added are trained again too
    old_rows = added_vocab_rows(path).start or model.get_input_embeddings().weight.shape[0]
    from_pieces = resize_and_init(model, old_tok, tokenizer, report.added, seed=config.seed)
    vocab = {**report.to_dict(), "initialised_from_pieces": from_pieces}
    progress({"phase": "vocabulary", "message": f"added {len(report.added)} vocabulary entries", "vocab": vocab})
    train_docs, held_docs = split_heldout(docs, config.heldout_ratio, config.seed)
    train_w = build_windows(tokenizer, train_docs, config.max_length)
    held_w = build_windows(tokenizer, held_docs, config.max_length)
    corpus = {"documents": len(docs), "labelled": sum(1 for d in docs if d.spans), "train_windows": len(train_w),
              "heldout_windows": len(held_w), "tokens": sum(len(w.input_ids) - 2 for w in train_w + held_w),
              "extra_lines": sum(1 for d in docs if str(d.id).startswith("extra-"))}
    mlm: dict[str, Any] = {"steps": 0, "loss_curve": [], "heldout_curve": [], "stopped": "no_mlm"}
    cancelled = False
    if config.mlm_steps > 0 and train_w:
        model = _make_trainable(model, config, old_rows)
        mlm, cancelled = _train_mlm(model, tokenizer, train_w, held_w, config, progress, should_stop)
        if config.method == "lora":
            model = model.merge_and_unload()
    if cancelled:
        return AdaptResult(out_dir, vocab, mlm, corpus, time.monotonic() - started, True)
    quiet_load(model.save_pretrained, out_dir)
    tokenizer.save_pretrained(out_dir)
    duration = round(time.monotonic() - started, 2)
    write_json(out_dir / ADAPT_FILE, {"parent": parent_path, "config": config.to_dict(), "vocab": vocab, "mlm": mlm,
                                      "corpus": corpus, "duration_s": duration})
    return AdaptResult(out_dir, vocab, mlm, corpus, duration, False)
