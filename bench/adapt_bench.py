"""What adapting the base model buys (issue 16): vocabulary extension and continued masked-LM pretraining.

    python bench/adapt_bench.py time --corpus demo --n 300            # one adaptation of a 300-report project
    python bench/adapt_bench.py compare --corpus demo_zh              # arms x sizes x seeds (long: hours on 2 cores)
    python bench/adapt_bench.py compare --corpus demo --sizes 10 25 --seeds 0 --arms bundled vocab+mlm

Corpora are taken by name (:data:`CORPORA`): ``demo`` (the English ECG/radiology demo, ``core.demo``) and
``demo_zh`` (the Chinese ECG/Holter demo, ``core.demo_zh``); a corpus whose generator is not in this checkout is a
clear error. ``time`` imports ``--n`` reports of generator seed 0 (labelled and unlabelled, as the demo has them)
into a fresh SQLite file and runs one ``adapt`` job's work (``training.adapt.run_adaptation``) with the default
``AdaptConfig`` from the bundled model: wall and CPU time (on a shared machine CPU seconds / threads estimates the
wall time on dedicated cores), vocabulary added, [UNK] share before/after, held-out MLM loss.

``compare``: per seed, the pool project (``--pool`` reports of generator seed 0, labelled or not) is adapted once per
arm: ``bundled`` (no adaptation), ``vocab`` (vocabulary extension only, ``mlm_steps=0``), ``vocab+mlm`` (the
defaults). Then for each size K the first K labelled reports of the pool form a project that is fine-tuned from each
arm's base with the same budget (``--steps`` optimizer steps, default LoRA config, no dev/test split: all K train),
and scored on a held-out export of another generator seed (``--test-seed``, ``--test`` labelled reports): strict
entity F1, micro and per label, and the time of each step. Results: ``bench/out/adapt_<corpus>.json`` and a table.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# name -> (module, export generator, label config constant)
CORPORA = {
    "demo": ("core.demo", "generate_demo_export", "DEMO_LABEL_CONFIG"),
    "demo_zh": ("core.demo_zh", "generate_zh_export", "ZH_DEMO_LABEL_CONFIG"),
}
ARMS = ("bundled", "vocab", "vocab+mlm")


def corpus_tasks(name: str, n: int, seed: int) -> list:
    """The parsed tasks of ``n`` reports of corpus ``name`` (generator ``seed``), through the Label Studio path."""
    from core.formats.labelconfig import parse_label_config
    from core.formats.registry import parse_export

    if name not in CORPORA:
        sys.exit(f"error: unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    module, generator, config = CORPORA[name]
    try:
        mod = importlib.import_module(module)
        generate, label_config = getattr(mod, generator), getattr(mod, config)
    except (ImportError, AttributeError) as exc:
        sys.exit(f"error: corpus {name!r} needs {module}.{generator} and {module}.{config}, which this checkout "
                 f"does not have ({exc}); merge the branch that adds it, or choose another corpus.")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.json"
        path.write_text(json.dumps(generate(n=n, seed=seed), ensure_ascii=False), encoding="utf-8")
        tasks, _ = parse_export(path, parse_label_config(label_config))
    return tasks


def fresh_project(tmp: str, tasks: list, name: str = "bench") -> tuple:
    from db.engine import make_engine
    from db.importer import import_tasks
    from db.migrate import upgrade

    url = f"sqlite:///{tmp}/{name}.db"
    upgrade(url)
    engine = make_engine(url)
    import_tasks(engine, name, tasks)
    return engine, 1


def adapt(engine, project_id: int, out: Path, **overrides) -> dict:
    from core.adaptconfig import AdaptConfig
    from training.adapt import run_adaptation

    config = AdaptConfig(**overrides)
    t, cpu = time.monotonic(), time.process_time()
    result = run_adaptation(engine, project_id, config, config.parent, out)
    wall = time.monotonic() - t
    curve = [p for p in result.mlm.get("loss_curve", []) if p.get("elapsed_s") is not None]
    per_step = ((curve[-1]["elapsed_s"] - curve[0]["elapsed_s"]) / (curve[-1]["step"] - curve[0]["step"])
                if len(curve) > 1 and curve[-1]["step"] > curve[0]["step"] else None)
    return {"wall_s": round(wall, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "s_per_step": round(per_step, 2) if per_step else None, "vocab": result.vocab, "corpus": result.corpus,
            "mlm": {k: v for k, v in result.mlm.items() if k != "loss_curve"}, "config": config.to_dict()}


def cmd_time(args: argparse.Namespace) -> None:
    tasks = corpus_tasks(args.corpus, args.n, 0)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("REPORTLENS_DATA_DIR", tmp)
        engine, pid = fresh_project(tmp, tasks)
        overrides = {k: v for k, v in (("mlm_steps", args.mlm_steps), ("method", args.method),
                                       ("max_minutes", args.max_minutes)) if v is not None}
        row = {"corpus": args.corpus, "reports": len(tasks), "threads": _threads(),
               **adapt(engine, pid, Path(tmp) / "adapted", **overrides)}
    print(json.dumps(row, ensure_ascii=False), flush=True)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def cmd_compare(args: argparse.Namespace) -> None:
    from core.policy import training_documents_from_tasks
    from core.trainconfig import TrainConfig
    from training.evaluate import evaluate_documents
    from training.inference import clear_model_cache, load_model
    from training.trainer import run_training

    pool = corpus_tasks(args.corpus, args.pool, 0)
    labelled = [t for t in pool if t.annotations]
    test_docs = list(training_documents_from_tasks(
        [t for t in corpus_tasks(args.corpus, args.test * 2, args.test_seed) if t.annotations][:args.test]))
    if len(labelled) < max(args.sizes):
        sys.exit(f"error: the pool has {len(labelled)} labelled reports, fewer than size {max(args.sizes)}; raise "
                 "--pool.")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["REPORTLENS_DATA_DIR"] = tmp
        engine, pid = fresh_project(tmp, pool, "pool")
        for seed in args.seeds:
            bases = {"bundled": ("bundled", {"wall_s": 0.0})}
            for arm in (a for a in args.arms if a != "bundled"):
                mlm_steps = 0 if arm == "vocab" else args.mlm_steps
                out = Path(args.cache or tmp) / f"base-{args.corpus}-{arm}-{seed}-mlm{mlm_steps}-pool{args.pool}"
                if args.cache and (out / "adapt.json").is_file():
                    info = json.loads((out / "adapt.json").read_text(encoding="utf-8"))
                    info["wall_s"] = info.get("duration_s")
                    print(json.dumps({"reused": str(out)}), flush=True)
                else:
                    info = adapt(engine, pid, out, seed=seed, mlm_steps=mlm_steps)
                    print(json.dumps({"adapted": arm, "seed": seed, **info}, ensure_ascii=False), flush=True)
                bases[arm] = (str(out), info)
            for k in args.sizes:
                for arm in args.arms:
                    base, info = bases[arm]
                    with tempfile.TemporaryDirectory(dir=tmp) as run:
                        small, spid = fresh_project(run, labelled[:k], "small")
                        config = TrainConfig(**({"base_model": base, "seed": seed, "max_steps": args.steps,
                                                 "dev_ratio": 0.0, "test_ratio": 0.0} | json.loads(args.train)))
                        t = time.monotonic()
                        run_training(small, spid, config, Path(run) / "m")
                        train_s = time.monotonic() - t
                        clear_model_cache()
                        loaded = load_model(Path(run) / "m")
                        scores = evaluate_documents(loaded.model, loaded.tokenizer, test_docs, loaded.config)
                    errors = scores.get("errors") or {}
                    confused = Counter(
                        f"{e['gold'][2] if e['gold'] else '-'}->{e['pred'][2] if e['pred'] else '-'} ({e['type']})"
                        for e in errors.get("examples", []))
                    row = {"corpus": args.corpus, "arm": arm, "labelled": k, "seed": seed, "train": args.train,
                           "f1": round(scores["f1"], 4), "errors": errors.get("counts"),
                           "top_errors": dict(confused.most_common(6)),
                           "per_label": {lab: round(v["f1"], 4) for lab, v in (scores.get("per_label") or {}).items()},
                           "adapt_s": info["wall_s"], "train_s": round(train_s, 1),
                           "unk_after": info.get("vocab", {}).get("unk_after")}
                    rows.append(row)
                    print(json.dumps(row, ensure_ascii=False), flush=True)
    out = Path(args.out or ROOT / "bench" / "out" / f"adapt_{args.corpus}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    print("\n| labelled reports | arm | held-out entity F1 (mean ± sd) | worst label F1 | adapt s | train s |")
    print("|---|---|---|---|---|---|")
    for k in args.sizes:
        for arm in args.arms:
            got = [r for r in rows if r["labelled"] == k and r["arm"] == arm]
            f1 = [r["f1"] for r in got]
            sd = statistics.stdev(f1) if len(f1) > 1 else 0.0
            worst = min((v for r in got for v in r["per_label"].values()), default=float("nan"))
            adapt_s, train_s = (statistics.fmean(r[key] for r in got) for key in ("adapt_s", "train_s"))
            print(f"| {k} | {arm} | {statistics.fmean(f1):.3f} ± {sd:.3f} (n={len(f1)}) | {worst:.3f} | "
                  f"{adapt_s:.0f} | {train_s:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time", help="time one adaptation of an n-report project")
    t.add_argument("--corpus", default="demo", help=f"one of {', '.join(CORPORA)}")
    t.add_argument("--n", type=int, default=300)
    t.add_argument("--mlm-steps", type=int)
    t.add_argument("--method", choices=("full", "lora"))
    t.add_argument("--max-minutes", type=float)
    t.set_defaults(func=cmd_time)
    c = sub.add_parser("compare", help="entity F1 of the arms at several project sizes")
    c.add_argument("--corpus", default="demo_zh", help=f"one of {', '.join(CORPORA)}")
    c.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    c.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50, 100])
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    c.add_argument("--pool", type=int, default=300, help="reports of the pool project (adaptation corpus)")
    c.add_argument("--test", type=int, default=100, help="labelled held-out reports")
    c.add_argument("--test-seed", type=int, default=7, help="generator seed of the held-out reports")
    c.add_argument("--steps", type=int, default=100, help="fine-tuning optimizer steps, the same for every arm")
    c.add_argument("--mlm-steps", type=int, default=200)
    c.add_argument("--train", default="{}", help="TrainConfig fields (JSON) over the bench's, e.g. "
                   "'{\"train_new_vocab\": false}' or '{\"max_steps\": 300}'")
    c.add_argument("--cache", help="keep the adapted bases in this folder and reuse them on the next run (keyed by "
                   "corpus, arm, seed, MLM steps and pool size)")
    c.add_argument("--out")
    c.set_defaults(func=cmd_compare)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
