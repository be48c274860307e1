"""Training benchmark: LoRA vs full fine-tuning of the bundled model on the synthetic demo project.

    python bench/train_bench.py                          # 84 demo tasks (50 labeled): LoRA and full, defaults
    python bench/train_bench.py --n 300 --runs lora full  # 180 labeled reports
    python bench/train_bench.py --runs lora '{"method": "lora", "lora_r": 8}' --out bench/out/train-r8.json

The demo export (``core.demo.generate_demo_export(n, seed=0)``, ~60% of tasks labeled) is imported into a fresh SQLite
file once; every run then trains in its own child process on the same project, hence on the same fixed split, and
reports: wall time from process start to a saved model ("time to first model": imports, model load, encoding,
training, dev/test evaluation, saving), training windows per second (dev evaluations excluded), dev/test entity F1
(strict, micro), and peak RSS (``ru_maxrss``). A run is ``lora``, ``full``, ``defaults`` (``TrainConfig()``), a JSON
object of ``TrainConfig`` fields, or ``recipe``: ``bench/hf_recipe.py`` (plain transformers, full fine-tuning on the
corpus's sentences) in its own child process, AnatEM only.

AnatEM (issue 17): the official train/devel/test files, consecutive sentences grouped into documents of
``--sents-per-doc`` (10) sentences, trained on the OFFICIAL split (``fit(..., split=...)``), so test F1 is on the
official test set; ``--max-docs`` caps each split for smoke runs (the recipe then gets the same sentences). The test
entity count of every run is printed and checked against the recipe's:

    python bench/train_bench.py --corpus anatem --runs recipe defaults --out bench/out/train-anatem.json
    python bench/train_bench.py --corpus anatem --max-docs 4 --recipe-epochs 1 \
        --runs recipe '{"max_steps": 2}'                                         # smoke run, about a minute

Continued masked-LM pretraining first (issue 16): a run's JSON may carry ``"adapt"``, an object of ``AdaptConfig``
fields; the child adapts the base model to the project's text (test-split documents left out) and fine-tunes from
it, reporting the adaptation under ``adapted`` (its time is also inside ``time_to_model_s``):

    python bench/train_bench.py --corpus maccrobat --runs '{"max_steps": 300}' \
        '{"max_steps": 300, "adapt": {"mlm_steps": 150}}' --out bench/out/adapt-maccrobat.json

A run's ``"decodings": true`` also scores the saved model's dev and test splits under every decoding / aggregation
pair of ``bench/decoding_bench.py`` (after the time to the model is taken), under ``decodings``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


MACCROBAT_LABELS = ("Sign_symptom", "Diagnostic_procedure", "Biological_structure", "Lab_value", "Disease_disorder",
                    "Medication")


def make_maccrobat(url: str) -> None:
    """MACCROBAT2020 (200 case reports, brat) with six frequent labels kept; other spans are left out."""
    from dataclasses import replace

    from core.formats import brat
    from core.formats.report import ParseReport
    from db.engine import make_engine
    from db.importer import import_tasks
    from tests.shared_data import SHARED_DATA

    tasks = []
    for task in brat.read(SHARED_DATA / "maccrobat2020", None, ParseReport()):
        anns = tuple(replace(a, spans=tuple(s for s in a.spans if s.label in MACCROBAT_LABELS))
                     for a in task.annotations)
        tasks.append(replace(task, annotations=anns))
    import_tasks(make_engine(url), "maccrobat", tasks, source="conll")


def make_ptbxl(url: str) -> None:
    """The 500 PTB-XL reports of ../shared/data/ptb-xl (real wording and the natural mix: 243 distinct texts, 131
    times "sinusrhythmus normales ekg"), each keyed by its ecg_id so duplicates stay separate reports. PTB-XL has no
    span annotations: the labels are *silver*, the rule extractor's entities (core/rules: RHYTHM, FINDING, AXIS,
    CONDUCTION, HEART_RATE) standing in for a consistent annotator."""
    import csv

    from core.rules.ecg import extract_ecg
    from core.types import Annotation, ParsedTask, Span
    from db.engine import make_engine
    from db.importer import import_tasks
    from tests.shared_data import SHARED_DATA

    with open(SHARED_DATA / "ptb-xl" / "ptbxl_database.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    tasks = []
    for pos, row in enumerate(rows):
        text = row["report"]
        spans = tuple(sorted({Span(e.start, e.end, e.label) for e in extract_ecg(text)}))
        tasks.append(ParsedTask(text=text, task_id=int(row["ecg_id"]), position=pos,
                                annotations=(Annotation(source="human", spans=spans, author="rules (silver)"),)))
    import_tasks(make_engine(url), "ptbxl", tasks, source="conll")


def make_project(url: str, n: int, seed: int, corpus: str = "demo", max_docs: int | None = None,
                 sents_per_doc: int = 10) -> dict | None:
    from core.demo import DEMO_LABEL_CONFIG, generate_demo_export
    from core.formats.labelconfig import parse_label_config
    from core.formats.registry import parse_export
    from db.engine import make_engine
    from db.importer import import_tasks
    from db.migrate import upgrade

    upgrade(url)
    if corpus == "anatem":
        from bench.anatem import make_anatem

        return make_anatem(url, max_docs, sents_per_doc)
    if corpus in ("maccrobat", "ptbxl"):
        (make_maccrobat if corpus == "maccrobat" else make_ptbxl)(url)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.json"
        path.write_text(json.dumps(generate_demo_export(n=n, seed=seed)), encoding="utf-8")
        tasks, report = parse_export(path, parse_label_config(DEMO_LABEL_CONFIG))
        import_tasks(make_engine(url), "demo", tasks, report=report)
    return None


def run_fields(run: str) -> dict:
    """A run name -> ``TrainConfig`` fields: ``lora``/``full`` (the method), ``defaults`` (none), or JSON."""
    if run in ("lora", "full"):
        return {"method": run}
    if run == "defaults":
        return {}
    return json.loads(run)


def child(url: str, run: str, out_dir: str, corpus: str = "demo") -> dict:
    started = time.monotonic()
    from core.trainconfig import TrainConfig
    from db.engine import make_engine
    from training.trainer import run_training

    engine = make_engine(url)
    split = None
    if corpus == "anatem":
        from bench.anatem import official_split
        from training.trainer import load_project_data

        split = official_split(load_project_data(engine, 1)[1])
    fields = run_fields(run)
    with_decodings = bool(fields.pop("decodings", False))
    adapted = None
    if "adapt" in fields:
        adapted = adapt_first(engine, fields.pop("adapt"), fields, split, Path(out_dir) / "base")
        fields["base_model"] = adapted.pop("base_model")
    result = run_training(engine, 1, TrainConfig(**fields), Path(out_dir), split=split)
    m = result.metrics
    time_to_model_s = round(time.monotonic() - started, 1)
    return {
        "run": run, "adapted": adapted, "config": result.config.to_dict(),
        "split": {k: m["split"][k] for k in ("train", "dev", "test")},
        "time_to_model_s": time_to_model_s, "run_training_s": round(result.duration_s, 1),
        "train_runtime_s": m["speed"]["train_runtime_s"], "examples_per_s": m["speed"]["examples_per_s"],
        "train_windows": m["speed"]["train_windows"], "steps": m["steps"], "best_epoch": m["best_epoch"],
        "dev_eval_s": m["speed"]["dev_eval_s"], "dev_evaluations": m["speed"].get("dev_evaluations"),
        "padded_token_share": m["speed"].get("padded_token_share"), "dev_sample": m["speed"].get("dev_sample"),
        "refit": {k: v for k, v in (m.get("refit") or {}).items() if not isinstance(v, dict)} or None,
        "selection_dev_f1": round(m["refit"]["selection_dev"]["f1"], 4) if m.get("refit", {}).get("selection_dev")
        else None,
        "selection_test_f1": round(m["refit"]["selection_test"]["f1"], 4)
        if (m.get("refit") or {}).get("selection_test") else None,
        "stopped_early": result.stopped_early, "dev_f1": round(m["dev"]["f1"], 4),
        "test_f1": round(m["test"]["f1"], 4) if m["test"] else None,
        "test_precision": round(m["test"]["precision"], 4) if m["test"] else None,
        "test_recall": round(m["test"]["recall"], 4) if m["test"] else None,
        "test_entities": m["test"]["support"] if m["test"] else None,
        "test_gold_spans_changed": m["test"].get("gold_spans_changed") if m["test"] else None,
        "test_per_label_f1": {k: round(v["f1"], 3) for k, v in (m["test"] or {}).get("per_label", {}).items()},
        "dev_curve": [h["dev"]["f1"] for h in m["history"] if h.get("dev")],
        "trainable_params": m["parameters"]["trainable"],
        "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "decodings": decodings(engine, out_dir, result.data_snapshot) if with_decodings else None,
    }


def decodings(engine: Any, model_dir: str, snapshot: dict) -> dict:
    """A run's ``"decodings": true``: the saved model's dev and test entity F1 under every ``(decoding, aggregation)``
    pair of ``bench/decoding_bench.py`` (probabilities computed once per split, after the time to the model was
    taken). A refit model's dev was trained on, so only its test column is held out."""
    from dataclasses import replace

    from bench.decoding_bench import PAIRS
    from core.decoding import DecodeConfig
    from core.metrics import evaluate_spans
    from training.evaluate import Evaluator
    from training.inference import load_model
    from training.predict import decode, window_probabilities
    from training.trainer import load_project_data

    loaded = load_model(model_dir)
    docs = {d.id: d for d in load_project_data(engine, 1)[1]}
    out: dict[str, dict[str, float]] = {}
    for name in ("dev", "test"):
        ev = Evaluator.build(loaded.tokenizer, [docs[i] for i in snapshot[name]], loaded.config)
        probs = window_probabilities(loaded.model, ev.prepared, loaded.tokenizer.pad_token_id or 0)
        for decoding, aggregation in PAIRS:
            align = replace(loaded.config.align(), decode=DecodeConfig(decoding, aggregation))
            pred = {p.doc_id: [s for s, _ in p.spans] for p in decode(ev.prepared, probs, loaded.schema, align)}
            out.setdefault(f"{decoding}/{aggregation}", {})[f"{name}_f1"] = round(
                evaluate_spans(ev.gold, pred)["f1"], 4)
    return out


