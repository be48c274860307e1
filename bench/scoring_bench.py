"""Scoring speed: ReportLens' scoring run vs a plain ``transformers`` pipeline called one report at a time.

    python bench/scoring_bench.py                       # 10,000-report pool, pipeline on the first 1,000
    python bench/scoring_bench.py --n 2000 --pipeline-n 300 --model data/models/1/job-3

1. A fresh SQLite file gets the demo project (``core.demo.generate_demo_export(--train-n, seed=0)``) and a pool of
   ``--n`` short synthetic reports (``generate_demo_export(--n, seed=7)``, annotations dropped), all in one project.
   Unless ``--model`` names a saved ReportLens model folder, a LoRA model is trained on the labeled demo reports
   (default ``TrainConfig``, ``--train-steps`` steps) into ``bench/out/scoring-model`` and recorded as the active
   version (not timed).
2. Timed: ``training.scoring.run_scoring`` end to end, the product path of the ``score`` job and ``cli.py score``:
   read the unlabeled reports, tokenize, window, batched forward passes (longest first), merge, decode entities,
   every strategy of the run (margin, entropy, MNLP, least confidence, random, diversity k-center), and store
   scores + predictions in SQLite.
3. Timed: ``pipeline("token-classification", model=<merged export>, aggregation_strategy="simple")`` called once per
   report on the first ``--pipeline-n`` reports of the pool (the merged model is
   ``training.inference.export_merged``, LoRA folded into the base weights). Its documents/s is extrapolated to the
   pool (it is linear: one call per report).
4. The pipeline's entities (start, end, label) are compared with the predictions the scoring run stored for the same
   reports; the script fails unless they are identical.
5. The queue stored for every strategy of the run is read back and compared with ``core.active.select_batch`` over
   the run's pool (duplicate keys and labelled centres included); the script fails unless they are identical.

Writes ``bench/out/scoring.json``. Torch uses every core it is given (2 here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "bench" / "out" / "scoring-model"  # kept (git-ignored), so a re-run can pass --model
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@contextmanager
def bench_pool(args: argparse.Namespace, prefix: str) -> Iterator[tuple[Path, str, int, str, Any]]:
    """A fresh data folder and SQLite database holding the pool and its trained model (the setup both this bench and
    bench/serve_bench.py time nothing of): ``(tmp, url, project id, model dir, engine)``."""
    from db.engine import make_engine
    from db.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix=prefix) as tmpdir:
        tmp = Path(tmpdir)
        os.environ["REPORTLENS_DATA_DIR"] = str(tmp / "data")
        url = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(url)
        pid, model_dir = build(url, args.n, args.train_n, args.model, tmp, args.train_steps)
        yield tmp, url, pid, model_dir, make_engine(url)


def build(url: str, n_pool: int, train_n: int, model: str | None, tmp: Path, steps: int) -> tuple[int, str]:
    from core.demo import DEMO_LABEL_CONFIG, generate_demo_export
    from core.formats.labelconfig import parse_label_config
    from core.formats.registry import parse_export
    from db.engine import make_engine
    from db.importer import import_tasks
    from db.model_versions import record_model_version
    from db.repository import get_project

    engine = make_engine(url)
    config = parse_label_config(DEMO_LABEL_CONFIG)

    def tasks(n: int, seed: int) -> list:
        path = tmp / f"demo-{seed}.json"
        path.write_text(json.dumps(generate_demo_export(n, seed=seed)), encoding="utf-8")
        return parse_export(path, config)[0]

    pool = [replace(t, annotations=(), task_id=1_000_000 + i) for i, t in enumerate(tasks(n_pool, 7))]
    import_tasks(engine, "bench", tasks(train_n, 0) + pool)
    pid = get_project(engine, "bench").id
    if model is None:
        from core.trainconfig import TrainConfig
        from training.trainer import run_training

        t0 = time.monotonic()
        result = run_training(engine, pid, TrainConfig(max_steps=steps), MODEL_DIR)
        print(f"trained a LoRA model in {time.monotonic() - t0:.0f} s (dev F1 "
              f"{(result.metrics.get('dev') or {}).get('f1')})", file=sys.stderr, flush=True)
        model = str(result.model_dir)
    else:
        from training.inference import read_model_files

        schema, cfg = read_model_files(model)
        result = {"model_dir": model, "schema": schema, "config": cfg}
    record_model_version(engine, pid, None, result)
    return pid, model


def check_queues(engine: Any, project_id: int, result: Any, config: Any) -> list[str]:
    """Stored strategies whose queue (as the Queue page reads it) is not ``select_batch`` over the run's pool."""
    from core.active import select_batch
    from db import scores as score_db

    bad = []
    for strategy in config.strategies(cold_start=result.cold_start):
        rows, _, _ = score_db.ranked_queue(engine, project_id, str(strategy), exclude_batched=False, limit=None)
        expected = [result.doc_ids[i] for i in select_batch(strategy, result.pool, len(result.doc_ids))]
        if [r.document_id for r in rows] != expected:
            bad.append(str(strategy))
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="reports in the unlabeled pool (10,000)")
    ap.add_argument("--pipeline-n", type=int, default=1000, help="reports the pipeline is timed on (1,000)")
    ap.add_argument("--train-n", type=int, default=120, help="demo reports for the model (120, ~60%% labeled)")
    ap.add_argument("--model", default=None, help="a saved ReportLens model folder (skips training)")
    ap.add_argument("--train-steps", type=int, default=40, help="LoRA steps when training the model (40)")
    ap.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (64)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "scoring.json"))
    args = ap.parse_args(argv)

    import torch

    from core.active import ScoreConfig
    from db import scores as score_db
    from db.engine import read_session
    from training.scoring import run_scoring

    with bench_pool(args, "rl-scoring-bench-") as (tmp, url, pid, model_dir, engine):

        phases: dict[str, float] = {}

        def progress(p: dict) -> None:
            phases.setdefault(p.get("phase", "?"), time.monotonic())

        t0 = time.monotonic()
        result = run_scoring(engine, pid, ScoreConfig(batch_size=args.batch_size), progress=progress)
        ours_s = time.monotonic() - t0
        n_docs = len(result.doc_ids)
        print(f"ReportLens scoring: {n_docs} reports in {ours_s:.1f} s = {n_docs / ours_s:.1f} reports/s",
              file=sys.stderr, flush=True)

        from transformers import pipeline

        from db import models as m
        from training.inference import export_merged

        merged = export_merged(model_dir, tmp / "merged")
        pipe = pipeline("token-classification", model=str(merged), aggregation_strategy="simple", device=-1)
        ids = result.doc_ids[: args.pipeline_n]
        with read_session(engine) as s:
            texts = dict(s.query(m.Document.id, m.Document.text).filter(m.Document.id.in_(ids)).all())
        pipe(texts[ids[0]])  # warm-up (not timed)
        t1 = time.monotonic()
        theirs = {d: pipe(texts[d]) for d in ids}
        pipe_s = time.monotonic() - t1
        pipe_rate = len(ids) / pipe_s
        print(f"pipeline, one report per call: {len(ids)} reports in {pipe_s:.1f} s = {pipe_rate:.1f} reports/s",
              file=sys.stderr, flush=True)

        mismatches = []
        n_entities = 0
        for d in ids:
            stored, _ = score_db.document_predictions(engine, d, result.model_version_id)
            ours = {(e.start, e.end, e.label) for e in stored}
            pipe_ents = {(int(e["start"]), int(e["end"]), e["entity_group"]) for e in theirs[d]}
            n_entities += len(ours)
            if ours != pipe_ents:
                mismatches.append({"document_id": d, "only_reportlens": sorted(ours - pipe_ents),
                                   "only_pipeline": sorted(pipe_ents - ours)})
        queue_mismatches = check_queues(engine, pid, result, ScoreConfig(batch_size=args.batch_size))
        n_tokens = sum(result.n_tokens)
        out = {
            "pool_reports": n_docs, "pool_tokens": n_tokens, "mean_tokens": round(n_tokens / n_docs, 1),
            "reportlens_s": round(ours_s, 2), "reportlens_reports_per_s": round(n_docs / ours_s, 1),
            "phases_s": {k: round(v - t0, 2) for k, v in sorted(phases.items(), key=lambda kv: kv[1])},
            "stored_score_rows": result.stored_rows, "strategies": sorted(result.scores),
            "pipeline_reports": len(ids), "pipeline_s": round(pipe_s, 2), "pipeline_reports_per_s": round(pipe_rate, 1),
            "pipeline_pool_s_extrapolated": round(n_docs / pipe_rate, 1),
            "speedup": round((n_docs / ours_s) / pipe_rate, 2),
            "compared_reports": len(ids), "compared_entities": n_entities, "mismatched_reports": len(mismatches),
            "mismatch_examples": mismatches[:5], "queues_not_select_batch": queue_mismatches,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
            "python": platform.python_version(), "torch": torch.__version__,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    if mismatches:
        print(f"FAIL: {len(mismatches)} of {len(ids)} reports have different entities", file=sys.stderr)
        return 1
    if queue_mismatches:
        print(f"FAIL: stored queues differ from select_batch: {', '.join(queue_mismatches)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
