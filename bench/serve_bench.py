"""Serving speed: documents/s on the same short reports for each way ReportLens can run a model.

    python bench/serve_bench.py --n 1000 --pipeline-n 200       # a few minutes on 2 shared cores
    python bench/serve_bench.py                                  # the issue's 10,000 reports
    python bench/serve_bench.py --model bench/out/scoring-model  # reuse a saved model (no training)

Setup (not timed): the pool of ``bench/scoring_bench.py`` (``--n`` synthetic short reports in a fresh SQLite
project beside 120 demo reports) and its LoRA model (trained ``--train-steps`` steps unless ``--model``), exported
with ``training.onnx_export.export_onnx(..., int8=True)``.

Timed, on the same reports:

(a) ``transformers.pipeline("token-classification", aggregation_strategy="simple")`` on the merged model, one
    report per call, on the first ``--pipeline-n`` reports (linear, so its rate holds for the pool);
(b) ReportLens torch: ``training.scoring.run_scoring`` end to end (the ``score`` job: read, tokenize, window,
    batched forward longest first, merge, decode, every stored strategy incl. diversity, store), and inference alone
    (``training.runtime.predict_with`` + ``TorchRuntime``: tokenize, window, forward, merge, decode);
(c) ONNX fp32 and (d) ONNX int8: the same two measurements with ``ScoreConfig(runtime="onnx" / "onnx-int8")`` and
    ``OnnxRuntime``; before them the session options (intra-op threads, graph optimisation level) are tried on
    ``--tune-n`` reports and the fastest is used;
(e) the REST API end to end: ``cli.py serve``'s app on uvicorn in this process, 4 client threads posting one
    ~300-character report per request to ``/v1/extract`` (rules + the model), p50/p95 latency (``--api-only``:
    only this, after the setup).

Checks: the fp32 scoring run must store exactly torch's entities on every report (the script fails otherwise);
token argmax agreement is reported for fp32 and int8, and int8's differing reports are counted (not a failure).
Writes ``bench/out/serve.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def _reports_of(texts: list[str], chars: int) -> list[str]:
    """Reports of about ``chars`` characters: the pool's short reports joined, cut at the last space before
    ``chars``."""
    out, cur = [], ""
    for t in texts:
        cur = f"{cur} {t}".strip()
        if len(cur) >= chars:
            cut = cur[:chars]
            out.append(cut[: cut.rfind(" ")] if " " in cut else cut)
            cur = ""
    return out or [(" ".join(texts))[:chars]]


def api_end_to_end(args: argparse.Namespace, engine: Any, project_id: int, texts: list[str]) -> dict[str, Any]:
    """(e) The REST API end to end with 4 concurrent clients: documents/s and p50/p95 latency per request.

    A uvicorn server (``api.app.create_app``, the torch runtime, the project's active model) on a free loopback port
    of this process; a token made as ``cli.py tokens create`` does; ``--api-requests`` POSTs of one ~300-character
    report to ``/v1/extract`` with the project (rules + model) spread over 4 client threads (:func:`run_clients`) in
    a process of their own (``--api-clients-in-process``: in this one, as first measured)."""
    import socket
    import statistics
    import threading

    import uvicorn

    from api.app import create_app
    from core.auth import Actor
    from db.repository import get_project
    from services.api_tokens import create_token
    from services.auth import act_as
    from services.serving import set_request_threads

    with act_as(Actor.everyone("bench:serve"), engine):
        _, secret = create_token(engine, f"bench-{os.getpid()}-{time.time_ns()}")
    project = get_project(engine, project_id).name
    reports = _reports_of(texts, 300)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    threads = set_request_threads(args.api_threads or None)  # 0: torch's default, as `cli.py serve`
    runtime = getattr(args, "api_runtime", "torch")
    app = create_app(engine, runtime)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/v1/extract"
    job = {"url": url, "secret": secret, "project": project, "reports": reports, "n": args.api_requests, "clients": 4}
    if getattr(args, "api_clients_in_process", False):
        res = run_clients(job)
    else:  # the clients in a process of their own, as a real client is: not sharing the server's interpreter lock
        proc = subprocess.run([sys.executable, __file__, "--clients-child"], input=json.dumps(job), text=True,
                              capture_output=True, timeout=1800)
        if proc.returncode:
            raise SystemExit(f"the client process failed: {proc.stderr[-2000:]}")
        res = json.loads(proc.stdout)
    latencies, statuses, wall, n, clients = res["latencies"], res["statuses"], res["wall"], job["n"], job["clients"]
    server.should_exit = True
    thread.join(timeout=30)
    q = statistics.quantiles(latencies, n=20)
    return {"clients": clients, "requests": n, "report_chars": round(sum(map(len, reports)) / len(reports)),
            "reports_per_s": round(n / wall, 1), "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p95_ms": round(q[18] * 1000, 1), "statuses": statuses, "mode": f"rules+model, {runtime}",
            "torch_threads": threads}


def run_clients(job: dict[str, Any]) -> dict[str, Any]:
    """``job["clients"]`` threads POSTing ``job["n"]`` reports to ``job["url"]`` (``urllib``, a new connection per
    request, as a simple client does) after 8 warm-up requests: latencies (s), statuses, wall time."""
    import threading
    import urllib.error
    import urllib.request

    def post(text: str) -> tuple[float, int]:
        req = urllib.request.Request(job["url"], data=json.dumps({"text": text, "project": job["project"]}).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {job['secret']}"})
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        return time.perf_counter() - t0, status

    reports, clients, n = job["reports"], job["clients"], job["n"]
    for text in reports[:8]:
        post(text)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def client(k: int) -> None:
        for i in range(k, n, clients):
            dt, status = post(reports[i % len(reports)])
            with lock:
                latencies.append(dt)
                statuses[str(status)] = statuses.get(str(status), 0) + 1

    t0 = time.perf_counter()
    workers = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"latencies": latencies, "statuses": statuses, "wall": time.perf_counter() - t0}


def inference_rate(runtime: Any, tokenizer: Any, docs: list[tuple[int, str]], schema: Any, align: Any,
                   batch_size: int) -> tuple[float, list[Any]]:
    from training.runtime import predict_with

    predict_with(runtime, tokenizer, docs[:16], schema, align, batch_size)  # warm-up
    t0 = time.perf_counter()
    preds = predict_with(runtime, tokenizer, docs, schema, align, batch_size)
    return len(docs) / (time.perf_counter() - t0), preds


def tune(folder: Path, variant: str, tokenizer: Any, docs: list[tuple[int, str]], schema: Any, align: Any,
         batch_size: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The fastest (threads, optimisation level) for ``variant`` on ``docs``, and every trial."""
    from training.onnx_runtime import VARIANTS, OnnxRuntime

    trials = []
    cpus = os.cpu_count() or 1
    for threads in sorted({1, cpus}):
        for level in ("all", "basic"):
            rt = OnnxRuntime(folder / VARIANTS[variant], threads=threads, optimization=level)
            rate, _ = inference_rate(rt, tokenizer, docs, schema, align, batch_size)
            trials.append({"variant": variant, "threads": threads, "optimization": level,
                           "reports_per_s": round(rate, 1)})
            print(f"  {variant} threads={threads} opt={level}: {rate:.1f} reports/s", file=sys.stderr, flush=True)
    best = max(trials, key=lambda t: t["reports_per_s"])
    return best, trials


def agreement(a: list[Any], b: list[Any]) -> dict[str, Any]:
    tokens = sum(len(x.probs) for x in a)
    agree = sum(int((x.probs.argmax(-1) == y.probs.argmax(-1)).sum()) for x, y in zip(a, b, strict=True))
    same = sum({s for s, _ in x.spans} == {s for s, _ in y.spans} for x, y in zip(a, b, strict=True))
    return {"token_argmax_agreement": round(agree / max(tokens, 1), 6), "identical_entity_reports": same,
            "reports": len(a)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="reports in the pool (10,000)")
    ap.add_argument("--pipeline-n", type=int, default=500, help="reports the one-by-one pipeline is timed on (500)")
    ap.add_argument("--tune-n", type=int, default=300, help="reports each ONNX session setting is tried on (300)")
    ap.add_argument("--train-n", type=int, default=120)
    ap.add_argument("--train-steps", type=int, default=40)
    ap.add_argument("--model", default=None, help="a saved ReportLens model folder (skips training)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "serve.json"))
    ap.add_argument("--api-requests", type=int, default=400, help="requests of (e), over 4 clients (400)")
    ap.add_argument("--api-only", action="store_true", help="build the pool and model, then only (e)")
    ap.add_argument("--api-clients-in-process", action="store_true",
                    help="(e)'s client threads in the server's process (as measured before; they share its GIL)")
    ap.add_argument("--clients-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--api-runtime", default="torch", choices=("torch", "onnx"), help="the runtime of (e), as "
                    "`cli.py serve --runtime` (onnx: the model's fp32 export, made first if missing; not timed)")
    ap.add_argument("--api-threads", type=int, default=0, help="torch threads in (e), as `cli.py serve --threads` "
                    "(0: torch's default, as serve's)")
    args = ap.parse_args(argv)
    if args.clients_child:
        print(json.dumps(run_clients(json.loads(sys.stdin.read()))))
        return 0

    import torch
    from scoring_bench import bench_pool

    from core.active import ScoreConfig
    from db.engine import read_session
    from training.inference import load_model
    from training.onnx_export import export_onnx
    from training.onnx_runtime import THREADS_ENV, clear_onnx_cache, load_onnx, onnx_dir_for
    from training.predict import TorchRuntime
    from training.scoring import run_scoring

    out: dict[str, Any] = {}
    with bench_pool(args, "rl-serve-bench-") as (tmp, url, pid, model_dir, engine):
        from db import models as m

        if args.api_only:
            with read_session(engine) as s:
                texts = [t for (t,) in s.query(m.Document.text).filter(m.Document.ls_task_id >= 1_000_000)]
            if args.api_runtime == "onnx" and not (onnx_dir_for(model_dir) / "model.onnx").is_file():
                t0 = time.monotonic()
                export_onnx(model_dir, onnx_dir_for(model_dir))
                print(f"exported to ONNX in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
            out = {"e_api_end_to_end": api_end_to_end(args, engine, pid, texts), "cpus": os.cpu_count(),
                   "load_avg_after": [round(x, 2) for x in os.getloadavg()]}
            print(json.dumps(out, indent=2))
            return 0

        with read_session(engine) as s:
            rows = s.query(m.Document.id, m.Document.text).filter(m.Document.ls_task_id >= 1_000_000).all()
        docs = sorted((int(i), t) for i, t in rows)
        folder = onnx_dir_for(model_dir)
        t0 = time.monotonic()
        card = export_onnx(model_dir, folder, int8=True, check_docs=docs[:300])
        out["export"] = {"s": round(time.monotonic() - t0, 1), "exporter": card["exporter"], "checks": card["checks"]}
        print(f"exported to ONNX in {out['export']['s']} s", file=sys.stderr, flush=True)

        loaded = load_model(model_dir)
        schema, align, tok = loaded.schema, loaded.config.align(), loaded.tokenizer
        onnx_tok = load_onnx(folder).tokenizer

        # (b) torch: the scoring run end to end, then inference alone
        cfg = ScoreConfig(batch_size=args.batch_size)
        t0 = time.monotonic()
        torch_run = run_scoring(engine, pid, cfg)
        torch_scoring_s = time.monotonic() - t0
        n = len(torch_run.doc_ids)
        print(f"(b) torch scoring run: {n / torch_scoring_s:.1f} reports/s", file=sys.stderr, flush=True)
        torch_rate, torch_preds = inference_rate(TorchRuntime(loaded.model), tok, docs, schema, align,
                                                 args.batch_size)
        print(f"(b) torch inference: {torch_rate:.1f} reports/s", file=sys.stderr, flush=True)

        # (c), (d) ONNX: tune the session on a subset, then the same two measurements
        runs: dict[str, Any] = {}
        tuning = []
        for variant, runtime in (("fp32", "onnx"), ("int8", "onnx-int8")):
            best, trials = tune(folder, variant, onnx_tok, docs[: args.tune_n], schema, align, args.batch_size)
            tuning += trials
            os.environ[THREADS_ENV] = str(best["threads"])
            clear_onnx_cache()
            model = load_onnx(folder, variant, optimization=best["optimization"])
            rate, preds = inference_rate(model.runtime, onnx_tok, docs, schema, align, args.batch_size)
            # run_scoring loads the export itself (level "all"); the threads come from REPORTLENS_ONNX_THREADS
            t0 = time.monotonic()
            run = run_scoring(engine, pid, ScoreConfig(batch_size=args.batch_size, runtime=runtime))
            scoring_s = time.monotonic() - t0
            same = sum({s for s, _ in a} == {s for s, _ in b} for a, b in zip(torch_run.entities, run.entities,
                                                                             strict=True))
            runs[variant] = {"session": best, "inference_reports_per_s": round(rate, 1),
                             "scoring_run_s": round(scoring_s, 2), "scoring_reports_per_s": round(n / scoring_s, 1),
                             "scoring_identical_entity_reports": same, "vs_torch": agreement(torch_preds, preds)}
            print(f"({'c' if variant == 'fp32' else 'd'}) onnx {variant}: inference {rate:.1f}, scoring run "
                  f"{n / scoring_s:.1f} reports/s; identical entities {same}/{n}", file=sys.stderr, flush=True)

        # (a) the plain transformers pipeline, one report per call
        from transformers import pipeline

        from training.inference import export_merged

        merged = export_merged(model_dir, tmp / "merged")
        pipe = pipeline("token-classification", model=str(merged), aggregation_strategy="simple", device=-1)
        sample = [t for _, t in docs[: args.pipeline_n]]
        pipe(sample[0])
        t0 = time.monotonic()
        for text in sample:
            pipe(text)
        pipe_rate = len(sample) / (time.monotonic() - t0)
        print(f"(a) pipeline one by one: {pipe_rate:.1f} reports/s", file=sys.stderr, flush=True)

        fp32 = runs["fp32"]
        best_scoring = max(fp32["scoring_reports_per_s"], runs["int8"]["scoring_reports_per_s"])
        out.update({
            "reports": n, "mean_tokens": round(sum(torch_run.n_tokens) / n, 1), "batch_size": args.batch_size,
            "a_pipeline_one_by_one": {"reports": len(sample), "reports_per_s": round(pipe_rate, 1)},
            "b_torch": {"scoring_run_s": round(torch_scoring_s, 2), "scoring_reports_per_s": round(n / torch_scoring_s,
                                                                                                   1),
                        "inference_reports_per_s": round(torch_rate, 1), "threads": torch.get_num_threads()},
            "c_onnx_fp32": fp32, "d_onnx_int8": runs["int8"], "session_tuning": tuning,
            "e_api_end_to_end": api_end_to_end(args, engine, pid, [t for _, t in docs]),
            "ratios": {"onnx_fp32_vs_torch_inference": round(fp32["inference_reports_per_s"] / torch_rate, 2),
                       "onnx_fp32_vs_torch_scoring_run": round(fp32["scoring_reports_per_s"] * torch_scoring_s / n,
                                                               2),
                       "torch_scoring_vs_pipeline": round(n / torch_scoring_s / pipe_rate, 2),
                       "onnx_fp32_scoring_vs_pipeline": round(fp32["scoring_reports_per_s"] / pipe_rate, 2),
                       "best_scoring_vs_pipeline": round(best_scoring / pipe_rate, 2)},
            "cpus": os.cpu_count(), "load_avg_after": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "torch": torch.__version__,
        })
        clear_onnx_cache()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps({k: v for k, v in out.items() if k not in ("export", "session_tuning")}, indent=2, default=str))
    if out["c_onnx_fp32"]["scoring_identical_entity_reports"] != n:
        print("FAIL: the ONNX fp32 scoring run's entities differ from torch's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