def adapt_first(engine: Any, adapt_fields: dict, train_fields: dict, split: Any, out: Path) -> dict:
    """A run's ``"adapt"`` object: adapt the base model (``training.adapt.run_adaptation``, ``AdaptConfig`` fields)
    to the project's text before fine-tuning, with the documents of the test split (the run's own split: official
    for AnatEM, else the project's fixed split under the run's ratios) kept out of the masked-LM corpus, so test F1
    is not measured on text the adaptation read. Returns what it did and the new base model's folder."""
    from core.adaptconfig import AdaptConfig
    from core.trainconfig import TrainConfig
    from training.adapt import run_adaptation
    from training.trainer import load_project_data, make_split

    project, docs, _ = load_project_data(engine, 1)
    test = split.test if split is not None else make_split(project, docs, TrainConfig(**train_fields)).test
    config = AdaptConfig(**adapt_fields)
    started = time.monotonic()
    result = run_adaptation(engine, 1, config, config.parent, out, exclude=set(test))
    return {"base_model": str(out), "adapt_s": round(time.monotonic() - started, 1), "config": config.to_dict(),
            "vocab": {k: v for k, v in result.vocab.items() if k != "sample"}, "corpus": result.corpus,
            "test_documents_left_out": len(test),
            "mlm": {k: v for k, v in result.mlm.items() if k not in ("loss_curve",)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=84, help="demo tasks (about 60%% labeled); 84 -> 50 labeled")
    ap.add_argument("--seed", type=int, default=0, help="demo generator seed")
    ap.add_argument("--runs", nargs="+", default=["lora", "full"])
    ap.add_argument("--corpus", choices=["demo", "maccrobat", "anatem"], default="demo",
                    help="maccrobat: ../shared/data/maccrobat2020, labels " + ", ".join(MACCROBAT_LABELS)
                    + "; anatem: ../shared/data/anatem, the official split")
    ap.add_argument("--max-docs", type=int, default=None, help="anatem: at most N documents per split (smoke runs)")
    ap.add_argument("--sents-per-doc", type=int, default=10, help="anatem: sentences per document")
    ap.add_argument("--recipe-epochs", type=float, default=6, help="run 'recipe': epochs of bench/hf_recipe.py")
    ap.add_argument("--recipe-max-steps", type=int, default=0, help="run 'recipe': stop after N steps (smoke runs)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "train.json"))
    ap.add_argument("--child", nargs=3, metavar=("URL", "RUN", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, corpus=args.corpus)))
        return
    if "recipe" in args.runs and args.corpus != "anatem":
        raise SystemExit("The run 'recipe' (bench/hf_recipe.py) trains on AnatEM sentences: add --corpus anatem.")
    results = []
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="reportlens-train-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        docs = make_project(url, args.n, args.seed, args.corpus, args.max_docs, args.sents_per_doc)
        if docs:
            print(json.dumps({"documents": docs, "sents_per_doc": args.sents_per_doc}), flush=True)
        for i, run in enumerate(args.runs):
            if run == "recipe":
                cmd = [sys.executable, str(ROOT / "bench" / "hf_recipe.py"), "--epochs", str(args.recipe_epochs),
                       "--max-steps", str(args.recipe_max_steps), "--out-dir", str(Path(tmp) / f"model-{i}")]
                if args.max_docs is not None:
                    cmd += ["--max-sentences", str(args.max_docs * args.sents_per_doc)]
            else:
                cmd = [sys.executable, __file__, "--corpus", args.corpus, "--child", url, run,
                       str(Path(tmp) / f"model-{i}")]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                  env=os.environ | {"PYTHONWARNINGS": "ignore"})
            if proc.returncode:
                sys.stderr.write(proc.stderr[-3000:])
                raise SystemExit(f"run {run!r} failed")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    out = {"corpus": args.corpus, "n_tasks": args.n, "max_docs": args.max_docs, "cpus": os.cpu_count(),
           "load_avg_1m_before": load_before, "load_avg_1m": round(os.getloadavg()[0], 2),
           "python": platform.python_version(), "runs": results}
    if args.corpus == "anatem":
        out["test_entities"] = check_entity_counts(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1), encoding="utf-8")
    if not out.get("test_entities", {}).get("agree", True):
        raise SystemExit(f"test entity counts differ between runs: {out['test_entities']['per_run']} (see {args.out})")


def check_entity_counts(results: list[dict]) -> dict:
    """Every run's test entity count, printed; a mismatch (the runs did not score the same test entities) is an
    error, since their F1 would not be comparable."""
    counts = {str(r["run"]): r.get("test_entities") for r in results}
    for r in results:
        extra = f" (in the file: {r['test_entities_in_file']})" if "test_entities_in_file" in r else ""
        print(f"test entities, run {r['run']}: {r.get('test_entities')}{extra}", flush=True)
    agree = len({c for c in counts.values() if c is not None}) <= 1
    if not agree:
        print("TEST ENTITY COUNTS DIFFER: the runs did not score the same gold entities.", file=sys.stderr)
    return {"per_run": counts, "agree": agree}


if __name__ == "__main__":
    main()
