"""Decoding benchmark: broken entities and entity F1 under each decoding (core/decoding.py) of one trained model.

    nice python bench/decoding_bench.py                    # 84 demo tasks, models after 30 and 100 steps
    nice python bench/decoding_bench.py --steps 20 --out bench/out/decoding-20.json

The demo project (``core.demo.generate_demo_export(n, seed=0)``, as in ``bench/train_bench.py``) is trained briefly
with the bundled model (``max_steps`` each, default config otherwise); the token probabilities of its dev, test and
unlabeled reports are computed once, then decoded under every ``(decoding, aggregation)`` pair. Reported per pair:
dev/test entity F1 (strict, micro, gold as the model can see it: :class:`training.evaluate.Evaluator`), and on the
unlabeled reports the entities, those that start or end inside a word (by the tokenizer's ``word_ids``), and those
whose first tag is a stray ``I-`` (no ``B-`` of its label before it). ``argmax/none`` is the decoding before word
level and Viterbi.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAIRS = [("argmax", "none"), ("viterbi", "none"), ("argmax", "average"), ("viterbi", "average"),
         ("argmax", "first"), ("viterbi", "first"), ("argmax", "max"), ("viterbi", "max")]


def word_edges(doc) -> tuple[set[int], set[int]]:
    """Character offsets where a word starts and where one ends."""
    n, off, wid = len(doc), doc.offsets, doc.word_ids
    starts = {off[i][0] for i in range(n) if i == 0 or wid[i] is None or wid[i] != wid[i - 1]}
    ends = {off[i][1] for i in range(n) if i + 1 == n or wid[i] is None or wid[i] != wid[i + 1]}
    return starts, ends


def inside_word(prepared, spans_per_doc) -> int:
    count = 0
    for p, spans in zip(prepared, spans_per_doc, strict=True):
        starts, ends = word_edges(p.doc)
        count += sum(s.start not in starts or s.end not in ends for s in spans)
    return count


def measure(model, tokenizer, schema, config, split_docs, unlabeled) -> dict:
    from core.decoding import DecodeConfig
    from core.metrics import evaluate_spans
    from training.encoding import prepare_documents
    from training.evaluate import Evaluator
    from training.predict import decode, window_probabilities

    pad = tokenizer.pad_token_id or 0
    evaluators = {name: Evaluator.build(tokenizer, docs, config) for name, docs in split_docs.items()}
    probs = {name: window_probabilities(model, ev.prepared, pad) for name, ev in evaluators.items()}
    prepared_u = prepare_documents(tokenizer, [(d.id, d.text) for d in unlabeled], config.align())
    probs_u = window_probabilities(model, prepared_u, pad)
    out: dict = {"gold_spans_inside_a_word": {name: inside_word(ev.prepared, [ev.gold[d.id] for d in ev.docs])
                                              for name, ev in evaluators.items()}, "pairs": {}}
    for decoding, aggregation in PAIRS:
        align = replace(config.align(), decode=DecodeConfig(decoding, aggregation))
        row = {}
        for name, ev in evaluators.items():
            preds = decode(ev.prepared, probs[name], schema, align)
            pred = {p.doc_id: [s for s, _ in p.spans] for p in preds}
            row[f"{name}_f1"] = round(evaluate_spans(ev.gold, pred)["f1"], 4)
        preds_u = decode(prepared_u, probs_u, schema, align)
        row["unlabeled_entities"] = sum(len(p.spans) for p in preds_u)
        row["unlabeled_inside_a_word"] = inside_word(prepared_u, [[s for s, _ in p.spans] for p in preds_u])
        out["pairs"][f"{decoding}/{aggregation}"] = row
    out["stray_inside_tags_argmax"] = stray_inside(probs_u, schema)
    return out


def stray_inside(probs_u, schema) -> int:
    """Token-level argmax ``I-X`` with no ``B-X``/``I-X`` right before it, on the unlabeled reports."""
    count = 0
    for pr in probs_u:
        tags = [schema.tags[int(t)] for t in pr.argmax(axis=-1)]
        count += sum(t.startswith("I-") and (i == 0 or tags[i - 1][2:] != t[2:] or tags[i - 1] == "O")
                     for i, t in enumerate(tags))
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=84, help="demo tasks (about 60%% labeled)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, nargs="+", default=[30, 100], help="max_steps of each trained model")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "decoding.json"))
    args = ap.parse_args()
    from bench.train_bench import make_project
    from core.trainconfig import TrainConfig
    from db.engine import make_engine
    from db.repository import training_documents, unlabeled_documents
    from training.inference import load_model
    from training.trainer import run_training

    results = {"n": args.n, "seed": args.seed, "load_avg_start": os.getloadavg(), "models": []}
    with tempfile.TemporaryDirectory(prefix="reportlens-decoding-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        make_project(url, args.n, args.seed)
        engine = make_engine(url)
        docs = {d.id: d for d in training_documents(engine, 1)}
        unlabeled = list(unlabeled_documents(engine, 1))
        for steps in args.steps:
            started = time.monotonic()
            result = run_training(engine, 1, TrainConfig(max_steps=steps), Path(tmp) / f"model-{steps}")
            loaded = load_model(Path(tmp) / f"model-{steps}")
            split_docs = {name: [docs[i] for i in result.data_snapshot[name]] for name in ("dev", "test")}
            row = {"steps": steps, "split": {k: len(result.data_snapshot[k]) for k in ("train", "dev", "test")}
                   | {"unlabeled": len(unlabeled)}, "trainer_dev_f1": round(result.metrics["dev"]["f1"], 4),
                   **measure(loaded.model, loaded.tokenizer, loaded.schema, loaded.config, split_docs, unlabeled),
                   "wall_s": round(time.monotonic() - started, 1)}
            results["models"].append(row | {"load_avg": os.getloadavg()})
            print(json.dumps(row), flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")  # partial results
    results["load_avg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
