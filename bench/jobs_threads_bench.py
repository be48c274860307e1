"""Demo training jobs through real workers on a real SQLite file: one job alone vs two at once, with the old thread
sizing (every job cores - 1, fixed) and the new one (each job its share of the cores, re-decided while it runs:
``jobs.threads``), and torch's default for reference (every job all cores: oversubscribed).

    python bench/jobs_threads_bench.py [--steps 30] [--n 300] [--modes old,new,default] [--at-once 1,2] [--out F]

Per mode: a fresh data folder and SQLite file with the English demo project (``seed_demo``, ``--n`` reports), then
``solo``: one ``train`` job (``max_steps=--steps``, the defaults otherwise) run by one ``python -m jobs.worker
--once``; ``pair``: two such jobs queued together and two workers started together. Reported per job: steps/s over
its training (the trainer's own ``train_runtime`` minus dev evaluations, from the model version's metrics), steps/s
while both jobs trained (from the job's progress history), and the thread changes the job log recorded. No app is
open (no ``run/app-*.json``), so the new sizing gives a job alone every core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = {"old": "cores - 1 fixed", "new": "share of the cores, followed while running", "default": "all cores each"}


def mode_env(mode: str, data: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "REPORTLENS_"))}
    env.update(REPORTLENS_DATA_DIR=str(data), REPORTLENS_DATABASE_URL=url, PYTHONUNBUFFERED="1")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if mode == "old":
        env["REPORTLENS_TRAIN_THREADS"] = str(max(1, cores - 1))  # what every job got before issue 17
    elif mode == "default":
        env["REPORTLENS_TRAIN_THREADS"] = str(cores)  # torch's own default: one thread per core, per process
    return env


def overlap_rate(history: list[dict[str, Any]], started: float, window: tuple[float, float]) -> float | None:
    """Steps per second of a job between the absolute times ``window`` (its training points, interpolated)."""
    pts = [(started + p["t"], p["step"]) for p in history if "step" in p and "t" in p and not any(
        k.startswith(("dev_", "eval_", "test_")) for k in p)]
    lo, hi = window
    inside = [(t, s) for t, s in pts if lo <= t <= hi]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def run(mode: str, n_jobs: int, steps: int, n_reports: int, tmp: Path) -> dict[str, Any]:
    from core.trainconfig import TrainConfig
    from db.engine import dispose_engine, make_engine
    from db.migrate import upgrade
    from jobs import queue

    data = tmp / f"{mode}-{n_jobs}"
    data.mkdir(parents=True)
    url = f"sqlite:///{data / 'bench.db'}"
    env = mode_env(mode, data, url)
    os.environ["REPORTLENS_DATA_DIR"] = str(data)
    upgrade(url)
    engine = make_engine(url)
    from core.auth import Actor
    from services.auth import act_as
    from services.imports import seed_demo

    with act_as(Actor.everyone("bench:jobs-threads"), engine):
        seed_demo(engine, n=n_reports, chinese=False)
    params = TrainConfig(max_steps=steps).to_dict()
    ids = [queue.enqueue(engine, 1, "train", params).id for _ in range(n_jobs)]
    t0 = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "jobs.worker", "--once", "--poll", "0.2", "--log-file",
                               str(data / f"worker-{i}.log")], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT) for i in range(n_jobs)]
    for p in procs:
        p.wait(timeout=1800)
    wall = time.monotonic() - t0
    from db.model_versions import list_model_versions

    versions = {v.job_id: v for v in list_model_versions(engine, 1)}
    jobs = [queue.get_job(engine, i) for i in ids]
    spans = []
    for j in jobs:
        pts = [j.started_at.timestamp() + p["t"] for p in j.history if "step" in p and "t" in p]
        spans.append((min(pts), max(pts)) if pts else (0.0, 0.0))
    window = (max(s[0] for s in spans), min(s[1] for s in spans))
    out = []
    for j in jobs:
        v = versions.get(j.id)
        speed = (v.metrics.get("speed") or {}) if v else {}
        train_s = (speed.get("train_runtime_s") or 0) - (speed.get("dev_eval_s") or 0)
        done = (v.metrics.get("steps") if v else None) or 0
        changes = [line.split("] ", 1)[1] for line in j.log.splitlines() if "torch threads" in line]
        out.append({"job": j.id, "status": str(j.status), "error": j.error, "steps": done,
                    "steps_per_s": round(done / train_s, 3) if train_s > 0 else None,
                    "examples_per_s": speed.get("examples_per_s"),
                    "steps_per_s_while_both": (round(r, 3) if n_jobs > 1 and (r := overlap_rate(
                        list(j.history), j.started_at.timestamp(), window)) else None),
                    "thread_changes": changes})
    dispose_engine(url)
    return {"mode": mode, "sizing": MODES[mode], "jobs_at_once": n_jobs, "wall_s": round(wall, 1), "jobs": out,
            "load_avg_after": os.getloadavg()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--n", type=int, default=300, help="demo reports (about 60%% end up in the training split)")
    p.add_argument("--modes", default="old,new,default")
    p.add_argument("--at-once", default="1,2", help="jobs at once per run (comma-separated)")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "jobs_threads.json"))
    args = p.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"cores": os.cpu_count(), "load_avg_before": os.getloadavg(), "steps": args.steps,
                               "runs": []}
    with tempfile.TemporaryDirectory(prefix="reportlens-jobs-threads-") as tmp:
        for n_jobs in map(int, args.at_once.split(",")):  # modes side by side: a change of load hits them alike
            for mode in args.modes.split(","):
                results["runs"].append(run(mode, n_jobs, args.steps, args.n, Path(tmp)))
                print(json.dumps(results["runs"][-1]), flush=True)
                out.write_text(json.dumps(results, indent=2), encoding="utf-8")  # partial results as it goes


if __name__ == "__main__":
    main()
