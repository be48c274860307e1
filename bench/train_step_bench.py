"""Training-step micro benchmark: seconds per optimizer step of the bundled model with the default LoRA adapter on one
fixed batch, for the options of one step that TrainConfig does not show in a full run's noise.

    python bench/train_step_bench.py --steps 10            # eager fused vs plain AdamW, then torch.compile
    python bench/train_step_bench.py --no-compile --batch 8 --length 160

Each variant builds the same model (seed 0), runs 2 warm-up steps (torch.compile compiles in them; that time is
reported apart) and then times ``--steps`` steps of forward, backward and ``optimizer.step()``, in wall and process CPU
seconds (on a shared machine with ``OMP_NUM_THREADS=1`` the CPU seconds are the steadier figure). Prints one JSON line
per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run(variant: str, steps: int, batch: int, length: int) -> dict:
    import torch

    from core.trainconfig import TrainConfig
    from core.types import LabelSchema
    from training.model import build_model

    torch.manual_seed(0)
    schema = LabelSchema(("FINDING", "RHYTHM", "HEART_RATE"))
    model = build_model(TrainConfig(), schema)
    model.train()
    ids = torch.randint(1000, 20000, (batch, length))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "labels": torch.randint(0, len(schema.tags), (batch, length))}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-3, fused=variant != "adamw_torch")
    forward = torch.compile(model) if variant == "compile" else model

    def step() -> None:
        loss = forward(**inputs).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    for _ in range(2):
        step()
    warm = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    per_step = (time.perf_counter() - t0) / steps
    cpu_per_step = (time.process_time() - c0) / steps
    return {"variant": variant, "batch": batch, "length": length, "steps": steps, "warmup_s": round(warm, 2),
            "s_per_step": round(per_step, 4), "cpu_s_per_step": round(cpu_per_step, 4),
            "threads": torch.get_num_threads(),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=160)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    variants = ["adamw_torch_fused", "adamw_torch"] + ([] if args.no_compile else ["compile"])
    for variant in variants:
        print(json.dumps(run(variant, args.steps, args.batch, args.length)), flush=True)


if __name__ == "__main__":
    main()
