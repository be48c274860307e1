"""Does span-preserving augmentation help a small project? Measured, not assumed.

    python bench/augment_bench.py                       # 10 and 25 labeled demo reports, augment 0 vs 2, 3 seeds
    python bench/augment_bench.py --sizes 10 --copies 0 2 4 --seeds 0 1

For each size K, the first K labeled reports of a demo export (generator seed 0) form the project; a separate demo
export (generator seed 99, 120 labeled reports) is the held-out test set, scored with the same windowed inference as
training (strict entity F1). Each (K, copies, seed) trains the bundled model with the default LoRA config
(``augment`` copies, ``seed`` for initialisation and shuffling; auto epochs give about the same number of optimizer
steps with or without augmentation) in a fresh SQLite file. Results: ``bench/out/augment.json`` and a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def labeled_tasks(n_labeled: int, seed: int) -> list:
    from core.demo import DEMO_LABEL_CONFIG, generate_demo_export
    from core.formats.labelconfig import parse_label_config
    from core.formats.registry import parse_export

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.json"
        path.write_text(json.dumps(generate_demo_export(n=n_labeled * 3, seed=seed)), encoding="utf-8")
        tasks, _ = parse_export(path, parse_label_config(DEMO_LABEL_CONFIG))
    return [t for t in tasks if t.annotations][:n_labeled]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 25])
    ap.add_argument("--copies", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--test", type=int, default=120)
    ap.add_argument("--matched-control", action=argparse.BooleanOptionalAction, default=True,
                    help="also train without augmentation for as many steps as the augmented runs took")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "augment.json"))
    args = ap.parse_args()

    from core.policy import training_documents_from_tasks
    from core.trainconfig import TrainConfig
    from db.engine import make_engine
    from db.importer import import_tasks
    from db.migrate import upgrade
    from training.evaluate import evaluate_documents
    from training.inference import clear_model_cache, load_model
    from training.trainer import run_training

    test_docs = list(training_documents_from_tasks(labeled_tasks(args.test, seed=99)))
    rows = []
    for k in args.sizes:
        tasks = labeled_tasks(k, seed=0)
        arms = [(c, None) for c in args.copies] + ([("0-matched", None)] if args.matched_control else [])
        for copies, _ in arms:
            for seed in args.seeds:
                max_steps = None
                if copies == "0-matched":  # no augmentation, as many optimizer steps as the augmented run had
                    max_steps = max(r["steps"] for r in rows if r["labeled"] == k and r["seed"] == seed)
                with tempfile.TemporaryDirectory() as tmp:
                    url = f"sqlite:///{tmp}/b.db"
                    upgrade(url)
                    engine = make_engine(url)
                    import_tasks(engine, "small", tasks)
                    t = time.monotonic()
                    config = TrainConfig(augment=0 if copies == "0-matched" else copies, seed=seed,
                                         max_steps=max_steps)
                    result = run_training(engine, 1, config, Path(tmp) / "m")
                    clear_model_cache()
                    loaded = load_model(Path(tmp) / "m")
                    scores = evaluate_documents(loaded.model, loaded.tokenizer, test_docs, loaded.config)
                    row = {"labeled": k, "copies": copies, "seed": seed, "test_f1": round(scores["f1"], 4),
                           "augmented_copies": result.metrics["augmented_copies"], "steps": result.metrics["steps"],
                           "train_s": round(time.monotonic() - t, 1)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print("\n| labeled reports | augmented copies per report | optimizer steps | held-out test F1 (mean ± sd) |")
    print("|---|---|---|---|")
    for k in args.sizes:
        for copies in [*args.copies, *(["0-matched"] if args.matched_control else [])]:
            got = [r for r in rows if r["labeled"] == k and r["copies"] == copies]
            f1 = [r["test_f1"] for r in got]
            sd = statistics.stdev(f1) if len(f1) > 1 else 0.0
            steps = statistics.fmean(r["steps"] for r in got)
            print(f"| {k} | {copies} | {steps:.0f} | {statistics.fmean(f1):.3f} ± {sd:.3f} (n={len(f1)}) |")


if __name__ == "__main__":
    main()
